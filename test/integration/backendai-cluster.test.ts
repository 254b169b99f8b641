import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade } from "../../stacks/upgrade";
import { runCli } from "../sandbox/cli";
import { startBackendAiCluster, type BackendAiFixture } from "../sandbox/backendai";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Runbook 3 (Backend.AI) as the BackendAiCluster resource of an own stack, driven by the same
// driver as any stack: the hosts are the bed's sshd, pip installs the fixture wheels, Alembic
// migrates the bed's PostgreSQL, the components are real processes.
let bed: Sandbox;
let cluster: BackendAiFixture;
let own: OwnStack;
const outputs: string[] = [];

/** The own stack's config for the fixture cluster at `version`; the SSH key is a secret config key. */
const systems = (fixture: BackendAiFixture, version: string) => ({ bai: fixture.systemConfig(version, "baiSshKey") });

async function run(target: OwnStack, onEvent?: (e: UpgradeEvent) => void) {
  const events: UpgradeEvent[] = [];
  const result = await upgrade({
    stack: target.stack.name,
    cwd: target.workDir,
    yes: true,
    env: bed.env,
    onEvent: (e) => {
      events.push(e);
      onEvent?.(e);
    },
  });
  outputs.push(JSON.stringify(events), result.report);
  return { result, events, diagnostics: diagnosticsOf(events) };
}

const diagnosticsOf = (events: UpgradeEvent[]) =>
  events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));

beforeAll(async () => {
  bed = await startSandbox({ aws: false });
  cluster = await startBackendAiCluster(bed, { version: "23.09.8" });
  own = await ownStack(bed, "bai", { baiSshKey: { value: cluster.privateKey, secret: true } });
  await own.setSystems(systems(cluster, "23.09.8"));
});
afterAll(async () => {
  await own?.remove();
  await cluster?.stop();
  await bed?.stop();
});

test("a first `up` adopts the running cluster at its installed version, changing nothing on the hosts", async () => {
  const { result, diagnostics } = await run(own);
  expect(result.error).toBeUndefined();
  expect(result.exitCode).toBe(0);
  expect(result.outputs?.versions).toEqual({ bai: "23.09.8" });
  expect(diagnostics.join("\n")).toMatch(/already at 23\.09\.8/);
  for (const c of ["manager", "agent", "storage-proxy"]) {
    expect([c, cluster.installedVersion(c), cluster.running(c)]).toEqual([c, "23.09.8", true]);
  }
});

test("preview of 23.09.8 → 24.03.2 shows the planned hops, as an update (never a replace)", async () => {
  await own.setSystems(systems(cluster, "24.03.2"));
  const events: EngineEvent[] = [];
  const preview = await own.stack.preview({ onEvent: (e) => events.push(e) });
  expect(preview.changeSummary).toMatchObject({ update: 1 });
  const step = events.map((e) => e.resourcePreEvent?.metadata).find((m) => m?.type.endsWith("BackendAiCluster"));
  expect(step?.op).toBe("update");
  expect(step?.new?.inputs.plannedPath).toEqual(["23.09.10", "24.03.0", "24.03.2"]);
  expect(preview.stdout).toMatch(/plannedPath/);

  // what an operator at a terminal sees: the dry run's preview names the change and the hops
  const dry = await runCli(["upgrade", "--stack", own.stack.name, "--cwd", own.workDir, "--dry-run"], bed.env);
  outputs.push(dry.stdout, dry.stderr);
  expect(dry.code).toBe(0);
  const line = dry.stdout.split("\n").find((l) => l.includes("[confirm-plan] ~ pulumi-nodejs:dynamic/backendai:BackendAiCluster bai ("));
  expect(line).toMatch(/version: 23\.09\.8 → 24\.03\.2/);
  expect(line).toMatch(/plannedPath: \(none\) → 23\.09\.10, 24\.03\.0, 24\.03\.2/);
  expect(cluster.installedVersion("manager")).toBe("23.09.8");
});

