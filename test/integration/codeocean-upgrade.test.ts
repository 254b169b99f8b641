import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DescribeAlarmsCommand, PutMetricAlarmCommand } from "@aws-sdk/client-cloudwatch";
import { GetResourcesCommand } from "@aws-sdk/client-resource-groups-tagging-api";
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
  "select-stack", "lock-stack", "repair-interrupted-update", "read-outputs", "refresh-config", "checkout-release", "plan-update", "confirm-plan", "cancel-computations", "wait-idle-workers",
  "restore-point", "remove-scale-in-protection", "suspend-alarms", "preview", "up", "verify-deployment", "restore-point-state", "restore-alarms",
];

/** Every alarm tagged deployment=<name>, with whether its actions are enabled (one tagging call, then DescribeAlarms). */
async function alarmsOfDeployment(bed: Sandbox, name: string): Promise<Record<string, boolean>> {
  const aws = createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
  try {
    const tagged = await aws.tagging.send(
      new GetResourcesCommand({ ResourceTypeFilters: ["cloudwatch:alarm"], TagFilters: [{ Key: "deployment", Values: [name] }], ResourcesPerPage: 100 }),
    );
    const names = (tagged.ResourceTagMappingList ?? []).map((r) => r.ResourceARN!.split(":alarm:")[1]!);
    const { MetricAlarms = [] } = await aws.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNames: names }));
    return Object.fromEntries(MetricAlarms.map((a) => [a.AlarmName!, a.ActionsEnabled === true]));
  } finally {
    aws.destroy();
  }
}

