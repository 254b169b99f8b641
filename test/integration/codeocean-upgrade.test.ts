import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ListTagsForResourceCommand, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";
import { SUSPENDED_TAG } from "../../stacks/runbooks/codeocean/alarmActions";
import { journalPrefix, lockKey, openBackendStore } from "../../stacks/backend";
import { upgrade } from "../../stacks/upgrade";
import { startSandbox, type Sandbox } from "../sandbox";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";

// Runbook 1 end to end against the real bed: Pulumi engine, moto behind the fault proxy, sshd,
// and the services simulator publishing SlotsUtilization.
// The pipeline run goes on both Pulumi backends: file:// and an s3:// bucket in moto.
let bed: Sandbox;
const beds = {} as Record<"file" | "s3", Sandbox>;
const scenarios: CodeOceanScenario[] = [];

beforeAll(async () => {
  [beds.file, beds.s3] = await Promise.all([startSandbox(), startSandbox({ backend: "s3" })]);
  bed = beds.file;
});
afterAll(async () => {
  for (const s of scenarios) await s.stop();
  for (const b of Object.values(beds)) await b?.stop();
});

const STEP_IDS = [
  "select-stack", "lock-stack", "repair-interrupted-update", "read-outputs", "refresh-config", "checkout-release", "plan-update", "cancel-computations", "wait-idle-workers",
  "remove-scale-in-protection", "suspend-alarms", "preview", "up", "restore-alarms",
];

test.each(["file", "s3"] as const)("a pipeline run (--yes --json) on the %s backend upgrades 1.0.0 → 2.0.0: drains, unprotects in batches of 50, restores alarms", async (backend) => {
  const bed = beds[backend];
  const scenario = await startCodeOceanScenario(bed, { stackName: "pipeline", workers: 55, gpuWorkers: 2 });
  scenarios.push(scenario);
  const before = await awsSnapshot(bed.env);
  const oldAsg = scenario.deployment.outputs.workersAsgId!.value as string;
  expect(before.protection[oldAsg]).toHaveLength(55);
  bed.aws!.clearCalls();
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "uo-report-")), "report.md");

  const run = await runCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--report", report], bed.env);

  expect(run.stderr).not.toMatch(/error/i);
  expect(run.code).toBe(0);
  const events = run.events(); // every stdout line is JSON
  expect(events[0]).toMatchObject({ type: "run-start", stack: "pipeline" });
  expect(events.at(-1)).toMatchObject({ type: "summary", status: "succeeded", exitCode: 0 });
  const ends = events.filter((e) => e.type === "step-end");
  expect(ends.map((e) => e.step)).toEqual(STEP_IDS);
  expect(ends.every((e) => e.status === "done" && typeof e.durationMs === "number")).toBe(true);
  expect(events.some((e) => e.type === "engine" && e.step === "up")).toBe(true);

  // the services API got exactly one cancel request
  expect(scenario.services.requests()).toEqual([{ method: "POST", path: "/cancel_computations", status: 200 }]);
  // one GetMetricData per poll (and one for cancel-computations' check), and a progress event per poll
  const polls = events.filter((e) => e.type === "progress" && e.step === "wait-idle-workers");
  const metricCalls = bed.aws!.calls().filter((c) => c.action === "GetMetricData");
  expect(polls.length).toBeGreaterThan(0);
  expect(metricCalls).toHaveLength(polls.length + 1);
  // SetInstanceProtection in batches of at most 50 ids: 55 general workers → 50 + 5, 2 GPU workers → 2
  const batches = bed.aws!.calls().filter((c) => c.action === "SetInstanceProtection")
    .map((c) => [c.params.AutoScalingGroupName, Object.keys(c.params).filter((k) => k.startsWith("InstanceIds.member.")).length]);
  expect(batches).toEqual([[oldAsg, 50], [oldAsg, 5], ["workers-gpu-pipeline-asg", 2]]);

  // the deployment is at 2.0.0, the general worker ASG was replaced
  const outputs = await scenario.deployment.stack.outputs();
  expect(outputs.deployedRelease?.value).toBe("2.0.0");
  expect(outputs.workersAsgId?.value).toBe("workers-pipeline-2-asg");
  const after = await awsSnapshot(bed.env);
  expect(after.protection[oldAsg]).toBeUndefined();
  // alarms: every alarm of this deployment has its actions enabled again, and no suspension tag is left
  const ours = Object.entries(after.alarms).filter(([name]) => name.includes("pipeline"));
  expect(ours.length).toBe(3);
  expect(ours.every(([, enabled]) => enabled)).toBe(true);
  const aws = createAwsClients(awsSettingsFromEnv(bed.env));
  try {
    const { MetricAlarms = [] } = await aws.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "workers-gpu-pipeline" }));
    const tags = await aws.cloudWatch.send(new ListTagsForResourceCommand({ ResourceARN: MetricAlarms[0]!.AlarmArn }));
    expect((tags.Tags ?? []).map((t) => t.Key)).not.toContain(SUSPENDED_TAG);
  } finally {
    aws.destroy();
  }

  const markdown = fs.readFileSync(report, "utf8");
  for (const id of STEP_IDS) expect(markdown).toContain(`| \`${id}\` | ✅ done |`);
  expect(markdown).toMatch(/\*\*Resource changes:\*\* .*replace 2/);
  expect(run.stdout + run.stderr + markdown).not.toContain(bed.pulumi!.passphrase);
  // the run lock was taken and released in the backend, and the journal is beside the state
  const lockStep = events.find((e) => e.type === "step-end" && e.step === "lock-stack");
  expect(lockStep).toMatchObject({ note: expect.stringContaining(`${backend === "s3" ? "s3://uo-pulumi-state" : "file://"}`) });
  const store = openBackendStore(bed.pulumi!.backendUrl, bed.env)!;
  try {
    expect(await store.get(lockKey("codeocean-deployment", "pipeline"))).toBeUndefined();
    const journals = await store.list(journalPrefix("codeocean-deployment", "pipeline"));
    expect(journals).toEqual([`${journalPrefix("codeocean-deployment", "pipeline")}${events[0]!.runId}.jsonl`]);
    const journal = (await store.get(journals[0]!))!.body;
    expect(journal).toMatch(/"type":"summary","status":"succeeded"/);
    expect(journal).not.toContain(bed.pulumi!.passphrase);
  } finally {
    store.close();
  }
}, 600_000);

