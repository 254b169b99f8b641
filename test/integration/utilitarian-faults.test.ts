import * as fs from "node:fs";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade } from "../../stacks/upgrade";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { freePort } from "../sandbox/processes";
import { startSandbox, type Sandbox } from "../sandbox";
import { SERVICES, startUtilitarian, type UtilitarianFixture } from "../sandbox/utilitarian";

// Bad input and faults of runbook 4 against the bed (see utilitarian-service.test.ts for the bed):
// each is refused or stopped with a clear error and a hint; nothing is lost; the compose file is
// either the old one or the new one.
let bed: Sandbox;
let app: UtilitarianFixture;
let own: OwnStack;

type System = Record<string, unknown>;
const system = (version: string, patch: (s: System) => void = () => undefined) => {
  const s = app.systemConfig(version, "utilSshKey", "utilDbPassword");
  patch(s);
  return { util: s };
};

async function run() {
  const events: UpgradeEvent[] = [];
  const result = await upgrade({ stack: own.stack.name, cwd: own.workDir, yes: true, env: bed.env, onEvent: (e) => events.push(e) });
  const diagnostics = events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));
  return { result, log: diagnostics.join("\n") };
}

const states = () => Object.fromEntries(Object.entries(app.services()).map(([name, c]) => [name, `${c.state} ${c.image.split(":").at(-1)}`]));
const ALL_AT_1 = { [SERVICES.api]: "running 1.0.0", [SERVICES.worker]: "running 1.0.0", [SERVICES.beat]: "running 1.0.0", [SERVICES.poster]: "running 1.0.0" };
const backups = () => fs.readdirSync(app.backupDir).filter((f) => f.endsWith(".dump"));
const meters = () => app.postgres.query("SELECT count(*) FROM meters_meter;");
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
  expect(result.error?.message).toMatch(/have no service dlms_processor .*what to do: set services\.api, services\.beat, services\.workers and services\.dependents/s);
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

test("a failing migration stops with the API on 2.0.0 and the rest stopped, naming the migration, the verified backup and the restore; fixed data and `up` again completes without a second backup", async () => {
  // two meters with one serial: 2.0.0's migration makes serials unique and fails on them
  app.postgres.query("INSERT INTO meters_meter (serial, name) VALUES ('M7', 'duplicate of meter 7');");
  const rowsBefore = meters();
  await own.setSystems(system("2.0.0"));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  const message = result.error?.message ?? "";
  expect(message).toMatch(/migration meters\.0002_meter_location_unique_serial failed \(could not apply migration meters\.0002_meter_location_unique_serial: .*(duplicate|unique)/is);
  expect(message).toMatch(/The API runs quay\.io\/pwit\/utilitarian:2\.0\.0, the beat, workers and dependents are stopped/);
  expect(message).toMatch(/Verified backup: .*utilitarian-1\.0\.0-to-2\.0\.0-\d{8}T\d{6}Z\.dump \(sha256 [0-9a-f]{64}\); to restore it: PGPASSWORD=… pg_restore --clean --if-exists --no-owner .* -d utilitarian .*\.dump, and put back .*compose\.yaml\.before-1\.0\.0/);
  expect(message.includes(app.postgres.password)).toBe(false);
  expect(states()).toEqual({ [SERVICES.api]: "running 2.0.0", [SERVICES.worker]: "exited 1.0.0", [SERVICES.beat]: "exited 1.0.0", [SERVICES.poster]: "exited 1.0.0" });
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
  expect(meters()).toBe(rowsBefore);
  expect((await app.apiVersion())?.migrations).toEqual(["meters.0001_initial"]);
  expect(backups()).toHaveLength(1);
  const [backup] = backups();

  app.postgres.query("DELETE FROM meters_meter WHERE name = 'duplicate of meter 7';");
  const again = await run();
  expect(again.result.error).toBeUndefined();
  expect(again.result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(again.log).toMatch(/backup skipped \(verified backup .*utilitarian-1\.0\.0-to-2\.0\.0-.*\.dump of this upgrade kept/);
  expect(again.log).toMatch(/rewrite-compose-file skipped/);
  expect(backups()).toEqual([backup]);
  expect(states()).toEqual({ [SERVICES.api]: "running 2.0.0", [SERVICES.worker]: "running 2.0.0", [SERVICES.beat]: "running 2.0.0", [SERVICES.poster]: "running 1.0.0" });
  expect((await app.apiVersion())?.migrations).toEqual(["meters.0001_initial", "meters.0002_meter_location_unique_serial"]);
  expect(meters()).toBe(String(Number(rowsBefore) - 1));
}, 600_000);