test.each(["file", "s3"] as const)("a pipeline run (--yes --json) on the %s backend upgrades 1.0.0 → 2.0.0 reaching the services machine only through the ProxyCommand of an SSH config (default target: the instance id): drains, reports a dedicated worker without waiting, unprotects in batches of 50, suspends and restores every alarm of the deployment", async (backend) => {
  const bed = beds[backend];
  const scenario = await startCodeOceanScenario(bed, { stackName: "pipeline", workers: 55, gpuWorkers: 2, sshVia: "ssm-proxy" });
  scenarios.push(scenario);
  expect(scenario.upgradeArgs).not.toContain("--ssh-host");
  const servicesId = scenario.deployment.outputs.ec2ServicesInstanceId!.value as string;
  await scenario.launchDedicatedWorker("alice@example.com", "capsule-7");
  // the real alarm set: InstanceID+MachineType, disks with path, a load balancer's, the metric-math one
  const alarmsBefore = await alarmsOfDeployment(bed, scenario.deploymentName);
  expect(Object.keys(alarmsBefore)).toHaveLength(14);
  expect(Object.values(alarmsBefore).every(Boolean)).toBe(true);
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
  // the restore point: a snapshot of the deployment's data volume (its ebsVolumeId output), taken before `up`, reported with how to restore
  const dataVolume = scenario.deployment.outputs.ebsVolumeId!.value as string;
  const point = ends.find((e) => e.step === "restore-point")!;
  expect(point.note).toMatch(new RegExp(`^restore point: snap-\\w+ of ${dataVolume} \\(completed\\)$`));
  const snapshotId = /snap-\w+/.exec(String(point.note))![0];
  expect((await awsSnapshot(bed.env)).restorePoints.pipeline).toEqual([snapshotId]);
  expect(ends.find((e) => e.step === "restore-point-state")!.note).toBe(`${snapshotId} of ${dataVolume} (completed); to restore: aws ec2 create-volume --snapshot-id ${snapshotId} --availability-zone us-east-1a, then attach it in place of ${dataVolume}`);
  expect(events.at(-1)!.restorePoints).toEqual([{ snapshotId, volumeId: dataVolume, state: "completed", restore: expect.stringContaining(`--snapshot-id ${snapshotId}`) }]);
  expect(events.findIndex((e) => e.type === "step-end" && e.step === "restore-point")).toBeLessThan(events.findIndex((e) => e.type === "step-start" && e.step === "up"));

  // the services API got exactly one cancel request, over SSH to the instance id through the config's ProxyCommand
  // (verify-deployment's reads of the services API are GETs: any answer but a 5xx means it answers)
  const serviceRequests = scenario.services.requests();
  expect(serviceRequests.filter((r) => r.method !== "GET")).toEqual([{ method: "POST", path: "/cancel_computations", status: 200 }]);
  expect(serviceRequests.filter((r) => r.method === "GET").length).toBeGreaterThan(0);
  const cancelEnd = ends.find((e) => e.step === "cancel-computations")!;
  expect(cancelEnd.note).toMatch(new RegExp(`^HTTP 200 via ${servicesId} \\(the instance id, routed by .*/config\\): .*@${servicesId}:22 through the ProxyCommand \`.*ssm-start-session --target ${servicesId} --document-name AWS-StartSSHSession --parameters '\\{"portNumber":\\["22"\\]\\}'\``));
  // the dedicated worker is reported, not waited for
  const waitEnd = ends.find((e) => e.step === "wait-idle-workers")!;
  expect(waitEnd.note).toMatch(/1 dedicated worker running \(users: alice@example\.com\) — not waited for/);
  expect(events.filter((e) => e.type === "progress" && e.step === "wait-idle-workers").every((e) => String(e.message).includes("1 dedicated worker running (users: alice@example.com)"))).toBe(true);
  // suspend-alarms disabled exactly the deployment's alarms (by tag, both dimension spellings, metric math), restore re-enabled those left
  // (CloudWatch speaks JSON: the proxy's call log has no parameters, so the run's own suspend/restore events name them)
  const named = (type: string) => (events.find((e) => e.type === type && e.what === "alarm-actions")?.items as string[] | undefined ?? []).slice().sort();
  expect(named("suspend")).toEqual(Object.keys(alarmsBefore).sort());
  expect(bed.aws!.calls().filter((c) => c.action === "DisableAlarmActions")).toHaveLength(1);
  expect(ends.find((e) => e.step === "suspend-alarms")!.note).toMatch(new RegExp(`^actions disabled on 14 alarms \\(selected by tag deployment=${scenario.deploymentName} and dimensions\\)`));
  // one tagging call per selection (confirm-plan's count, suspend, restore) and one for the suspension tags, never one per alarm
  // (and one per poll of verify-deployment, which reads the alarms' states)
  const verifyPolls = events.filter((e) => e.type === "progress" && e.step === "verify-deployment").length;
  expect(verifyPolls).toBeGreaterThan(0);
  expect(bed.aws!.calls().filter((c) => c.action === "GetResources").length).toBe(4 + verifyPolls);
  // one GetMetricData per poll (and one each for confirm-plan's text and cancel-computations' check), and a progress event per poll
  const polls = events.filter((e) => e.type === "progress" && e.step === "wait-idle-workers");
  const metricCalls = bed.aws!.calls().filter((c) => c.action === "GetMetricData");
  expect(polls.length).toBeGreaterThan(0);
  expect(metricCalls).toHaveLength(polls.length + 2);
  // the confirmation's text (accepted by --yes here) said what would be disrupted, before any of it
  const question = events.find((e) => e.type === "note" && e.step === "confirm-plan")!;
  expect(question.message).toMatch(new RegExp(`CANCEL every running computation on the services machine: ${oldAsg}: \\d+% of slots in use, 55 InService; workers-gpu-pipeline-asg: \\d+% of slots in use, 2 InService`));
  expect(question.message).toMatch(/dedicated workers: 1 dedicated worker running \(users: alice@example\.com\)/);
  expect(question.message).toMatch(/remove scale-in protection from 57 instances/);
  expect(question.message).toMatch(/suspend the actions of 14 alarms until the run ends/);
  expect(question.message).toMatch(/then `pulumi up` will apply: .*5 replace/);
  expect(events.findIndex((e) => e.type === "note" && e.step === "confirm-plan")).toBeLessThan(events.findIndex((e) => e.type === "step-start" && e.step === "cancel-computations"));
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
  // alarms: every alarm of this deployment has its actions enabled again (the replaced ASG's are new ones), and no suspension tag is left
  const alarmsAfter = await alarmsOfDeployment(bed, scenario.deploymentName);
  expect(alarmsAfter).toEqual(Object.fromEntries(Object.keys(alarmsBefore).map((n) => [n.replace("-1-asg", "-2-asg"), true])));
  expect(named("restore")).toEqual(Object.keys(alarmsBefore).filter((n) => !n.includes("-1-asg")).sort());
  const aws = createAwsClients(awsSettingsFromEnv(bed.env));
  try {
    const left = await aws.tagging.send(new GetResourcesCommand({ TagFilters: [{ Key: SUSPENDED_TAG }] }));
    expect(left.ResourceTagMappingList ?? []).toEqual([]);
  } finally {
    aws.destroy();
  }

  const markdown = fs.readFileSync(report, "utf8");
  for (const id of STEP_IDS) expect(markdown).toContain(`| \`${id}\` | ✅ done |`);
  expect(markdown).toContain("1 dedicated worker running (users: alice@example.com)");
  expect(markdown).toMatch(/\*\*Resource changes:\*\* .*replace 5/); // the general ASG and its four alarms
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
}, 600_000); // 57 workers and 14 alarms deployed, then replaced: ~1 min idle, 2-3 min on a loaded machine

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
    codeOcean: {
      ssh: { host: bed.sshd!.host, port: bed.sshd!.port, user: bed.sshd!.user, keyPath: bed.sshd!.privateKeyPath, knownHostsPath: bed.sshd!.knownHostsPath },
      servicesPort: scenario.services.port,
      metricPeriodSeconds: 10,
    },
    onEvent: (e) => events.push(e),
  });

  expect(result.exitCode).toBe(0);
  expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringContaining("workersGpuAsgId is null") }));
  const byId = Object.fromEntries(result.steps.map((s) => [s.step, s]));
  expect(byId["preview"]).toMatchObject({ status: "done" });
  expect(byId["plan-update"]).toMatchObject({ status: "done", note: expect.stringMatching(/release 2\.0\.0 is not checked out in a dry run/) });
  expect(byId["repair-interrupted-update"]).toMatchObject({ status: "done", note: "none" });
  expect(byId["lock-stack"]).toMatchObject({ status: "done", note: "free (a dry run does not take it)" });
  // the confirmation text it would ask, read from the world (the computations running now)
  expect(byId["confirm-plan"]).toMatchObject({ status: "done", note: expect.stringMatching(/^dry run: would ask before any disruption/) });
  const question = events.find((e) => e.type === "note" && e.step === "confirm-plan")!.message as string;
  expect(question).toMatch(/CANCEL every running computation on the services machine: workers-dryrun-1-asg: \d+% of slots in use, 2 InService/);
  expect(question).toMatch(/remove scale-in protection from 2 instances \(workers-dryrun-1-asg: 2\)/);
  expect(question).toMatch(/suspend the actions of 13 alarms/);
  for (const id of ["refresh-config", "checkout-release", "cancel-computations", "wait-idle-workers", "restore-point", "remove-scale-in-protection", "suspend-alarms", "up", "verify-deployment", "restore-alarms"]) {
    expect(byId[id]).toMatchObject({ status: "skipped", note: expect.stringMatching(/^dry run: would /) });
  }
  expect(byId["wait-idle-workers"]!.note).toMatch(/workers-dryrun-1-asg: \d+%/);
  expect(byId["restore-point"]!.note).toBe(`dry run: would snapshot ${scenario.deployment.outputs.ebsVolumeId!.value} (100 GiB) before \`up\``);
  expect(question).toMatch(/restore point: snapshot vol-\w+ \(100 GiB\) before `up`/);
  // the plan says how the services machine would be reached (here: the flag), and that no dedicated worker runs
  expect(byId["cancel-computations"]!.note).toMatch(/over SSH to 127\.0\.0\.1 \(--ssh-host\): .*@127\.0\.0\.1:\d+ directly$/);
  expect(byId["wait-idle-workers"]!.note).toMatch(/no dedicated worker running$/);
  // nothing written: no AWS write action, no cancel request, no new update, still at 1.0.0
  const writes = bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action));
  expect(writes).toEqual([]);
  expect(scenario.services.requests()).toEqual([]);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  expect((await scenario.deployment.stack.history()).length).toBe(history);
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");

  // an SSH config that would accept unknown host keys is refused by the host-key policy (exit 3) at read-outputs, before anything changes
  const weak = path.join(bed.dir, "weak-ssh-config");
  fs.writeFileSync(weak, "Host i-*\n  ProxyCommand nc %h %p\n  StrictHostKeyChecking accept-new\n");
  bed.aws!.clearCalls();
  const refusedRun = await upgrade({
    stack: "dryrun", cwd: scenario.deployment.workDir, yes: true, release: "2.0.0", env: bed.env,
    codeOcean: { ssh: { configPath: weak }, servicesPort: scenario.services.port, metricPeriodSeconds: 10 },
  });
  expect(refusedRun.exitCode).toBe(3);
  expect(refusedRun.steps.find((s) => s.status === "failed")).toMatchObject({
    step: "read-outputs",
    error: expect.stringMatching(/StrictHostKeyChecking accept-new applies to i-\w+ and would accept an unknown or changed host key; the driver's policy is to check host keys strictly[\s\S]*hint: record the host's key/),
  });
  expect(bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action))).toEqual([]);
  expect(scenario.services.requests()).toEqual([]);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  expect((await scenario.deployment.stack.history()).length).toBe(history);
  expect(execFileSync("git", ["describe", "--tags"], { cwd: scenario.deployment.workDir, encoding: "utf8" }).trim()).toBe("1.0.0");
});

