import * as fs from "node:fs";
import { freePort } from "../sandbox/processes";
import { runCli, startCli } from "../sandbox/cli";
import { startBackendAiCluster, type BackendAiFixture } from "../sandbox/backendai";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";
import * as path from "node:path";

// Faults of the Backend.AI workflow against the real bed, through the CLI as a pipeline runs it:
// a crash in the middle of a hop, a migration that fails on the real database, a host that
// cannot be reached.
let bed: Sandbox;
const teardown: Array<() => Promise<void>> = [];

beforeAll(async () => {
  bed = await startSandbox({ aws: false });
});
afterAll(async () => {
  for (const stop of teardown.reverse()) await stop().catch(() => undefined);
  await bed?.stop();
});

interface Scenario {
  cluster: BackendAiFixture;
  own: OwnStack;
  /** `upgrade --stack <name> --cwd <project> --yes --json` */
  args: string[];
  setVersion(version: string, edit?: (hosts: Array<Record<string, unknown>>) => void): Promise<void>;
  deployedVersion(): Promise<unknown>;
}

async function scenario(name: string, version: string): Promise<Scenario> {
  const cluster = await startBackendAiCluster(bed, { version, components: ["manager", "agent"], dir: path.join(bed.dir, name) });
  teardown.push(() => cluster.stop());
  const own = await ownStack(bed, name, { sshKey: { value: cluster.privateKey, secret: true } });
  teardown.push(() => own.remove());
  const setVersion = async (v: string, edit?: (hosts: Array<Record<string, unknown>>) => void) => {
    const system = cluster.systemConfig(v, "sshKey");
    edit?.(system.hosts);
    await own.setSystems({ [name]: system });
  };
  await setVersion(version);
  const args = ["upgrade", "--stack", name, "--cwd", own.workDir, "--yes", "--json"];
  const first = await runCli(args, bed.env);
  expect([first.code, first.stderr]).toEqual([0, ""]);
  return { cluster, own, args, setVersion, deployedVersion: async () => ((await own.stack.outputs()).versions?.value as Record<string, unknown>)[name] };
}

const diagnostics = (stdout: string) =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; event?: { diagnosticEvent?: { message: string } } })
    .flatMap((e) => (e.type === "engine" && e.event?.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));

