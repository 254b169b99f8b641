import * as fs from "node:fs";
import * as path from "node:path";
import { runCli, startCli } from "../sandbox/cli";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { delay, freePort } from "../sandbox/processes";
import { startSandbox, type Sandbox } from "../sandbox";
import { POSTER_QUEUE, SERVICES, startUtilitarian, type UtilitarianFixture } from "../sandbox/utilitarian";

// Bad input and faults of runbook 4 against the bed (see utilitarian-service.test.ts for the bed):
// each is refused or stopped with a clear error and a hint; nothing is lost; the compose file is
// either the old one or the new one. The scenarios share one bed and run in order: those that
// reach 2.0.0 are rolled back the way the workflow's messages say (restore the verified backup,
// put back the previous compose file), and the stack takes 1.0.0 from the host again.
let bed: Sandbox;
let app: UtilitarianFixture;
let own: OwnStack;

type System = Record<string, unknown>;
const system = (version: string, patch: (s: System) => void = () => undefined) => {
  const s = app.systemConfig(version, "utilSshKey", "utilDbPassword");
  patch(s);
  return { util: s };
};

const run = () => upOwnStack(bed, own);

/** A preview of the stack as it is configured: its diagnostics, and its error if it failed. */
async function preview() {
  const lines: string[] = [];
  try {
    await own.stack.preview({ onEvent: (e) => void (e.diagnosticEvent && lines.push(e.diagnosticEvent.message.trim())) });
    return { log: lines.join("\n"), error: undefined };
  } catch (err) {
    return { log: lines.join("\n"), error: String(err) };
  }
}

const states = () => Object.fromEntries(Object.entries(app.services()).map(([name, c]) => [name, `${c.state} ${c.image.split(":").at(-1)}`]));
const ALL_AT_1 = { [SERVICES.api]: "running 1.0.0", [SERVICES.worker]: "running 1.0.0", [SERVICES.beat]: "running 1.0.0", [SERVICES.poster]: "running 1.0.0" };
const AT_2_API_ONLY = { [SERVICES.api]: "running 2.0.0", [SERVICES.worker]: "exited 1.0.0", [SERVICES.beat]: "exited 1.0.0", [SERVICES.poster]: "exited 1.0.0" };
const ALL_AT_2 = { [SERVICES.api]: "running 2.0.0", [SERVICES.worker]: "running 2.0.0", [SERVICES.beat]: "running 2.0.0", [SERVICES.poster]: "running 1.0.0" };
const BOTH_MIGRATIONS = ["meters.0001_initial", "meters.0002_meter_location_unique_serial"];
/** Backup files by name (timestamped: sorted oldest first). */
const backups = () => fs.readdirSync(app.backupDir).filter((f) => f.endsWith(".dump")).sort();
const meters = () => app.postgres.query("SELECT count(*) FROM meters_meter;");
/** Rows of meters_meter in a backup file, as a string like meters(). */
const metersIn = (backup: string) => String(app.backupRows(path.join(app.backupDir, backup), "meters_meter"));
const previousComposeFile = () => `${app.composeFile}.before-1.0.0`;
const composeAt2 = () => composeAt1.replace("quay.io/pwit/utilitarian:1.0.0", "quay.io/pwit/utilitarian:2.0.0");
let composeAt1: string;

beforeAll(async () => {
  bed = await startSandbox({ aws: false });
  app = await startUtilitarian(bed, { version: "1.0.0" });
  own = await ownStack(bed, "utilf", { utilSshKey: { value: app.privateKey, secret: true }, utilDbPassword: { value: app.postgres.password, secret: true } });
  await own.setSystems(system("1.0.0"));
  expect((await run()).result.outputs?.versions).toEqual({ util: "1.0.0" });
  composeAt1 = fs.readFileSync(app.composeFile, "utf8");
}, 900_000);
afterAll(async () => {
  await own?.remove();
  await app?.stop();
  await bed?.stop();
}, 300_000);

/** Nothing changed: every service up at 1.0.0, the compose file as it was, the state at 1.0.0. */
async function expectUntouched() {
  expect(states()).toEqual(ALL_AT_1);
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(composeAt1);
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
}

