import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade } from "../../stacks/upgrade";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";
import { POSTER_QUEUE, SERVICES, startUtilitarian, type UtilitarianFixture } from "../sandbox/utilitarian";

// Runbook 4 (Utilitarian) as the UtilitarianService resource of an own stack: a Docker Compose v2
// project on real podman (runc) behind `podman system service`, images pulled by their quay.io
// names from a local registry, Django migrations against the bed's PostgreSQL, the poster
// consuming the bed's RabbitMQ, the host reached through the bed's sshd.
let bed: Sandbox;
let app: UtilitarianFixture;
let own: OwnStack;
const outputs: string[] = [];

const systems = (version: string) => ({ util: app.systemConfig(version, "utilSshKey", "utilDbPassword") });

async function run(onEvent?: (e: UpgradeEvent) => void) {
  const events: UpgradeEvent[] = [];
  const started = Date.now();
  const result = await upgrade({
    stack: own.stack.name,
    cwd: own.workDir,
    yes: true,
    env: bed.env,
    onEvent: (e) => {
      events.push(e);
      onEvent?.(e);
    },
  });
  outputs.push(JSON.stringify(events), result.report);
  return { result, events, diagnostics: diagnosticsOf(events), ms: Date.now() - started };
}

const diagnosticsOf = (events: UpgradeEvent[]) =>
  events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));

const images = () => Object.fromEntries(Object.entries(app.services()).map(([name, c]) => [name, `${c.state} ${c.image}`]));

beforeAll(async () => {
  const started = Date.now();
  bed = await startSandbox({ aws: false });
  app = await startUtilitarian(bed, { version: "1.0.0" });
  own = await ownStack(bed, "util", { utilSshKey: { value: app.privateKey, secret: true }, utilDbPassword: { value: app.postgres.password, secret: true } });
  await own.setSystems(systems("1.0.0"));
  process.stderr.write(`utilitarian bed ready in ${Date.now() - started} ms\n`);
}, 900_000);
afterAll(async () => {
  await own?.remove();
  await app?.stop();
  await bed?.stop();
}, 300_000);

const AT_1 = {
  [SERVICES.api]: "running quay.io/pwit/utilitarian:1.0.0",
  [SERVICES.worker]: "running quay.io/pwit/utilitarian:1.0.0",
  [SERVICES.beat]: "running quay.io/pwit/utilitarian:1.0.0",
  [SERVICES.poster]: "running quay.io/pwit/utilitarian-poster:1.0.0",
};

test("a first `up` adopts the running deployment at the version its compose file names, changing nothing", async () => {
  const before = fs.readFileSync(app.composeFile, "utf8");
  const { result, diagnostics } = await run();
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ util: "1.0.0" });
  expect(diagnostics.join("\n")).toMatch(/already at 1\.0\.0/);
  expect(images()).toEqual(AT_1);
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(before);
});

test("preview of 1.0.0 → 2.0.0 shows the version and the services whose image changes, as an update", async () => {
  await own.setSystems(systems("2.0.0"));
  const events: EngineEvent[] = [];
  const preview = await own.stack.preview({ onEvent: (e) => events.push(e) });
  expect(preview.changeSummary).toMatchObject({ update: 1 });
  const step = events.map((e) => e.resourcePreEvent?.metadata).find((m) => m?.type.endsWith("UtilitarianService"));
  expect(step?.op).toBe("update");
  expect(step?.new?.inputs.imageChanges).toEqual([
    "utilitarian_api: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-beat: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-worker: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
  ]);
  expect(images()).toEqual(AT_1);
});

