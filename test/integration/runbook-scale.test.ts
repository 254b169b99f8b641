import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { startSandbox, type Sandbox } from "../sandbox";
import { createProtectedFleet, runbookContext } from "../sandbox/fleet";
import { MAX_IDS_PER_CALL, noProtectedInstances, removeScaleInProtection } from "../../stacks/runbooks/codeocean/scaleInProtection";
import { observeWorkers } from "../../stacks/runbooks/codeocean/waitForIdleWorkers";

// The Code Ocean runbook's AWS steps against a fleet at scale: 1,000 protected instances in
// 4 worker ASGs on moto. Call counts here; the time it takes is a figure of `npm run bench`.
let bed: Sandbox;
let ctx: ReturnType<typeof runbookContext>;
let asgs: string[];

beforeAll(async () => {
  bed = await startSandbox({ ssh: false, pulumi: false });
  ctx = runbookContext(bed.env, []);
  asgs = await createProtectedFleet(ctx.aws(), "scale", 4, 250);
  ctx.deployment!.workerAsgs = asgs.map((name) => ({ name, output: name }));
}, 240_000);
afterAll(async () => {
  ctx?.close();
  await bed?.stop();
});
beforeEach(() => bed.aws!.clearCalls());

const calls = (action: string) => bed.aws!.calls().filter((c) => c.action === action);

test("describing the worker ASGs is one page of the largest size for all four, 1,000 instances", async () => {
  const seen = await observeWorkers(ctx, asgs, new Date(0), 60);
  expect(seen.map((o) => o.inService)).toEqual([250, 250, 250, 250]);
  expect(calls("DescribeAutoScalingGroups").map((c) => c.params.MaxRecords)).toEqual(["100"]);
  // one GetMetricData for all four ASGs
  expect(calls("GetMetricData")).toHaveLength(1);
});

test("unprotecting 1,000 instances in 4 ASGs takes 20 SetInstanceProtection calls of at most 50", async () => {
  expect(await noProtectedInstances(ctx)).toBeUndefined();
  bed.aws!.clearCalls();
  const note = await removeScaleInProtection(ctx);
  expect(note).toBe("1000 instances in 4 groups unprotected (20 calls)");
  const set = calls("SetInstanceProtection");
  expect(set.length).toBeLessThanOrEqual(20);
  const ids = set.flatMap((c) => Object.entries(c.params).filter(([k]) => k.startsWith("InstanceIds.member.")).map(([, v]) => v));
  expect(Math.max(...set.map((c) => Object.keys(c.params).filter((k) => k.startsWith("InstanceIds.member.")).length))).toBeLessThanOrEqual(MAX_IDS_PER_CALL);
  expect(new Set(ids).size).toBe(1000);
  // moto's own record: nothing left protected
  const { AutoScalingGroups } = await ctx.aws().autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: asgs }));
  expect(AutoScalingGroups!.flatMap((g) => g.Instances ?? []).filter((i) => i.ProtectedFromScaleIn)).toEqual([]);
  expect(await noProtectedInstances(ctx)).toMatch(/no worker instance is protected/);
});