test("the host unreachable at preview: a clear error before anything runs, nothing changed", async () => {
  const closed = await freePort();
  await own.setSystems(system("2.0.0", (s) => ((s.ssh as { port: number }).port = closed)));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.steps.find((s) => s.status === "failed")?.step).toBe("plan-update");
  expect(result.steps.some((s) => s.step === "up" && s.status !== "skipped")).toBe(false);
  expect(result.error?.message).toMatch(
    new RegExp(`could not read the version \\w+@127\\.0\\.0\\.1:${closed} runs \\(the preview of 1\\.0\\.0 → 2\\.0\\.0\\): .*ECONNREFUSED.*what to do: check ssh\\.host, ssh\\.port and that the host is up.*nothing was changed`),
  );
  await expectUntouched();
  expect(backups()).toEqual([]);
});

test("an image version the registry does not have is refused before anything stops, and before the backup", async () => {
  await own.setSystems(system("9.9.9"));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(/could not pull quay\.io\/pwit\/utilitarian:9\.9\.9: .*what to do: check that 9\.9\.9 is a release of quay\.io\/pwit\/utilitarian.*nothing was stopped/s);
  await expectUntouched();
  expect(backups()).toEqual([]);
});

test("a compose file without a configured service is refused naming it, the file untouched", async () => {
  await own.setSystems(system("2.0.0", (s) => ((s.services as { dependents: string[] }).dependents = ["utilitarian_poster", "dlms_processor"])));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(/have no service dlms_processor; their services are .*utilitarian_poster.*what to do: set services\.api \(now utilitarian_api\), services\.beat \(utilitarian-beat\), services\.workers \(utilitarian-worker\) and services\.dependents \(utilitarian_poster, dlms_processor\)/s);
  await expectUntouched();
});

test("a compose file that does not parse is refused, the file untouched", async () => {
  const broken = composeAt1.replace("services:\n", "services:\n  oops: [\n");
  fs.writeFileSync(app.composeFile, broken);
  try {
    await own.setSystems(system("2.0.0"));
    const { result } = await run();
    expect(result.exitCode).toBe(1);
    expect(result.error?.message).toMatch(/could not read the compose file .*compose\.yaml: it is not valid YAML/);
    expect(fs.readFileSync(app.composeFile, "utf8")).toBe(broken);
  } finally {
    fs.writeFileSync(app.composeFile, composeAt1);
  }
  await expectUntouched();
});

test("the database unreachable for pg_dump: refused with a hint, nothing stopped", async () => {
  const closed = await freePort();
  await own.setSystems(system("2.0.0", (s) => ((s.database as { port: number }).port = closed)));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(new RegExp(`could not dump the database \\(utilitarian@127\\.0\\.0\\.1:${closed}/utilitarian\\).*what to do: check that the database is reachable.*nothing was stopped`, "s"));
  await expectUntouched();
  expect(backups()).toEqual([]);
});

test("the backup location full: pg_dump fails on it, refused naming the space, nothing stopped", async () => {
  const full = app.fullBackupDir();
  try {
    await own.setSystems(system("2.0.0", (s) => ((s.backups as Record<string, unknown>).dir = full.dir)));
    const { result } = await run();
    expect(result.exitCode).toBe(1);
    expect(result.error?.message).toMatch(
      /stopped at step backup; the completed version stays 1\.0\.0: could not dump the database \(utilitarian@127\.0\.0\.1:\d+\/utilitarian\) on \S+: pg_dump: error: could not write to output file: No space left on device \| pg_dump failed \(what to do: \S+backups-full has no room for the dump: free space there or set backups\.dir to a larger disk, then run again; nothing was stopped\)/,
    );
    await expectUntouched();
    expect(fs.readdirSync(full.dir)).toEqual(["filler"]);
  } finally {
    full.release();
  }
});

