import {
  DisableAlarmActionsCommand,
  EnableAlarmActionsCommand,
  ListTagsForResourceCommand,
  paginateDescribeAlarms,
  TagResourceCommand,
  UntagResourceCommand,
  type MetricAlarm,
} from "@aws-sdk/client-cloudwatch";
import { awsCall } from "../../../lib/aws";
import type { RunContext } from "../../context";
import { chunk } from "./scaleInProtection";

/**
 * Runbook caveat 8: the deployment's alarms keep firing during the upgrade, so their actions are
 * disabled for the window and re-enabled after `up` (also when it fails). Which alarms were
 * enabled is recorded *before* anything changes, as a tag on each alarm itself, so a later run
 * on another machine still knows what to restore after a crash.
 */
export const SUSPENDED_TAG = "upgrade-orchestrator:actions-suspended-by";

/** The deployment's alarms: those on a worker ASG's or the services instance's dimension. */
export async function deploymentAlarms(ctx: RunContext): Promise<MetricAlarm[]> {
  const asgs = new Set(ctx.deployment!.workerAsgs.map((a) => a.name));
  const instance = ctx.deployment!.servicesInstanceId;
  const ours = (dims: Array<{ Name?: string; Value?: string }> = []) =>
    dims.some((d) => (d.Name === "AutoScalingGroupName" && asgs.has(d.Value!)) || (d.Name === "InstanceId" && d.Value === instance));
  const alarms: MetricAlarm[] = [];
  await awsCall("list the CloudWatch alarms", async () => {
    for await (const page of paginateDescribeAlarms({ client: ctx.aws().cloudWatch }, { AlarmTypes: ["MetricAlarm"] })) {
      for (const alarm of page.MetricAlarms ?? []) {
        if (ours(alarm.Dimensions) || (alarm.Metrics ?? []).some((m) => ours(m.MetricStat?.Metric?.Dimensions))) alarms.push(alarm);
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
  return names.length > 0 ? `actions disabled on ${names.join(", ")}` : "no alarm of the deployment has actions enabled";
}

/**
 * Re-enables exactly the alarms a run suspended: those tagged by any run (a crashed earlier run
 * included), then removes the tag. Alarms deleted by `up` (the replaced ASG's) are gone and need nothing.
 */
export async function restoreAlarmActions(ctx: RunContext): Promise<string> {
  if (!ctx.deployment) return "nothing was suspended (the run stopped before reading the deployment)";
  const candidates = (await deploymentAlarms(ctx)).filter((a) => !a.ActionsEnabled);
  const restore: MetricAlarm[] = [];
  for (const alarm of candidates) {
    const tags = await awsCall(`read the tags of alarm ${alarm.AlarmName}`, () =>
      ctx.aws().cloudWatch.send(new ListTagsForResourceCommand({ ResourceARN: alarm.AlarmArn })),
    );
    if ((tags.Tags ?? []).some((t) => t.Key === SUSPENDED_TAG)) restore.push(alarm);
  }
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
