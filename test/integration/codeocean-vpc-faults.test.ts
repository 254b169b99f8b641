import { runCli, startCli } from "../sandbox/cli";
import { ownStackConfig, startVpcFixture, type VpcDeployment, type VpcFixture } from "../sandbox/codeoceanVpc";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Faults of runbook 2 (Code Ocean VPC) against the bed: each case a fresh deployment at 3.7.0
// and a fresh own stack whose first `up` (the CLI, as a pipeline runs it) upgrades it to 3.8.2.
let bed: Sandbox;
let vpc: VpcFixture;
const owns: OwnStack[] = [];

beforeAll(async () => {
  bed = await startSandbox({ ssh: false });
  vpc = await startVpcFixture(bed);
});
afterAll(async () => {
  for (const o of owns) await o.remove();
  await vpc?.stop();
  await bed?.stop();
});

interface Scenario {
  d: VpcDeployment;
  args: string[];
}

async function scenario(prefix: string, extra: Record<string, unknown> = {}, deploy: Parameters<VpcFixture["deploy"]>[1] = {}): Promise<Scenario> {
  const d = await vpc.deploy(prefix, deploy);
  const own = await ownStack(bed, prefix, ownStackConfig);
  owns.push(own);
  await own.setSystems({ vpc: vpc.systemConfig(d, "3.8.2", extra) });
  return { d, args: ["upgrade", "--stack", prefix, "--cwd", own.workDir, "--yes", "--json"] };
}

const messageOf = (e: Record<string, unknown>) => (e as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message ?? "";
const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as { exitCode: number; error?: string; status: string };
const diagnostics = (stdout: string) =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; event?: { diagnosticEvent?: { message: string } } })
    .flatMap((e) => (e.type === "engine" && e.event?.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));