test("--dry-run reads everything and changes nothing; an absent GPU fleet is a note", async () => {
  const scenario = await startCodeOceanScenario(bed, { stackName: "dryrun", workers: 2, gpuWorkers: 0 });
  scenarios.push(scenario);
  const before = await awsSnapshot(bed.env);
  const history = (await scenario.deployment.stack.history()).length;
  bed.aws!.clearCalls();
  const events: Array<{ type: string; [k: string]: unknown }> = [];

  const result = await upgrade({
    stack: "dryrun",
    cwd: scenario.deployment.workDir,
    dryRun: true,
    release: "2.0.0",
    env: bed.env,
    ssh: { host: bed.sshd!.host, port: bed.sshd!.port, user: bed.sshd!.user, keyPath: bed.sshd!.privateKeyPath, knownHostsPath: bed.sshd!.knownHostsPath },
    servicesPort: scenario.services.port,
    metricPeriodSeconds: 10,
    onEvent: (e) => events.push(e),
  });

  expect(result.exitCode).toBe(0);
  expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringContaining("workersGpuAsgId is null") }));
  const byId = Object.fromEntries(result.steps.map((s) => [s.step, s]));
  expect(byId["preview"]).toMatchObject({ status: "done" });
  expect(byId["plan-update"]).toMatchObject({ status: "done", note: expect.stringMatching(/release 2\.0\.0 is not checked out in a dry run/) });
  expect(byId["repair-interrupted-update"]).toMatchObject({ status: "done", note: "none" });
  expect(byId["lock-stack"]).toMatchObject({ status: "done", note: "free (a dry run does not take it)" });
  for (const id of ["refresh-config", "checkout-release", "cancel-computations", "wait-idle-workers", "remove-scale-in-protection", "suspend-alarms", "up", "restore-alarms"]) {
    expect(byId[id]).toMatchObject({ status: "skipped", note: expect.stringMatching(/^dry run: would /) });
  }
  expect(byId["wait-idle-workers"]!.note).toMatch(/workers-dryrun-1-asg: \d+%/);
  // nothing written: no AWS write action, no cancel request, no new update, still at 1.0.0
  const writes = bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action));
  expect(writes).toEqual([]);
  expect(scenario.services.requests()).toEqual([]);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  expect((await scenario.deployment.stack.history()).length).toBe(history);
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
});
