import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CLI } from "../sandbox/cli";
import { REPO_ROOT } from "../sandbox/fixtures";

// What each command loads, seen from inside the CLI process: dist/test/sandbox/processProbe.js
// (node --require) records every module file in require.cache at exit. Commands that only parse,
// read a journal or plan a path must not load the Pulumi SDK, the AWS SDK, node-ssh or zod.
const PROBE = path.join(REPO_ROOT, "dist", "test", "sandbox", "processProbe.js");
const HEAVY = /node_modules\/(@pulumi\/pulumi|@aws-sdk|@smithy|node-ssh|ssh2|zod)\//;
let dir: string;

beforeAll(() => {
  if (!fs.existsSync(PROBE)) throw new Error(`${PROBE} is missing: run \`npm run build\` (npm test does)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-startup-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function loaded(args: string[]): { code: number | null; stdout: string; heavy: string[]; modules: string[] } {
  const file = path.join(dir, `probe-${Date.now()}-${Math.random()}.json`);
  const run = spawnSync(process.execPath, ["--require", PROBE, CLI, ...args], {
    env: { ...process.env, UO_PROBE_FILE: file, UPGRADE_ORCHESTRATOR_STATE: path.join(dir, "state") },
    encoding: "utf8",
    timeout: 60_000,
  });
  const { modules } = JSON.parse(fs.readFileSync(file, "utf8")) as { modules: string[] };
  const heavy = [...new Set(modules.flatMap((m) => HEAVY.exec(m)?.[1] ?? []))];
  return { code: run.status, stdout: run.stdout, heavy, modules };
}

test.each([
  [["upgrade", "--help"]],
  [["--help"]],
  [["status", "--stack", "prod", "--cwd", "/nowhere", "--json"]],
  [["backendai", "path", "--from", "23.09.8", "--to", "24.03.2", "--catalog", "bundled"]],
])("%j loads neither the Pulumi SDK nor the AWS SDK (nor node-ssh, zod)", (args) => {
  const run = loaded(args);
  expect(run.code).toBe(0);
  expect(run.stdout).not.toBe("");
  expect(run.heavy).toEqual([]);
  // the driver itself stays unloaded too
  expect(run.modules.filter((m) => /dist\/stacks\/(upgrade|driverSteps|updateSteps)\.js$/.test(m))).toEqual([]);
});

test("the probe sees the SDK when a command does load it (an upgrade reaches select-stack)", () => {
  const run = loaded(["upgrade", "--stack", "prod", "--cwd", dir, "--yes", "--json"]);
  expect(run.code).toBe(2); // no Pulumi.yaml there
  expect(run.heavy).toContain("@pulumi/pulumi");
  // runbook steps (AWS SDK clients, node-ssh) load only when a runbook step runs
  expect(run.heavy.filter((h) => h !== "@pulumi/pulumi")).toEqual([]);
});