test("kill -9 of the whole run in the middle of a hop, then the same command: completes, earlier hops not redone", async () => {
  const s = await scenario("crashhop", "23.09.10");
  await s.setVersion("24.03.2");
  let killed = false;
  const first = startCli(s.args, bed.env, (e) => {
    const message = (e as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message ?? "";
    if (!killed && /hop 24\.03\.0 → 24\.03\.2: install-manager done/.test(message)) {
      killed = true;
      first.signal("SIGKILL", true);
    }
  });
  expect(await first.exited).toBe(137);
  // the crash left the cluster mid-hop: the manager has the new package but is stopped
  expect([s.cluster.installedVersion("manager"), s.cluster.running("manager"), s.cluster.installedVersion("agent")]).toEqual(["24.03.2", false, "24.03.0"]);
  expect(await s.deployedVersion()).toBe("23.09.10");

  const second = await runCli(s.args, bed.env);
  expect([second.code, second.stderr]).toEqual([0, ""]);
  const log = diagnostics(second.stdout).join("\n");
  expect(log).toMatch(/hop 23\.09\.10 → 24\.03\.0: already done on every host, not repeated/);
  expect(log).not.toMatch(/hop 23\.09\.10 → 24\.03\.0: (stop-manager|pair-schema-step|install-manager|migrate-schema|apply-missing-revisions) done/);
  expect(log).toMatch(/hop 24\.03\.0 → 24\.03\.2: install-manager skipped \(already 24\.03\.2\)/);
  expect(log).toMatch(/hop 24\.03\.0 → 24\.03\.2: migrate-schema done/);
  expect(await s.deployedVersion()).toBe("24.03.2");
  for (const c of ["manager", "agent"]) expect([c, s.cluster.installedVersion(c), s.cluster.running(c)]).toEqual([c, "24.03.2", true]);
  expect(s.cluster.revision()).toEqual([s.cluster.heads["24.03.2"]]);
}, 480_000); // the first hop makes a new Python 3.12 environment on each host

test("24.03.11 → 24.09.0 on PostgreSQL 15: refused before anything is touched (24.09 needs 16)", async () => {
  const s = await scenario("pg15", "24.03.11");
  expect(s.cluster.postgres.majorVersion).toBeLessThan(16);
  await s.setVersion("24.09.0");
  const result = await runCli(s.args, bed.env);
  expect(result.code).toBe(3); // refused by a safety check
  const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
  expect(summary.error).toMatch(/24\.09 needs PostgreSQL 16; the manager's database runs 1[0-5]/);
  expect(summary.error).toMatch(/pg_dump, then restore into 16/);
  expect([s.cluster.installedVersion("manager"), s.cluster.running("manager"), s.cluster.revision()]).toEqual(["24.03.11", true, ["3596bc12ec09"]]);
  expect(await s.deployedVersion()).toBe("24.03.11");
}, 300_000);

describe("a cluster at 24.03.0", () => {
  let s: Scenario;
  beforeAll(async () => {
    s = await scenario("faulty", "24.03.0");
  }, 300_000); // hosts at 24.03 run Python 3.12 environments, installed from the wheels

  test("a host that cannot be reached: a clear error from up, nothing changed", async () => {
    const closed = await freePort();
    await s.setVersion("24.03.2", (hosts) => ((hosts[1]!.ssh as Record<string, unknown>).port = closed));
    const result = await runCli(s.args, bed.env);
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(summary.error).toMatch(new RegExp(`could not connect to the agent host \\(\\w+@127\\.0\\.0\\.1:${closed}\\): .*ECONNREFUSED`));
    expect(await s.deployedVersion()).toBe("24.03.0");
    expect([s.cluster.installedVersion("manager"), s.cluster.running("manager"), s.cluster.revision()]).toEqual(["24.03.0", true, [s.cluster.heads["24.03.0"]]]);
  });

  test("a failed migration stops the hop, leaves the manager stopped, and the state at the last completed version", async () => {
    // Two agents with one address: 24.03.2's unique index on agents.addr cannot be built.
    s.cluster.postgres.query("INSERT INTO agents (id, addr) VALUES ('i-1', '10.0.0.7:6001'), ('i-2', '10.0.0.7:6001');");
    await s.setVersion("24.03.2");
    const result = await runCli(s.args, bed.env);
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(summary.error).toMatch(/^could not apply the update \(pulumi up\): Backend\.AI upgrade stopped in hop 24\.03\.0 → 24\.03\.2; the cluster's completed version stays 24\.03\.0: could not hop 24\.03\.0 → 24\.03\.2: alembic upgrade head/);
    expect(summary.error).toMatch(/agents_addr_unique/);
    expect(summary.error).toMatch(/schema was at a1b2c3d40300, now at a1b2c3d40300, head b5c6d7e80302/);
    expect(summary.error).toMatch(/the manager was left stopped on purpose/);
    // not started on a half-migrated schema; the other components untouched
    expect([s.cluster.installedVersion("manager"), s.cluster.running("manager")]).toEqual(["24.03.2", false]);
    expect([s.cluster.installedVersion("agent"), s.cluster.running("agent")]).toEqual(["24.03.0", true]);
    expect(s.cluster.revision()).toEqual(["a1b2c3d40300"]);
    expect(await s.deployedVersion()).toBe("24.03.0");

    // the data fixed, the same command completes the hop
    s.cluster.postgres.query("DELETE FROM agents WHERE id = 'i-2';");
    const again = await runCli(s.args, bed.env);
    expect([again.code, again.stderr]).toEqual([0, ""]);
    expect(await s.deployedVersion()).toBe("24.03.2");
    expect(s.cluster.revision()).toEqual(["b5c6d7e80302"]);
    for (const c of ["manager", "agent"]) expect([c, s.cluster.installedVersion(c), s.cluster.running(c)]).toEqual([c, "24.03.2", true]);
    expect(fs.existsSync(s.own.workDir)).toBe(true);
  }, 480_000); // two runs of the hop on hosts in Python 3.12 environments
});