test("`up` takes the deployment to 2.0.0: verified backup, new migration, every service on 2.0.0, messages queued during the downtime consumed", async () => {
  const before = fs.readFileSync(app.composeFile, "utf8");
  const postedBefore = Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage;"));
  let published = 0;
  const { result, diagnostics, ms } = await run((e) => {
    // while the poster is stopped, the meters keep sending: messages wait in its queue
    const message = e.type === "engine" ? e.event.diagnosticEvent?.message ?? "" : "";
    if (/stop-dependents done/.test(message) && published === 0) {
      app.publish(20, "downtime");
      published = 20;
    }
  });
  const log = diagnostics.join("\n");
  process.stderr.write(`utilitarian 1.0.0 → 2.0.0 in ${ms} ms\n${log}\n`);
  expect(result.error).toBeUndefined();
  expect(result.exitCode).toBe(0);
  expect(result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(published).toBe(20);

  // the verified backup: on disk, with the checksum the state records
  const state = (await own.stack.exportStack()).deployment as { resources: Array<{ type: string; outputs: Record<string, unknown> }> };
  const resource = state.resources.find((r) => r.type.endsWith("UtilitarianService"))!;
  const backup = resource.outputs.backup as { path: string; sha256: string };
  expect(backup.path.startsWith(app.backupDir)).toBe(true);
  expect(execFileSync("sha256sum", [backup.path], { encoding: "utf8" }).split(" ")[0]).toBe(backup.sha256);
  expect(fs.readFileSync(`${backup.path}.sha256`, "utf8").trim()).toBe(backup.sha256);
  expect(log).toMatch(/backup done \(.*restored into a scratch database: \d+ tables\)/);
  expect(app.postgres.query("SELECT count(*) FROM pg_database WHERE datname LIKE '%_verify_%';")).toBe("0");

  // every Utilitarian service runs 2.0.0; the poster keeps its own image
  expect(images()).toEqual({ ...AT_1, [SERVICES.api]: "running quay.io/pwit/utilitarian:2.0.0", [SERVICES.worker]: "running quay.io/pwit/utilitarian:2.0.0", [SERVICES.beat]: "running quay.io/pwit/utilitarian:2.0.0" });
  expect(await app.apiVersion()).toEqual({ version: "2.0.0", migrations: ["meters.0001_initial", "meters.0002_meter_location_unique_serial"] });
  expect(app.postgres.query("SELECT count(*) FROM meters_meter;")).toBe("50");
  // collectstatic and compress ran in the API container (compress wrote its offline manifest)
  expect(fs.existsSync(path.join(app.projectDir, "static", "meters", "dashboard.css"))).toBe(true);
  expect(fs.existsSync(path.join(app.projectDir, "static", "CACHE", "manifest.json"))).toBe(true);

  // the messages sent during the downtime were consumed once the poster was back
  expect(await app.rabbitmq.depth(POSTER_QUEUE)).toBe(0);
  expect(Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage WHERE body LIKE 'downtime-%';"))).toBe(20);
  expect(Number(app.postgres.query("SELECT count(*) FROM meters_postedmessage;"))).toBe(postedBefore + 20);

  // the compose file: only the tag changed, the previous one kept beside it
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(before.replace("quay.io/pwit/utilitarian:1.0.0", "quay.io/pwit/utilitarian:2.0.0"));
  expect(fs.readFileSync(`${app.composeFile}.before-1.0.0`, "utf8")).toBe(before);
  // the steps in the runbook's order
  const order = ["read-deployment", "pull-image", "backup", "check-queues", "stop-dependents", "stop-app", "rewrite-compose-file", "start-api", "migrate", "collectstatic", "compress", "start-all", "verify"];
  const positions = order.map((id) => log.indexOf(`${id} done`));
  expect(positions.every((p) => p >= 0)).toBe(true);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  expect(log).toMatch(/migrate done \(applied meters\.0002_meter_location_unique_serial\)/);
});

test("a second `up` changes nothing", async () => {
  const { result } = await run();
  expect(result.exitCode).toBe(0);
  expect(result.steps.find((s) => s.step === "up")).toMatchObject({ status: "skipped", note: "nothing to update" });
});

test("a downgrade fails at preview naming the backup to restore instead, and nothing changes", async () => {
  const composeBefore = fs.readFileSync(app.composeFile, "utf8");
  await own.setSystems(systems("1.0.0"));
  const { result } = await run();
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(/2\.0\.0 → 1\.0\.0 is a downgrade.*restore the backup taken before the upgrade to 2\.0\.0: .*utilitarian-1\.0\.0-to-2\.0\.0-.*\.dump \(.*pg_restore --clean/s);
  expect(fs.readFileSync(app.composeFile, "utf8")).toBe(composeBefore);
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "2.0.0" });
  expect(Object.values(images()).every((s) => s.startsWith("running"))).toBe(true);
});

test("no SSH key or database password in the plaintext state, the events or the reports", async () => {
  const backend = fileURLToPath(bed.pulumi!.backendUrl);
  const state = files(backend).filter((f) => f.endsWith(".json")).map((f) => fs.readFileSync(f, "utf8")).join("\n");
  const keyLines = app.privateKey.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"));
  expect(keyLines.length).toBeGreaterThan(0);
  for (const text of [state, ...outputs]) {
    for (const line of keyLines) expect(text.includes(line)).toBe(false);
    expect(text.includes(app.postgres.password)).toBe(false);
  }
});

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