test.each([
  // yanked on the bed's index (PEP 592): never planned, and the refusal names the index it read
  ["24.03.1", /24\.03\.1 cannot be installed: yanked on the index \(broken version\) \(catalog: the package index http:\/\/127\.0\.0\.1:\d+\/simple\/backend-ai-manager\/ \(PEP 691 JSON.*nearest allowed change is to 24\.03\.2: 23\.09\.8 → 23\.09\.10 → 24\.03\.0 → 24\.03\.2/s],
  ["24.03.0rc1", /24\.03\.0rc1 is a pre-release/],
  ["23.09.6", /downgrades are not supported/],
  ["24.3", /not a Backend\.AI version/],
])("a forbidden change to %s fails at preview with the reason, and nothing changes", async (version, reason) => {
  await own.setSystems(systems(cluster, version));
  const { result } = await run(own);
  expect(result.exitCode).toBe(1);
  expect(result.steps.find((s) => s.step === "plan-update")).toMatchObject({ status: "failed" });
  expect(result.error?.message).toMatch(reason);
  expect(cluster.installedVersion("manager")).toBe("23.09.8");
  expect((await own.stack.outputs()).versions?.value).toEqual({ bai: "23.09.8" });
});

test("invalid settings fail at preview naming the key", async () => {
  const bad = systems(cluster, "24.03.2");
  bad.bai.hosts[1]!.ssh.port = "twenty-two";
  await own.setSystems(bad);
  const { result } = await run(own);
  expect(result.exitCode).toBe(1);
  expect(result.error?.message).toMatch(/upgrade-orchestrator:systems\.bai\.hosts\[1\]\.ssh\.port: .*expected number/);
});

test("running compute sessions refuse the major upgrade before anything is touched", async () => {
  cluster.postgres.query("INSERT INTO sessions (name, status) VALUES ('training-job', 'RUNNING');");
  try {
    await own.setSystems(systems(cluster, "24.03.2"));
    const { result } = await run(own);
    // refused by a safety check: exit 3 (the provider's "refused: " reaches the driver's exit code)
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/1 compute session\(s\) are running, and 23\.09\.10 → 24\.03\.0 is a major upgrade/);
    expect([cluster.installedVersion("manager"), cluster.running("manager"), cluster.revision()]).toEqual(["23.09.8", true, [cluster.heads["23.09.8"]]]);
    expect((await own.stack.outputs()).versions?.value).toEqual({ bai: "23.09.8" });
  } finally {
    cluster.postgres.query("UPDATE sessions SET status = 'TERMINATED';");
  }
});

test("`up` performs every hop with real pip, Alembic and PostgreSQL; the database ends at the target's head", async () => {
  await own.setSystems(systems(cluster, "24.03.2"));
  const { result, diagnostics } = await run(own);
  expect(result.error).toBeUndefined();
  expect(result.exitCode).toBe(0);
  expect(result.outputs?.versions).toEqual({ bai: "24.03.2" });
  const log = diagnostics.join("\n");
  expect(log).toMatch(/plan: 23\.09\.8 → 23\.09\.10 → 24\.03\.0 → 24\.03\.2/);
  expect(log).toMatch(/skipped 24\.03\.1: yanked on the index \(broken version\)/);
  expect(log).toMatch(/skipped 23\.09\.11: listed on the index without any distribution file/);
  // the interpreter follows the release: 24.03 needs 3.12, so each host got a new environment in
  // hop 23.09.10 → 24.03.0, its service restarted in it, the old one kept until verified, then removed
  expect(log).toMatch(/hop 23\.09\.10 → 24\.03\.0: prepare-environments done/);
  expect(log).toMatch(/hop 23\.09\.10 → 24\.03\.0: install-manager done \(switched .*venv to .*venv-py3\.12 \(Python 3\.12\); .*venv-py3\.11 kept until the hop is verified\)/);
  expect(log.indexOf("24.03.0: verify-versions done")).toBeLessThan(log.indexOf("24.03.0: remove-old-environments done"));
  expect(log).not.toMatch(/hop 24\.03\.0 → 24\.03\.2: prepare-environments/);
  for (const c of ["manager", "agent", "storage-proxy"]) {
    expect([c, cluster.pythonOf(c)]).toEqual([c, expect.stringMatching(/^3\.12\./)]);
    expect(cluster.environment(c)).toMatch(/venv-py3\.12$/);
    expect(fs.existsSync(cluster.environment(c).replace(/venv-py3\.12$/, "venv-py3.11"))).toBe(false);
  }
  // the catalog was read from the bed's index, as pip reads it
  expect(cluster.index.requests).toContainEqual({ path: "/simple/backend-ai-manager/", accept: expect.stringMatching(/^application\/vnd\.pypi\.simple\.v1\+json/) });
  // the pair-specific step of 23.09 → 24.03, with the old package, then the new one
  expect(log).toMatch(/hop 23\.09\.10 → 24\.03\.0: pair-schema-step done \(alembic downgrade 85615e005fa3/);
  expect(log).toMatch(/hop 23\.09\.10 → 24\.03\.0: apply-missing-revisions done/);
  expect(log).not.toMatch(/apply-missing-revisions done.*\n.*hop 24\.03\.0 → 24\.03\.2: apply-missing-revisions/);
  for (const c of ["manager", "agent", "storage-proxy"]) {
    expect([c, cluster.installedVersion(c), cluster.running(c)]).toEqual([c, "24.03.2", true]);
  }
  expect(cluster.revision()).toEqual([cluster.heads["24.03.2"]]);
  expect(cluster.columns("endpoints")).toEqual(["id", "name", "retries", "session_id"]);
  expect(cluster.columns("agents")).toContain("auto_terminate");
}, 600_000); // three hops on three hosts, one of them making a new Python environment on each

test("a second `up` changes nothing", async () => {
  const { result } = await run(own);
  expect(result.exitCode).toBe(0);
  expect(result.steps.find((s) => s.step === "up")).toMatchObject({ status: "skipped", note: "nothing to update" });
});

test("no SSH key, database password or passphrase in the plaintext state, the events or the reports", async () => {
  const backend = fileURLToPath(bed.pulumi!.backendUrl);
  const stateFiles = files(backend).filter((f) => f.endsWith(".json") && f.includes(`${path.sep}stacks${path.sep}`));
  expect(stateFiles.length).toBeGreaterThan(0);
  const state = stateFiles.map((f) => fs.readFileSync(f, "utf8")).join("\n");
  const key = cluster.privateKey;
  const keyLines = key.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"));
  expect(keyLines.length).toBeGreaterThan(0);
  for (const text of [state, ...outputs]) {
    for (const line of keyLines) expect(text.includes(line)).toBe(false);
    expect(text.includes(cluster.postgres.password)).toBe(false);
    expect(text.includes(bed.env.PULUMI_CONFIG_PASSPHRASE!)).toBe(false);
  }
  // the hosts (with their keys) are in the state, encrypted
  expect(state).toMatch(/"hosts":\s*\{\s*"4dabf18193072939515e22adb298388d":\s*"1b47061264138c4ac30d75fd1eb44270",\s*"ciphertext"/);
});

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