test("--wait-dedicated: waits until no dedicated worker runs; while suspended, every alarm tagged with the deployment (and an untagged one on the services instance's InstanceID) has its actions disabled, no other", async () => {
  const scenario = await startCodeOceanScenario(bed, { stackName: "dedicated", workers: 1, gpuWorkers: 0, drainMs: 1000 });
  scenarios.push(scenario);
  const dedicated = await scenario.launchDedicatedWorker("bob@example.com", "capsule-9");
  // alarms the tag does not reach: one on the services instance (the `InstanceID` spelling), which is the
  // deployment's by the dimension rule, and one of another instance, which is not
  const servicesId = scenario.deployment.outputs.ec2ServicesInstanceId!.value as string;
  const aws = createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
  const untagged = (name: string, instance: string) =>
    aws.cloudWatch.send(new PutMetricAlarmCommand({
      AlarmName: name, Namespace: "CodeOcean", MetricName: "OverloadStatus", Statistic: "Minimum", Period: 10, EvaluationPeriods: 1,
      Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold", ActionsEnabled: true, AlarmActions: ["arn:aws:sns:us-east-1:123456789012:ops"],
      Dimensions: [{ Name: "InstanceID", Value: instance }, { Name: "MachineType", Value: "1" }],
    }));
  await untagged("dedicated-untagged-overload", servicesId);
  await untagged("dedicated-other-instance-overload", "i-0000000000000000f");
  const enabled = async () => {
    const { MetricAlarms = [] } = await aws.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "dedicated-" }));
    return Object.fromEntries(MetricAlarms.map((a) => [a.AlarmName!, a.ActionsEnabled]));
  };
  let untaggedDuringWindow: Record<string, boolean | undefined> | undefined;
  const events: Array<{ type: string; [k: string]: unknown }> = [];
  let terminated: Promise<number> | undefined;
  let duringWindow: Record<string, boolean> | undefined;
  let waitEndedAt = 0;
  // the alarm window, read when `up`'s first provider call reaches AWS (held until then): after
  // suspend-alarms, before the update changes anything
  let armed = false;
  const unhold = bed.aws!.intercept(async () => {
    if (!armed || duringWindow) return undefined;
    duringWindow = await alarmsOfDeployment(bed, scenario.deploymentName);
    untaggedDuringWindow = await enabled();
    return undefined;
  });

  const result = await upgrade({
    stack: "dedicated",
    cwd: scenario.deployment.workDir,
    release: "2.0.0",
    env: bed.env,
    codeOcean: {
      waitDedicated: true,
      ssh: { configPath: null, host: bed.sshd!.host, port: bed.sshd!.port, user: bed.sshd!.user, keyPath: bed.sshd!.privateKeyPath, knownHostsPath: bed.sshd!.knownHostsPath },
      servicesPort: scenario.services.port,
      metricPeriodSeconds: 10,
      pollIntervalMs: 1000,
      drainTimeoutMs: 60_000,
      ...scenario.verification,
    },
    onEvent: (e) => {
      events.push(e);
      if (e.type === "step-end" && e.step === "wait-idle-workers") waitEndedAt = Date.now();
      if (e.type === "step-end" && e.step === "suspend-alarms") armed = true;
      // the ASG is idle and only the dedicated worker is left: its user's run ends now
      const data = (e as { data?: unknown }).data as { asgs?: Array<{ state: string }>; dedicated?: { count: number } } | undefined;
      if (!terminated && e.type === "progress" && e.step === "wait-idle-workers" && data?.dedicated?.count === 1 && data.asgs?.every((a) => a.state === "idle")) {
        const startedAt = Date.now();
        terminated = scenario.terminateInstance(dedicated).then(() => startedAt);
      }
    },
    yes: true,
  });
  unhold();

  expect(result.exitCode).toBe(0);
  expect(terminated).toBeDefined();
  const terminatedAt = await terminated!;
  const waits = events.filter((e) => e.type === "progress" && e.step === "wait-idle-workers");
  expect(waits[0]!.message).toMatch(/workers-dedicated-1-asg: .* · 1 dedicated worker running \(users: bob@example\.com\) \(waiting for them\)/);
  expect(waits[0]!.data).toMatchObject({ dedicated: { count: 1, users: ["bob@example.com"], instances: [dedicated] } });
  const waitEnd = events.find((e) => e.type === "step-end" && e.step === "wait-idle-workers")!;
  expect(waitEnd).toMatchObject({ status: "done", note: expect.stringMatching(/no dedicated worker running$/) });
  expect(waitEndedAt).toBeGreaterThanOrEqual(terminatedAt);
  // the alarm window: all 13 alarms of the deployment (no GPU fleet) had their actions disabled; all enabled after
  expect(Object.keys(duringWindow!)).toHaveLength(13);
  expect(Object.values(duringWindow!).every((enabled) => !enabled)).toBe(true);
  const after = await alarmsOfDeployment(bed, scenario.deploymentName);
  expect(Object.keys(after)).toHaveLength(13);
  expect(Object.values(after).every(Boolean)).toBe(true);
  expect(untaggedDuringWindow).toEqual({ "dedicated-untagged-overload": false, "dedicated-other-instance-overload": true });
  expect(await enabled()).toEqual({ "dedicated-untagged-overload": true, "dedicated-other-instance-overload": true });
  aws.destroy();
});
