import { paginateDescribeAutoScalingGroups, type AutoScalingGroup } from "@aws-sdk/client-auto-scaling";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { awsCall } from "../../../lib/aws";
import { refused, UpgradeError } from "../../../lib/errors";
import { formatDuration, pollUntil } from "../../../lib/wait";
import type { RunContext } from "../../context";

/**
 * Runbook step 5: wait until CodeOcean/SlotsUtilization is 0 for every worker ASG. One
 * GetMetricData call per poll covers all ASGs (Maximum per period, so a period that mixes busy and
 * idle seconds is not taken for idle). An ASG is idle when its newest datapoint is 0 and its period
 * began after the cancel request, or when it has no InService instance. No datapoints is not
 * zero: it is "unknown" and waited on.
 */
export interface AsgObservation {
  asg: string;
  inService: number;
  /** Newest datapoint, if any. */
  value?: number;
  at?: Date;
  state: "idle" | "busy" | "unknown" | "stale";
  reason: string;
}

export function assessAsg(
  asg: string,
  inService: number,
  newest: { value: number; at: Date } | undefined,
  cancelRequestedAt: Date,
): AsgObservation {
  if (inService === 0) return { asg, inService, ...newest, state: "idle", reason: "no InService instance" };
  if (!newest) return { asg, inService, state: "unknown", reason: "no datapoints" };
  if (newest.at.getTime() < cancelRequestedAt.getTime()) {
    return { asg, inService, ...newest, state: "stale", reason: `${newest.value}% at ${newest.at.toISOString()}, before the cancel request` };
  }
  return newest.value === 0
    ? { asg, inService, ...newest, state: "idle", reason: "0%" }
    : { asg, inService, ...newest, state: "busy", reason: `${newest.value}%` };
}

export function describeObservations(seen: AsgObservation[]): string {
  return seen.map((o) => `${o.asg}: ${o.state === "busy" || o.state === "idle" ? o.reason : `${o.state} (${o.reason})`}`).join(", ");
}

export async function waitForIdleWorkers(ctx: RunContext): Promise<string> {
  const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
  if (asgs.length === 0) return "no worker auto scaling group to wait for";
  const cancelRequestedAt = ctx.cancelRequestedAt ?? new Date();
  const { drainTimeoutMs, pollIntervalMs, metricPeriodSeconds } = ctx.options;
  const seen = await pollUntil<AsgObservation[]>({
    intervalMs: pollIntervalMs,
    timeoutMs: drainTimeoutMs,
    signal: ctx.signal,
    poll: async () => {
      const seen = await observeWorkers(ctx, asgs, cancelRequestedAt, metricPeriodSeconds);
      return { done: seen.every((o) => o.state === "idle"), seen };
    },
    onProgress: ({ seen, elapsedMs, timeoutMs }) =>
      ctx.emit({
        type: "progress",
        step: "wait-idle-workers",
        message: `${describeObservations(seen)} · ${formatDuration(elapsedMs)} elapsed, deadline ${formatDuration(timeoutMs)}`,
        data: { asgs: seen.map(({ asg, state, value, inService }) => ({ asg, state, value, inService })), elapsedMs, timeoutMs },
      }),
    onTimeout: (last, elapsedMs) =>
      refused(
        "wait for the workers to become idle",
        `not drained within ${formatDuration(elapsedMs)}; last seen: ${last ? describeObservations(last) : "nothing"}`,
        "computations are still running; check the services machine, or raise --drain-timeout. Nothing was changed after cancelling",
      ),
  });
  return describeObservations(seen);
}

export async function observeWorkers(
  ctx: RunContext,
  asgs: string[],
  cancelRequestedAt: Date,
  periodSeconds: number,
): Promise<AsgObservation[]> {
  const groups = await describeGroups(ctx, asgs);
  const periodMs = periodSeconds * 1000;
  const now = Date.now();
  // A period-aligned window reaching back to before the cancel (to show the last busy values),
  // at least 15 minutes and at most 3 hours.
  const from = Math.max(Math.min(now - 15 * 60_000, cancelRequestedAt.getTime() - periodMs), now - 3 * 3_600_000);
  const start = new Date(Math.floor(from / periodMs) * periodMs);
  const end = new Date(Math.ceil((now + 1) / periodMs) * periodMs);
  const data = await awsCall("read CodeOcean/SlotsUtilization", () =>
    ctx.aws().cloudWatch.send(
      new GetMetricDataCommand({
        StartTime: start,
        EndTime: end,
        ScanBy: "TimestampDescending",
        MetricDataQueries: asgs.map((asg, i) => ({
          Id: `asg${i}`,
          ReturnData: true,
          MetricStat: {
            Metric: { Namespace: "CodeOcean", MetricName: "SlotsUtilization", Dimensions: [{ Name: "AutoScalingGroupName", Value: asg }] },
            Period: periodSeconds,
            Stat: "Maximum",
          },
        })),
      }),
    ),
  );
  return asgs.map((asg, i) => {
    const series = data.MetricDataResults?.find((r) => r.Id === `asg${i}`);
    const points = (series?.Timestamps ?? []).map((t, j) => ({ at: new Date(t), value: series!.Values![j]! }));
    points.sort((a, b) => b.at.getTime() - a.at.getTime());
    const inService = (groups.get(asg)?.Instances ?? []).filter((x) => x.LifecycleState === "InService").length;
    return assessAsg(asg, inService, points[0], cancelRequestedAt);
  });
}

/** DescribeAutoScalingGroups returns at most 100 groups per page (MaxRecords). */
export const ASG_PAGE_SIZE = 100;

/**
 * The named ASGs, with the SDK's paginator at the largest page size (one call for up to 100
 * groups, their instances included); one that does not exist is an error of its own, never "idle".
 */
export async function describeGroups(ctx: RunContext, names: string[]): Promise<Map<string, AutoScalingGroup>> {
  const found = new Map<string, AutoScalingGroup>();
  await awsCall("describe the worker auto scaling groups", async () => {
    for await (const page of paginateDescribeAutoScalingGroups({ client: ctx.aws().autoScaling, pageSize: ASG_PAGE_SIZE }, { AutoScalingGroupNames: names })) {
      for (const group of page.AutoScalingGroups ?? []) found.set(group.AutoScalingGroupName!, group);
    }
  });
  const missing = names.filter((n) => !found.has(n));
  if (missing.length > 0) {
    throw new UpgradeError({
      what: "find the worker auto scaling groups",
      why: `${missing.join(", ")} ${missing.length === 1 ? "does" : "do"} not exist in this account and region`,
      hint: "check AWS_REGION / the AWS profile, and that the stack outputs are current (pulumi refresh)",
      permanent: true,
    });
  }
  return found;
}
