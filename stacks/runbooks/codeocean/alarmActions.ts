import {
  DisableAlarmActionsCommand,
  EnableAlarmActionsCommand,
  paginateDescribeAlarms,
  TagResourceCommand,
  UntagResourceCommand,
  type MetricAlarm,
} from "@aws-sdk/client-cloudwatch";
import { paginateGetResources } from "@aws-sdk/client-resource-groups-tagging-api";
import { awsCall } from "../../../lib/aws";
import type { RunContext } from "../../context";
import { deploymentName } from "./deployment";
import { chunk } from "./scaleInProtection";

/**
 * Runbook caveat 8: the deployment's alarms keep firing during the upgrade, so their actions are
 * disabled for the window and re-enabled after `up` (also when it fails). Which alarms were
 * enabled is recorded *before* anything changes, as a tag on each alarm itself, so a later run
 * on another machine still knows what to restore after a crash.
 */
export const SUSPENDED_TAG = "upgrade-orchestrator:actions-suspended-by";

/** The alarm names that carry a tag (any value when `value` is undefined), by one GetResources call per page of 100. */
export async function alarmsTagged(ctx: RunContext, key: string, value?: string): Promise<Set<string>> {
  const names = new Set<string>();
  await awsCall(`find the CloudWatch alarms tagged ${key}${value === undefined ? "" : `=${value}`}`, async () => {
    for await (const page of paginateGetResources(
      { client: ctx.aws().tagging },
      { ResourceTypeFilters: ["cloudwatch:alarm"], TagFilters: [{ Key: key, Values: value === undefined ? undefined : [value] }], ResourcesPerPage: 100 },
    )) {
      for (const r of page.ResourceTagMappingList ?? []) {
        const name = /:alarm:(.+)$/.exec(r.ResourceARN ?? "")?.[1];
        if (name) names.add(name);
      }
    }
  });
  return names;
}

/**
 * The deployment's alarms: every alarm tagged deployment=<the services instance's deployment tag>
 * (metric-math alarms with no dimensions included), plus, for alarms the tag does not reach, the
 * dimension rule: a worker ASG's AutoScalingGroupName, or the services instance as `InstanceId`
 * or as `InstanceID` (the spelling of the deployment's scale-out alarms), also inside metric math.
 */
export async function deploymentAlarms(ctx: RunContext): Promise<MetricAlarm[]> {
  const asgs = new Set(ctx.deployment!.workerAsgs.map((a) => a.name));
  const instance = ctx.deployment!.servicesInstanceId;
  const name = await deploymentName(ctx);
  const tagged = name ? await alarmsTagged(ctx, "deployment", name) : new Set<string>();
  const ours = (dims: Array<{ Name?: string; Value?: string }> = []) =>
    dims.some((d) => (d.Name === "AutoScalingGroupName" && asgs.has(d.Value!)) || ((d.Name === "InstanceId" || d.Name === "InstanceID") && d.Value === instance));
  const alarms: MetricAlarm[] = [];
  await awsCall("list the CloudWatch alarms", async () => {
    for await (const page of paginateDescribeAlarms({ client: ctx.aws().cloudWatch }, { AlarmTypes: ["MetricAlarm"] })) {
      for (const alarm of page.MetricAlarms ?? []) {
        if (tagged.has(alarm.AlarmName!) || ours(alarm.Dimensions) || (alarm.Metrics ?? []).some((m) => ours(m.MetricStat?.Metric?.Dimensions))) alarms.push(alarm);
      }
    }
  });
  return alarms;
}

export async function suspendAlarmActions(ctx: RunContext): Promise<string> {
  const enabled = (await deploymentAlarms(ctx)).filter((a) => a.ActionsEnabled);
  for (const alarm of enabled) {
    await awsCall(`record the suspension on alarm ${alarm.AlarmName}`, () =>
      ctx.aws().cloudWatch.send(new TagResourceCommand({ ResourceARN: alarm.AlarmArn, Tags: [{ Key: SUSPENDED_TAG, Value: ctx.runId }] })),
    );
  }
  const names = enabled.map((a) => a.AlarmName!);
  if (names.length > 0) ctx.emit({ type: "suspend", step: "suspend-alarms", what: "alarm-actions", items: names });
  for (const batch of chunk(names, 100)) {
    await awsCall(`disable the actions of ${batch.length} alarms`, () =>
      ctx.aws().cloudWatch.send(new DisableAlarmActionsCommand({ AlarmNames: batch })),
    );
  }
  ctx.suspendedAlarms.push(...names);
  const name = ctx.deployment!.deploymentName;
  const by = name ? `tag deployment=${name} and dimensions` : "dimensions only (the services instance has no deployment tag)";
  return names.length > 0 ? `actions disabled on ${names.length} alarms (selected by ${by}): ${names.join(", ")}` : `no alarm of the deployment has actions enabled (selected by ${by})`;
}

/**
 * Re-enables exactly the alarms a run suspended: those tagged by any run (a crashed earlier run
 * included), then removes the tag. Alarms deleted by `up` (the replaced ASG's) are gone and need nothing.
 */
export async function restoreAlarmActions(ctx: RunContext): Promise<string> {
  if (!ctx.deployment) return "nothing was suspended (the run stopped before reading the deployment)";
  const candidates = (await deploymentAlarms(ctx)).filter((a) => !a.ActionsEnabled);
  const suspended = candidates.length > 0 ? await alarmsTagged(ctx, SUSPENDED_TAG) : new Set<string>();
  const restore = candidates.filter((a) => suspended.has(a.AlarmName!));
  const names = restore.map((a) => a.AlarmName!);
  for (const batch of chunk(names, 100)) {
    await awsCall(`re-enable the actions of ${batch.length} alarms`, () =>
      ctx.aws().cloudWatch.send(new EnableAlarmActionsCommand({ AlarmNames: batch })),
    );
  }
  if (names.length > 0) ctx.emit({ type: "restore", step: "restore-alarms", what: "alarm-actions", items: names });
  for (const alarm of restore) {
    await awsCall(`clear the suspension tag of alarm ${alarm.AlarmName}`, () =>
      ctx.aws().cloudWatch.send(new UntagResourceCommand({ ResourceARN: alarm.AlarmArn, TagKeys: [SUSPENDED_TAG] })),
    );
  }
  const gone = ctx.suspendedAlarms.filter((n) => !names.includes(n) && !candidates.some((c) => c.AlarmName === n));
  return [
    names.length > 0 ? `actions re-enabled on ${names.join(", ")}` : "no suspended alarm to restore",
    gone.length > 0 ? `deleted by the update (nothing to restore): ${gone.join(", ")}` : "",
  ].filter(Boolean).join("; ");
}
