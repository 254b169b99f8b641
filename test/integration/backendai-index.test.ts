import * as path from "node:path";
import { freePort } from "../sandbox/processes";
import { runCli } from "../sandbox/cli";
import { startBackendAiCluster, type BackendAiFixture } from "../sandbox/backendai";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// The Backend.AI workflow against the bed's package index (real pip, the simple API on loopback):
// the Python each release needs, the catalog read from the index and its fallback, and the
// preflight that every hop installs before anything stops. Through the CLI, as a pipeline runs it.
let bed: Sandbox;
let cluster: BackendAiFixture;
let own: OwnStack;
let args: string[];

type System = ReturnType<BackendAiFixture["systemConfig"]>;
const setSystem = (version: string, edit: (system: System) => void = () => {}) => {
  const system = cluster.systemConfig(version, "sshKey");
  edit(system);
  return own.setSystems({ bai: system });
};
const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as { error?: string; exitCode?: number };
const diagnostics = (stdout: string) =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; event?: { diagnosticEvent?: { message: string; severity: string } } })
    .flatMap((e) => (e.type === "engine" && e.event?.diagnosticEvent ? [`${e.event.diagnosticEvent.severity}: ${e.event.diagnosticEvent.message.trim()}`] : []));

/** Nothing changed on the hosts: the same version, running, in the same Python 3.11 environment. */
function unchanged(): void {
  for (const c of ["manager", "agent"]) {
    expect([c, cluster.installedVersion(c), cluster.running(c), cluster.pythonOf(c)]).toEqual([c, "23.09.10", true, expect.stringMatching(/^3\.11\./)]);
    expect(cluster.environment(c)).toMatch(/venv-py3\.11$/);
  }
  expect(cluster.revision()).toEqual([cluster.heads["23.09.10"]]);
}

beforeAll(async () => {
  bed = await startSandbox({ aws: false });
  cluster = await startBackendAiCluster(bed, { version: "23.09.10", components: ["manager", "agent"], dir: path.join(bed.dir, "bai") });
  own = await ownStack(bed, "bai", { sshKey: { value: cluster.privateKey, secret: true } });
  args = ["upgrade", "--stack", "bai", "--cwd", own.workDir, "--yes", "--json"];
  await setSystem("23.09.10");
  const adopt = await runCli(args, bed.env);
  expect([adopt.code, adopt.stderr]).toEqual([0, ""]);
});
afterAll(async () => {
  await own?.remove();
  await cluster?.stop();
  await bed?.stop();
});

test("no interpreter for the Python a hop needs: the preview refuses, naming the hop and the Python; nothing stopped", async () => {
  await setSystem("24.03.0", (system) => delete system.hosts[1]!.pythons);
  const run = await runCli(args, bed.env);
  expect(run.code).not.toBe(0);
  const { error } = summaryOf(run.stdout);
  expect(error).toMatch(/hop 23\.09\.10 → 24\.03\.0 needs Python <3\.13,>=3\.12 \(Requires-Python of the release\), and no interpreter in `pythons` matches on agent/);
  expect(error).toMatch(/pythons: \{ "3\.12": "\/usr\/bin\/python3\.12" \}/);
  unchanged();
});

test("a live catalog read that fails falls back to the bundled catalog, with a warning", async () => {
  const closed = await freePort();
  await setSystem("23.09.10", (system) => ((system as Record<string, unknown>).catalog = `http://127.0.0.1:${closed}/simple`));
  const preview = await runCli(["upgrade", "--stack", "bai", "--cwd", own.workDir, "--dry-run", "--json"], bed.env);
  expect(preview.code).toBe(0);
  // the version is unchanged, so check plans nothing; an adopted cluster's refresh reads nothing either:
  // ask for a change to see the fallback's plan
  await setSystem("24.03.0", (system) => ((system as Record<string, unknown>).catalog = `http://127.0.0.1:${closed}/simple`));
  const dry = await runCli(["upgrade", "--stack", "bai", "--cwd", own.workDir, "--dry-run", "--json"], bed.env);
  expect(dry.code).toBe(0);
  const lines = diagnostics(dry.stdout).join("\n");
  expect(lines).toMatch(new RegExp(`warning: backend\\.ai 24\\.03\\.0: could not read the release catalog from http://127\\.0\\.0\\.1:${closed}/simple/backend-ai-manager/ \\(.*ECONNREFUSED.*\\); planning over the bundled catalog of \\d{4}-\\d{2}-\\d{2}`));
  expect(dry.stdout).toMatch(/24\.03\.0/);
  unchanged();
});

test("a path whose release the index does not have is refused by the preflight, before anything stops", async () => {
  // a catalog that knows a 24.03.99 the index has no file for: planned, but it cannot be installed
  const catalog = {
    source: "a test catalog",
    releases: [
      { version: "23.09.10", date: "2024-03-27", requiresPython: ">=3.11,<3.12" },
      { version: "24.03.0", date: "2024-04-05", requiresPython: "<3.13,>=3.12" },
      { version: "24.03.99", date: "2024-05-01", requiresPython: "<3.13,>=3.12" },
    ],
  };
  await setSystem("24.03.99", (system) => ((system as Record<string, unknown>).catalog = catalog));
  const run = await runCli(args, bed.env);
  expect(run.code).toBe(3);
  const { error } = summaryOf(run.stdout);
  expect(error).toMatch(/could not check that backend\.ai-manager==24\.03\.99 installs on manager@127\.0\.0\.1:\d+ \(Python 3\.12\)/);
  expect(error).toMatch(/No matching distribution found for backend\.ai-manager==24\.03\.99/);
  expect(error).toMatch(/nothing was stopped/);
  unchanged();
});

test("the hop across the interpreter change upgrades for real; the old environment goes once it verified", async () => {
  await setSystem("24.03.0");
  const run = await runCli(args, bed.env);
  expect([run.code, run.stderr]).toEqual([0, ""]);
  const lines = diagnostics(run.stdout).join("\n");
  expect(lines).toMatch(/manager@127\.0\.0\.1:\d+: 23\.09\.10 → 24\.03\.0 needs Python <3\.13,>=3\.12; a new environment .*venv-py3\.12 with .*python3\.12 \(Python 3\.12\) replaces .*venv-py3\.11/);
  for (const c of ["manager", "agent"]) {
    expect([c, cluster.installedVersion(c), cluster.running(c), cluster.pythonOf(c)]).toEqual([c, "24.03.0", true, expect.stringMatching(/^3\.12\./)]);
    expect(cluster.environment(c)).toMatch(/venv-py3\.12$/);
  }
  expect(cluster.revision()).toEqual([cluster.heads["24.03.0"]]);
}, 480_000);
