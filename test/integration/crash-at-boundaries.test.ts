import { awsSnapshot } from "../sandbox/awsState";
import { runCli, startCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { startSandbox, type Sandbox } from "../sandbox";

// Fault suite, part 2: kill -9 of the whole run right after each step ends, then the same command
// again. Every second run must succeed, restore every alarm, and cancel computations at most once.
let bed: Sandbox;
const scenarios: CodeOceanScenario[] = [];
const rows: string[] = [];

beforeAll(async () => {
  bed = await startSandbox();
});
afterAll(async () => {
  for (const s of scenarios) await s.stop();
  await bed?.stop();
  process.stderr.write(["", "fault suite: kill -9 at step boundaries", ...rows, ""].join("\n"));
});

const BOUNDARIES = [
  "select-stack", "lock-stack", "repair-interrupted-update", "read-outputs", "refresh-config", "checkout-release",
  "plan-update", "confirm-plan", "cancel-computations", "wait-idle-workers", "restore-point", "remove-scale-in-protection", "suspend-alarms", "preview", "up", "verify-deployment",
];

test.each(BOUNDARIES)("kill -9 after %s, then the same command succeeds", async (boundary) => {
  const started = Date.now();
  const stackName = `kill-${String.fromCharCode(97 + BOUNDARIES.indexOf(boundary))}`;
  const s = await startCodeOceanScenario(bed, { stackName, workers: 1, gpuWorkers: 0, drainMs: 1000 });
  scenarios.push(s);
  const args = ["upgrade", ...s.upgradeArgs, "--release", "2.0.0", "--yes", "--json"];
  const first = startCli(args, bed.env, (e) => {
    if (e.type === "step-end" && e.step === boundary) first.signal("SIGKILL", true);
  });
  expect(await first.exited).toBe(137);

  const second = await runCli(args, bed.env);
  expect(second.code).toBe(0);
  const ends = second.events().filter((e) => e.type === "step-end");
  expect(ends.every((e) => e.status !== "failed")).toBe(true);
  expect(s.services.requests().filter((r) => r.path === "/cancel_computations").length).toBeLessThanOrEqual(1);
  expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
  const aws = await awsSnapshot(bed.env);
  // one restore point for the upgrade, however the runs split it: a resumed run adopts what the killed one took
  expect(aws.restorePoints[stackName]).toHaveLength(1);
  const alarms = Object.entries(aws.alarms).filter(([name]) => name.includes(`${stackName}-`));
  expect(alarms.length).toBe(13); // the deployment's alarm set without the GPU fleet's
  expect(alarms.every(([, enabled]) => enabled)).toBe(true);
  rows.push(`${boundary.padEnd(28)} resumed, succeeded  ${((Date.now() - started) / 1000).toFixed(1)}s`);
});