test("a failed update rolled back: the error names AnalyticsDBInstance and RDS's reason; maintenance mode is left on and said so", async () => {
  const s = await scenario("rb");
  vpc.compensation.armUpdate(s.d.primary, "rollback", 2);
  const run = await runCli(s.args, bed.env);
  const summary = summaryOf(run.stdout);
  expect(run.code).toBe(1);
  expect(summary.error).toMatch(/the update failed and was rolled back \(UPDATE_ROLLBACK_COMPLETE\); first failure: AnalyticsDBInstance UPDATE_FAILED: Resource handler returned message: "Invalid storage size for engine name postgres/);
  expect(summary.error).toMatch(/maintenance mode is left on: turn it off in the admin panel/);
  const primary = await vpc.status(s.d.primary);
  expect(primary.template).toMatch(/Version: v3\.7\.0/);
  expect(diagnostics(run.stdout).join("\n")).toMatch(/rb-vpc: AnalyticsDBInstance UPDATE_FAILED/);
  expect(vpc.hook.requests.filter((r) => r.path.endsWith("/disable"))).toHaveLength(0);
});

test("UPDATE_ROLLBACK_FAILED stops with the ContinueUpdateRollback hint", async () => {
  const s = await scenario("rbf");
  vpc.compensation.armUpdate(s.d.primary, "rollback-failed", 1);
  const run = await runCli(s.args, bed.env);
  const summary = summaryOf(run.stdout);
  expect(run.code).toBe(1);
  expect(summary.error).toMatch(/the update and its rollback failed \(UPDATE_ROLLBACK_FAILED\); first failure: AnalyticsDBInstance UPDATE_FAILED/);
  expect(summary.error).toMatch(/aws cloudformation continue-update-rollback --stack-name rbf-vpc/);
});

test("throttling on DescribeStackEvents beyond the SDK's retries: the follow keeps polling and the update completes", async () => {
  const s = await scenario("thr");
  bed.aws!.clearCalls();
  bed.aws!.inject({ action: "DescribeStackEvents", kind: "throttle", times: 4 });
  const run = await runCli(s.args, bed.env);
  expect([run.code, summaryOf(run.stdout).error]).toEqual([0, undefined]);
  const throttled = bed.aws!.calls().filter((c) => c.action === "DescribeStackEvents" && c.fault === "throttle");
  expect(throttled).toHaveLength(4);
  expect(diagnostics(run.stdout).join("\n")).toMatch(/AWS answered Throttling; polling again/);
  expect((await vpc.status(s.d.primary)).status).toBe("UPDATE_COMPLETE");
});

test("kill -9 while following the stack's events, then the same command: follows the running update, never starts a second", async () => {
  const s = await scenario("kill");
  bed.aws!.clearCalls();
  // The primary's update stays UPDATE_IN_PROGRESS until released: the second run must find it running.
  vpc.compensation.holdUpdate(s.d.primary);
  try {
    let killed = false;
    const first = startCli(s.args, bed.env, (e) => {
      if (!killed && /kill-vpc: UPDATE_IN_PROGRESS/.test(messageOf(e))) {
        killed = true;
        first.signal("SIGKILL", true);
      }
    });
    expect(await first.exited).toBe(137);
    expect(vpc.compensation.executions(s.d.primary)).toBe(1);
    expect((await vpc.status(s.d.primary)).template).toMatch(/Version: v3\.8\.2/); // moto has recorded it; the bed only delays it
    let following = false;
    const second = startCli(s.args, bed.env, (e) => {
      if (!following && /kill-vpc: an update is already running \(UPDATE_IN_PROGRESS\); following it instead of starting another/.test(messageOf(e))) {
        following = true;
        vpc.compensation.releaseUpdate(s.d.primary);
      }
    });
    expect(await second.exited).toBe(0);
    const stdout = second.stdout();
    expect(summaryOf(stdout).error).toBeUndefined();
    const log = diagnostics(stdout).join("\n");
    expect(following).toBe(true);
    expect(log).toMatch(/update-primary-stack done \(UPDATE_COMPLETE at v3\.8\.2\)/);
    expect(log).not.toMatch(/the stack is at v3\.8\.2/);
    // one ExecuteChangeSet per stack over both runs: role and backup in the first, the primary once
    expect(bed.aws!.calls().filter((c) => c.action === "ExecuteChangeSet").map((c) => c.params.StackName)).toEqual([s.d.role, s.d.backup, s.d.primary]);
    expect([s.d.role, s.d.backup, s.d.primary].map((n) => vpc.compensation.executions(n))).toEqual([1, 1, 1]);
    const primary = await vpc.status(s.d.primary);
    expect(primary.status).toBe("UPDATE_COMPLETE");
    expect(primary.template).toMatch(/Version: v3\.8\.2/);
  } finally {
    vpc.compensation.releaseUpdate(s.d.primary);
  }
});

test("maintenance mode never verified: refused at the deadline (exit 3), role, backup and primary stacks untouched", async () => {
  const s = await scenario("mnt", { maintenance: { timeoutSeconds: 2, pollSeconds: 0.2 } }, { pollsToIdle: "never" });
  const stacks = [s.d.role, s.d.backup, s.d.primary];
  const before = await Promise.all(stacks.map(async (n) => JSON.stringify(await vpc.status(n))));
  const snapshot = await vpc.snapshot(s.d);
  const run = await runCli(s.args, bed.env);
  const summary = summaryOf(run.stdout);
  const log = diagnostics(run.stdout).join("\n");
  expect(run.code).toBe(3);
  // every stack byte-identical (status, parameters, template; and resources and change sets), no change set executed
  expect(await Promise.all(stacks.map(async (n) => JSON.stringify(await vpc.status(n))))).toEqual(before);
  expect(stacks.map((n) => vpc.compensation.executions(n))).toEqual([0, 0, 0]);
  expect(await vpc.snapshot(s.d)).toBe(snapshot);
  expect(summary.error).toMatch(/refused: could not verify maintenance mode of mnt-vpc: after \d+ s its effects are not visible: 3 Batch job\(s\) active in 1 queue\(s\), 2 worker instance\(s\) in 1 group\(s\); no stack was updated by this run/);
  expect(summary.error).toMatch(/Admin → System Maintenance → Enable/);
  expect(summary.error).toMatch(/the change sets this run reviewed and did not execute were deleted \(mnt-vpc\/upgrade-orchestrator-\w+, mnt-role\/upgrade-orchestrator-\w+, mnt-backup\/upgrade-orchestrator-\w+\)/);
  expect(summary.error).toMatch(/maintenance mode was asked for but not verified/);
  // the role and backup stacks were part of the run: reviewed (their change sets made) before maintenance mode was asked for
  expect(log).toMatch(/plan: review role mnt-role, backup mnt-backup, primary mnt-vpc; then maintenance mode/);
  expect(log).toMatch(/review-role-stack done \(mnt-role: \d+ resource change\(s\), executed once maintenance mode is verified\)/);
  expect(log).toMatch(/review-backup-stack done \(mnt-backup: \d+ resource change\(s\)/);
  expect(log).toMatch(/maintenance: ACTION NEEDED: enable maintenance mode in the Code Ocean admin panel/);
  expect(log).not.toMatch(/update-(role|backup|primary)-stack/);
});

test("kill -9 after the role and backup updates, maintenance mode off since: the re-run asks for it again and, never verified, updates nothing", async () => {
  // No hook: the operator clicks Enable in the admin panel when asked (the bed plays the click).
  const s = await scenario("half", { maintenance: { timeoutSeconds: 3, pollSeconds: 0.2 } });
  let killed = false;
  const first = startCli(s.args, bed.env, (e) => {
    const message = messageOf(e);
    if (/maintenance: ACTION NEEDED/.test(message)) vpc.compensation.switchMaintenanceOn();
    // hold the primary's step at its first AWS call, so the kill lands before its change set is executed
    if (/update-role-stack done/.test(message)) bed.aws!.inject({ action: "DescribeDBInstances", kind: "delay", delayMs: 5000 });
    if (!killed && /update-backup-stack done/.test(message)) {
      killed = true;
      first.signal("SIGKILL", true);
    }
  });
  expect(await first.exited).toBe(137);
  expect([s.d.role, s.d.backup, s.d.primary].map((n) => vpc.compensation.executions(n))).toEqual([1, 1, 0]);
  const primaryBefore = JSON.stringify(await vpc.status(s.d.primary));
  expect(primaryBefore).toMatch(/Version: v3\.7\.0/);

  // The admin turned maintenance mode off meanwhile (jobs run again), and nobody enables it this time.
  vpc.compensation.playMaintenance({ jobs: { [s.d.queue]: 2 }, workerGroups: [s.d.workerGroup], pollsToIdle: "never" });
  const second = await runCli(s.args, bed.env);
  const log = diagnostics(second.stdout).join("\n");
  expect(second.code).toBe(3);
  expect(log).toMatch(/review-role-stack done \(half-role: already at v3\.8\.2\)/);
  expect(log).toMatch(/maintenance: ACTION NEEDED/);
  expect(summaryOf(second.stdout).error).toMatch(
    /its effects are not visible: 2 Batch job\(s\) active in 1 queue\(s\), 0 worker instance\(s\) in 1 group\(s\); no stack was updated by this run \(already at their target template before this run: role half-role, backup half-backup\)/,
  );
  expect(JSON.stringify(await vpc.status(s.d.primary))).toBe(primaryBefore);
  expect([s.d.role, s.d.backup, s.d.primary].map((n) => vpc.compensation.executions(n))).toEqual([1, 1, 0]);
});
