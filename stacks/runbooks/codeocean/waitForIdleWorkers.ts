import { paginateDescribeAutoScalingGroups, type AutoScalingGroup } from "@aws-sdk/client-auto-scaling";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { awsCall } from "../../../lib/aws";
import { refused, UpgradeError } from "../../../lib/errors";
import { formatDuration, pollUntil } from "../../../lib/wait";
import type { RunContext } from "../../context";
import { formatInstant } from "../../windows";
import { dedicatedWorkers, deploymentName, describeDedicated, type DedicatedWorker } from "./deployment";

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

/**
 * Dedicated workers (outside the ASGs, tag role=dedicated-worker) are not covered by
 * SlotsUtilization: they are reported in every progress line and the note; the update does not
 * replace them, so they are waited for only with --wait-dedicated.
 */
export async function waitForIdleWorkers(ctx: RunContext, holdToWindow = false): Promise<string> {
  const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
  const { pollIntervalMs, metricPeriodSeconds, waitDedicated } = ctx.options.codeOcean;
  // --window: the drain before `up` ends no later than the maintenance window's end
  const window = holdToWindow ? ctx.window : undefined;
  const windowLeftMs = window ? window.endMs - ctx.options.now() : Infinity;
  const drainTimeoutMs = Math.min(ctx.options.codeOcean.drainTimeoutMs, windowLeftMs);
  const cutByWindow = windowLeftMs <= ctx.options.codeOcean.drainTimeoutMs;
  const windowEnd = window && formatInstant(window.endMs, window.timeZone);
  const windowEnded = (seen: string) =>
    refused(
      "wait for the workers to become idle within the maintenance window",
      `the window ${window!.specs.map((s) => JSON.stringify(s)).join(" + ")} ends ${windowEnd} and the workers were not idle by then; last seen: ${seen}`,
      "the run stopped before `up` and restored what it suspended (the computations stay cancelled); run it again early in the next window, or once the computations still running have ended",
    );
  if (window && windowLeftMs <= 0) throw windowEnded("the drain had not started");
  if (waitDedicated && (await deploymentName(ctx)) === undefined) {
    throw refused(
      "wait for the dedicated workers",
      `the services instance ${ctx.deployment!.servicesInstanceId} has no deployment tag, so its dedicated workers cannot be found`,
      "tag the services instance deployment=<name> (the deployment does), or drop --wait-dedicated. Nothing was changed after cancelling",
    );
  }
  if (asgs.length === 0 && !waitDedicated) return `no worker auto scaling group to wait for; ${describeDedicated(await dedicatedWorkers(ctx))}`;
  const cancelRequestedAt = ctx.cancelRequestedAt ?? new Date();
  type Seen = { asgs: AsgObservation[]; dedicated: DedicatedWorker[] | undefined };
  const describe = (s: Seen) =>
    [asgs.length > 0 ? describeObservations(s.asgs) : "", describeDedicated(s.dedicated) + (waitDedicated && s.dedicated?.length ? " (waiting for them)" : "")]
      .filter(Boolean)
      .join(" · ");
  const seen = await pollUntil<Seen>({
    intervalMs: pollIntervalMs,
    timeoutMs: drainTimeoutMs,
    signal: ctx.signal,
    poll: async () => {
      const seen: Seen = {
        asgs: asgs.length > 0 ? await observeWorkers(ctx, asgs, cancelRequestedAt, metricPeriodSeconds) : [],
        dedicated: await dedicatedWorkers(ctx),
      };
      const idle = seen.asgs.every((o) => o.state === "idle") && (!waitDedicated || (seen.dedicated ?? []).length === 0);
      return { done: idle, seen };
    },
    onProgress: ({ seen, elapsedMs, timeoutMs }) =>
      ctx.emit({
        type: "progress",
        step: "wait-idle-workers",
        message: `${describe(seen)} · ${formatDuration(elapsedMs)} elapsed, deadline ${formatDuration(timeoutMs)}`,
        data: {
          asgs: seen.asgs.map(({ asg, state, value, inService }) => ({ asg, state, value, inService })),
          dedicated: seen.dedicated && {
            count: seen.dedicated.length,
            users: [...new Set(seen.dedicated.map((w) => w.user ?? "unknown user"))],
            instances: seen.dedicated.map((w) => w.instanceId),
          },
          elapsedMs,
          timeoutMs,
        },
      }),
    onTimeout: (last, elapsedMs) =>
      cutByWindow ? windowEnded(`${last ? describe(last) : "nothing"} after ${formatDuration(elapsedMs)}`) : refused(
        "wait for the workers to become idle",
        `not drained within ${formatDuration(elapsedMs)}; last seen: ${last ? describe(last) : "nothing"}`,
        "computations are still running; check the services machine, or raise --drain-timeout. Nothing was changed after cancelling",
      ),
  });
  const unwaited = !waitDedicated && (seen.dedicated ?? []).length > 0;
  return describe(seen) + (unwaited ? " — not waited for: the update does not replace them (--wait-dedicated waits until none runs)" : "");
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