test("a backup that does not verify (the dump cut short after pg_dump reported success): refused before anything stops, the file set aside", async () => {
  const rowsBefore = meters();
  // database.tools names the bed's PostgreSQL programs; its pg_dump is the real one, then the file loses its second half
  await own.setSystems(system("2.0.0", (s) => ((s.database as Record<string, unknown>).tools = app.pgToolsCuttingDumps())));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(
    /stopped at step backup; the completed version stays 1\.0\.0: could not verify the backup \(utilitarian@127\.0\.0\.1:\d+\/utilitarian\) on \S+: pg_restore --list cannot read it: pg_restore: error: could not read from input file: end of file \(what to do: the backup does not restore, so it is not one \(kept as .*utilitarian-1\.0\.0-to-2\.0\.0-\d{8}T\d{6}Z\.dump\.unverified, never used\).*nothing was stopped/s,
  );
  await expectUntouched();
  expect(backups()).toEqual([]);
  const setAside = fs.readdirSync(app.backupDir).filter((f) => f.endsWith(".dump.unverified"));
  expect(setAside).toHaveLength(1);
  expect(fs.readdirSync(app.backupDir).filter((f) => f.endsWith(".sha256"))).toEqual([]);
  expect(app.postgres.query("SELECT count(*) FROM pg_database WHERE datname LIKE '%_verify_%';")).toBe("0");
  expect(meters()).toBe(rowsBefore);
  fs.rmSync(path.join(app.backupDir, setAside[0]!));
});

test("`compress` failing on a site template: stops naming the step, the command, what runs and the backup; the preview then reads the host; with the template fixed, `up` again completes without a second backup", async () => {
  const rowsBefore = meters();
  app.brokenSiteTemplate(true);
  await own.setSystems(system("2.0.0"));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  const message = result.error?.message ?? "";
  expect(message).toMatch(
    /Utilitarian upgrade 1\.0\.0 → 2\.0\.0 stopped at step compress; the completed version stays 1\.0\.0: could not compress the assets \(`python3 manage.py compress` in utilitarian_api, through compose exec\) on \S+: exit code 1: .*site_banner\.html.*meters\/site-banner\.css/s,
  );
  expect(message).toMatch(/what to do: fix the templates or static files it names and run `up` again \(it resumes at compress, without a second backup\)/);
  expect(message).toMatch(/Services now: running: utilitarian_api \(quay\.io\/pwit\/utilitarian:2\.0\.0\); exited: utilitarian-beat .*, utilitarian_poster \(quay\.io\/pwit\/utilitarian-poster:1\.0\.0\)\. The migrations are applied\./);
  expect(message).toMatch(/Verified backup: \S+utilitarian-1\.0\.0-to-2\.0\.0-\d{8}T\d{6}Z\.dump \(sha256 [0-9a-f]{64}\); to restore it: PGPASSWORD=… pg_restore --clean/);
  expect(message.includes(app.postgres.password)).toBe(false);
  expect(states()).toEqual(AT_2_API_ONLY);
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(composeAt2());
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
  expect((await app.apiVersion())?.migrations).toEqual(BOTH_MIGRATIONS);
  expect(backups()).toHaveLength(1);
  const [backup] = backups();
  expect(metersIn(backup!)).toBe(rowsBefore);
  expect(meters()).toBe(rowsBefore);

  // The preview reads what the host runs (the API on 2.0.0, the compose file naming it) beside the state's 1.0.0:
  // 1.5.0 is a downgrade against the host, and 2.0.0 resumes the interrupted upgrade.
  await own.setSystems(system("1.5.0"));
  const downgrade = await preview();
  expect(downgrade.error).toMatch(
    /Utilitarian 2\.0\.0 → 1\.5\.0 is a downgrade \(the host runs 2\.0\.0; the state's last completed version is 1\.0\.0\), which Django's forward-only migrations do not allow; to go back, restore the backup taken before the upgrade to 2\.0\.0: \S+utilitarian-1\.0\.0-to-2\.0\.0-/,
  );
  await own.setSystems(system("2.0.0"));
  const resume = await preview();
  expect(resume.error).toBeUndefined();
  expect(resume.log).toMatch(/the host runs 2\.0\.0 \(its compose file; running: utilitarian_api \(quay\.io\/pwit\/utilitarian:2\.0\.0\); exited: utilitarian-beat .*\): plan 1\.0\.0 → 2\.0\.0/);
  expect(resume.log).toMatch(/the host runs 2\.0\.0, the state's last completed version is 1\.0\.0 \(an upgrade to 2\.0\.0 was interrupted: up resumes it\)/);
  expect(states()).toEqual(AT_2_API_ONLY);

  app.brokenSiteTemplate(false);
  const again = await run();
  expect(again.result.error).toBeUndefined();
  expect(again.result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(again.log).toMatch(/backup skipped \(verified backup \S+utilitarian-1\.0\.0-to-2\.0\.0-.*\.dump of this upgrade kept/);
  expect(again.log).toMatch(/stop-app skipped/);
  expect(again.log).toMatch(/migrate skipped \(every migration is applied\)/);
  expect(again.log).toMatch(/compress done/);
  expect(backups()).toEqual([backup]);
  expect(states()).toEqual(ALL_AT_2);
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(composeAt2());
  expect(fs.existsSync(path.join(app.projectDir, "static", "CACHE", "manifest.json"))).toBe(true);
  expect(meters()).toBe(rowsBefore);
}, 600_000);

/** Back to 1.0.0 the way the messages say, then the stack takes 1.0.0 from the host. */
async function rollBackTo1(backup: string) {
  await app.rollBack(path.join(app.backupDir, backup), previousComposeFile());
  await own.setSystems(system("1.0.0"));
  return run();
}

test("rolled back as the messages say (restore the verified backup, put back the previous compose file): the stack takes 1.0.0 from the host, changing nothing", async () => {
  const [backup] = backups();
  const { result, log } = await rollBackTo1(backup!);
  expect(meters()).toBe(metersIn(backup!));
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ util: "1.0.0" });
  expect(log).toMatch(/the host runs 1\.0\.0, the state's last completed version is 2\.0\.0 \(changed outside this stack, e\.g\. rolled back by restoring a backup: up records 1\.0\.0 and changes nothing\)/);
  expect(log).toMatch(/already at 1\.0\.0/);
  await expectUntouched();
  expect((await app.apiVersion())?.migrations).toEqual(["meters.0001_initial"]);
  expect(backups()).toEqual([backup]);
}, 300_000);

test("a failing migration stops with the API on 2.0.0 and the rest stopped, naming the migration, the verified backup and the restore; fixed data and `up` again completes without a second backup", async () => {
  // two meters with one serial: 2.0.0's migration makes serials unique and fails on them
  const before = new Set(backups());
  app.postgres.query("INSERT INTO meters_meter (serial, name) VALUES ('M7', 'duplicate of meter 7');");
  const rowsBefore = meters();
  await own.setSystems(system("2.0.0"));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  const message = result.error?.message ?? "";
  expect(message).toMatch(/migration meters\.0002_meter_location_unique_serial failed \(could not apply migration meters\.0002_meter_location_unique_serial: .*(duplicate|unique)/is);
  expect(message).toMatch(/stopped at step migrate; the completed version stays 1\.0\.0/);
  expect(message).toMatch(/Services now: running: utilitarian_api \(quay\.io\/pwit\/utilitarian:2\.0\.0\); exited: utilitarian-beat \(quay\.io\/pwit\/utilitarian:1\.0\.0\), utilitarian-worker \(quay\.io\/pwit\/utilitarian:1\.0\.0\), utilitarian_poster \(quay\.io\/pwit\/utilitarian-poster:1\.0\.0\)\./);
  expect(message).toMatch(/Verified backup: .*utilitarian-1\.0\.0-to-2\.0\.0-\d{8}T\d{6}Z\.dump \(sha256 [0-9a-f]{64}\); to restore it: PGPASSWORD=… pg_restore --clean --if-exists --no-owner .* -d utilitarian .*\.dump, and put back .*compose\.yaml\.before-1\.0\.0/);
  expect(message.includes(app.postgres.password)).toBe(false);
  expect(states()).toEqual({ [SERVICES.api]: "running 2.0.0", [SERVICES.worker]: "exited 1.0.0", [SERVICES.beat]: "exited 1.0.0", [SERVICES.poster]: "exited 1.0.0" });
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
  expect(meters()).toBe(rowsBefore);
  expect((await app.apiVersion())?.migrations).toEqual(["meters.0001_initial"]);
  const [backup] = backups().filter((b) => !before.has(b));
  expect(backups()).toHaveLength(before.size + 1);
  expect(metersIn(backup!)).toBe(rowsBefore);

  app.postgres.query("DELETE FROM meters_meter WHERE name = 'duplicate of meter 7';");
  const again = await run();
  expect(again.result.error).toBeUndefined();
  expect(again.result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(again.log).toMatch(/backup skipped \(verified backup .*utilitarian-1\.0\.0-to-2\.0\.0-.*\.dump of this upgrade kept/);
  expect(again.log).toMatch(/rewrite-compose-file skipped/);
  expect(backups()).toEqual([...before, backup!].sort());
  expect(states()).toEqual(ALL_AT_2);
  expect((await app.apiVersion())?.migrations).toEqual(BOTH_MIGRATIONS);
  expect(meters()).toBe(String(Number(rowsBefore) - 1));
}, 600_000);

test("kill -9 of the whole run while `migrate` runs, then the same command: it completes, without a second backup, the migration finished once", async () => {
  // from 1.0.0 again (the restored data has the duplicate again: fixed again)
  const rolledBack = await rollBackTo1(backups().at(-1)!);
  expect(rolledBack.result.outputs?.versions).toEqual({ util: "1.0.0" });
  app.postgres.query("DELETE FROM meters_meter WHERE name = 'duplicate of meter 7';");
  await expectUntouched();
  const before = new Set(backups());
  const rowsBefore = meters();
  const postedBefore = Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage;"));

  app.holdMigration(true);
  await own.setSystems(system("2.0.0"));
  const args = ["upgrade", "--stack", own.stack.name, "--cwd", own.workDir, "--yes", "--json"];
  let started = false;
  const first = startCli(args, bed.env, (e) => {
    if (/migrate: started/.test(diagnosticOf(e))) started = true;
  });
  let gone = false;
  void first.exited.then(() => (gone = true));
  // killed once the migration holds inside its transaction (its lock on meters_meter granted)
  for (const deadline = Date.now() + 300_000; !(started && migrationHoldsLock()); await delay(300)) {
    if (gone || Date.now() > deadline) throw new Error(`the run never reached a running migration:\n${first.stdout().slice(-3000)}\n${first.stderr()}`);
  }
  first.signal("SIGKILL", true);
  expect(await first.exited).toBe(137);
  // the compose file is the new one, whole; the state keeps 1.0.0; the migration runs on in the API container
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(composeAt2());
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
  expect(states()).toEqual(AT_2_API_ONLY);
  expect(migrationHoldsLock()).toBe(true);
  expect(app.postgres.query("SELECT count(*) FROM django_migrations WHERE app = 'meters';")).toBe("1");
  const taken = backups().filter((b) => !before.has(b));
  expect(taken).toHaveLength(1);
  expect(metersIn(taken[0]!)).toBe(rowsBefore);
  // the meters keep sending while the poster is down
  app.publish(10, "crash");

  // The same command again. The hold is released once the run waits for the interrupted migrate
  // (or, should that one be gone, once it starts its own).
  let out = "";
  const second = await runCli(args, bed.env, {
    timeoutMs: 600_000,
    onStdout: (chunk) => {
      out += chunk;
      if (/interrupted run's migrate still runs|migrate: started/.test(out)) app.holdMigration(false);
    },
  });
  app.holdMigration(false);
  const log = second.events().map(diagnosticOf).filter(Boolean).join("\n");
  expect([second.code, second.stderr]).toEqual([0, ""]);
  expect(log).toMatch(/backup skipped \(verified backup \S+utilitarian-1\.0\.0-to-2\.0\.0-.*\.dump of this upgrade kept/);
  expect(log).toMatch(/migrate: the interrupted run's migrate still runs in utilitarian_api \(.*python3 manage\.py migrate --no-input.*\): waiting for it/);
  expect(log).toMatch(/migrate skipped \(every migration is applied \(the interrupted run's migrate finished after \d+s\)\)/);
  expect(log).not.toMatch(/migrate: started/);
  expect(backups().filter((b) => !before.has(b))).toEqual(taken);
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "2.0.0" });
  expect(states()).toEqual(ALL_AT_2);
  expect((await app.apiVersion())?.migrations).toEqual(BOTH_MIGRATIONS);
  expect(app.postgres.query("SELECT count(*) FROM django_migrations WHERE app = 'meters' AND name = '0002_meter_location_unique_serial';")).toBe("1");
  expect(meters()).toBe(rowsBefore);
  expect(await app.rabbitmq.depth(POSTER_QUEUE)).toBe(0);
  expect(Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage WHERE body LIKE 'crash-%';"))).toBe(10);
  expect(Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage;"))).toBe(postedBefore + 10);
}, 900_000);

const diagnosticOf = (e: Record<string, unknown>) => (e as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message?.trim() ?? "";

/** 2.0.0's migration is inside its transaction: its AccessExclusiveLock on meters_meter is granted. */
const migrationHoldsLock = () =>
  app.postgres.query("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'meters_meter' AND l.mode = 'AccessExclusiveLock' AND l.granted;") !== "0";
