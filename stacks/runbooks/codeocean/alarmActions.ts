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
import { readRun, runJournal, type RunState } from "../../journal";

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

/**
 * Suspend, as a protocol a re-run can finish from any crash point (README: alarm actions):
 *   1. tag each enabled alarm SUSPENDED_TAG=<run id>          (recorded on the alarm before it changes)
 *   2. journal: suspend (intent); DisableAlarmActions per 100; journal: suspend applied
 * Restore (restoreAlarmActions) decides per tagged alarm from the tag, the alarm's state now and the
 * journal of the run the tag names.
 */
export async function suspendAlarmActions(ctx: RunContext): Promise<string> {
  const enabled = (await deploymentAlarms(ctx)).filter((a) => a.ActionsEnabled);
  for (const alarm of enabled) await setSuspensionTag(ctx, alarm, ctx.runId);
  const names = enabled.map((a) => a.AlarmName!);
  if (names.length > 0) ctx.emit({ type: "suspend", step: "suspend-alarms", what: "alarm-actions", items: names });
  for (const batch of chunk(names, 100)) {
    await awsCall(`disable the actions of ${batch.length} alarms`, () =>
      ctx.aws().cloudWatch.send(new DisableAlarmActionsCommand({ AlarmNames: batch })),
    );
    // synchronously in the journal, right after AWS answered: a re-run knows this run disabled them
    ctx.emit({ type: "suspend", step: "suspend-alarms", what: "alarm-actions", items: batch, applied: true });
    ctx.suspendedAlarms.push(...batch);
  }
  const name = ctx.deployment!.deploymentName;
  const by = name ? `tag deployment=${name} and dimensions` : "dimensions only (the services instance has no deployment tag)";
  return names.length > 0 ? `actions disabled on ${names.length} alarms (selected by ${by}): ${names.join(", ")}` : `no alarm of the deployment has actions enabled (selected by ${by})`;
}

const setSuspensionTag = (ctx: RunContext, alarm: MetricAlarm, value: string) =>
  awsCall(`record the suspension on alarm ${alarm.AlarmName}`, () =>
    ctx.aws().cloudWatch.send(new TagResourceCommand({ ResourceARN: alarm.AlarmArn, Tags: [{ Key: SUSPENDED_TAG, Value: value }] })),
  );

/** The suspension tag's value: `<run id>` (suspended by that run) or `restoring:<run id>` (that run is re-enabling it). */
export function parseSuspensionTag(value: string): { phase: "suspended" | "restoring"; runId: string } {
  const m = /^restoring:(.+)$/.exec(value);
  return m ? { phase: "restoring", runId: m[1]! } : { phase: "suspended", runId: value };
}

/** What restore does with one tagged alarm, and why (a pure decision, unit-tested). */
export interface RestoreDecision {
  enable: boolean;
  /** For the note, when the alarm is left as a person left it or was never disabled. */
  why?: string;
}

/**
 * One tagged alarm: its tag, whether its actions are enabled now, and what the journal of the run
 * the tag names says (undefined: that journal is not on this machine, so the tag alone decides,
 * towards alerting). An alarm this protocol disabled and has not re-enabled is enabled; one whose
 * state a person changed after the run's change is left as it is.
 */
export function decideRestore(tag: string, enabledNow: boolean, journal: { intended: boolean; applied: boolean; restored: boolean } | undefined): RestoreDecision {
  const { phase, runId } = parseSuspensionTag(tag);
  if (phase === "suspended") {
    if (enabledNow) return { enable: false, why: journal?.applied ? `re-enabled by someone after run ${runId} disabled it` : `run ${runId} stopped before disabling it` };
    // recorded as about to be disabled but not as done: the call may have been in flight when the run
    // died, so it counts as the run's (towards alerting); not even recorded: the run never sent it
    if (journal && !journal.applied && !journal.intended) return { enable: false, why: `disabled by someone, not by run ${runId} (it stopped before disabling it): left disabled` };
    return { enable: true };
  }
  if (enabledNow) return { enable: false, why: `already re-enabled by run ${runId}` };
  if (journal?.restored) return { enable: false, why: `disabled by someone after run ${runId} re-enabled it: left disabled` };
  return { enable: true };
}

/**
 * A run that died with alarms recorded as about to be disabled and not as disabled: which of them
 * its DisableAlarmActions reached. Batches go out one at a time, in the recorded order, and each
 * lands whole or not at all: the first batch with no alarm recorded as applied was the one in
 * flight, the later ones were never sent. Whether the one in flight landed is read from its alarms
 * now: a landed batch disabled all of them, so more of them enabled than disabled means it did not
 * land and the disabled ones were disabled by a person (the parsimonious reading: one person's
 * action, not many); otherwise it landed (a tie, or a batch of one, is decided towards alerting).
 * `enabledNow` is each alarm as it was before the run deciding touched it. Returns the alarms to
 * count as disabled by the run, and those it never sent.
 */
export function settleInFlight(intended: readonly string[], applied: ReadonlySet<string>, enabledNow: ReadonlyMap<string, boolean>): { applied: Set<string>; neverSent: Set<string> } {
  const settled = { applied: new Set(applied), neverSent: new Set<string>() };
  const batches = chunk([...intended], 100);
  const inFlight = batches.findIndex((b) => !b.some((n) => applied.has(n)));
  if (inFlight < 0) return settled;
  for (const later of batches.slice(inFlight + 1)) for (const n of later) settled.neverSent.add(n);
  const batch = batches[inFlight]!;
  const existing = batch.filter((n) => enabledNow.has(n)); // the update may have deleted some
  const enabled = existing.filter((n) => enabledNow.get(n) === true).length;
  const landed = enabled <= existing.length - enabled;
  for (const n of batch) (landed ? settled.applied : settled.neverSent).add(n);
  return settled;
}

/**
 * Restore, for every alarm of the deployment that carries the suspension tag (this run's, or a
 * crashed run's): those still as the protocol left them are re-tagged `restoring:<this run>`, then
 * re-enabled (journal: restore), then every tag is removed. Each crash point leaves a state the next
 * run's restore finishes: at most the tag is left, and the journal says whether the enable happened.
 */
export async function restoreAlarmActions(ctx: RunContext): Promise<string> {
  if (!ctx.deployment) return "nothing was suspended (the run stopped before reading the deployment)";
  const alarms = await deploymentAlarms(ctx);
  const tags = alarms.length > 0 ? await suspensionTags(ctx) : new Map<string, string>();
  const tagged = alarms.filter((a) => tags.has(a.AlarmName!));
  const journals = new Map<string, RunState | undefined>();
  const journalOf = (runId: string) => {
    if (!journals.has(runId)) journals.set(runId, runId === ctx.runId && ctx.journal ? readRun(ctx.journal.path) : runJournal(ctx.env, ctx.options.cwd, ctx.options.stack, runId));
    return journals.get(runId);
  };
  // what each alarm was before this run touched it: enabled now, or found enabled (and suspended) by
  // this run's suspend-alarms; the evidence of whether a crashed run's last batch landed
  const foundEnabled = new Set(journalOf(ctx.runId)?.suspendIntended["alarm-actions"] ?? []);
  const enabledNow = new Map(alarms.map((a) => [a.AlarmName!, a.ActionsEnabled === true || foundEnabled.has(a.AlarmName!)]));
  const settledOf = new Map<string, ReturnType<typeof settleInFlight>>();
  const settled = (runId: string, run: RunState) => {
    if (!settledOf.has(runId)) settledOf.set(runId, settleInFlight(run.suspendIntended["alarm-actions"] ?? [], new Set(run.suspendApplied["alarm-actions"] ?? []), enabledNow));
    return settledOf.get(runId)!;
  };
  const enable: MetricAlarm[] = [];
  const left: string[] = [];
  const unknownJournals = new Set<string>();
  for (const alarm of tagged) {
    const name = alarm.AlarmName!;
    const { runId } = parseSuspensionTag(tags.get(name)!);
    const run = journalOf(runId);
    if (!run) unknownJournals.add(runId);
    const sent = run && settled(runId, run);
    const journal = run && sent && {
      intended: (run.suspendIntended["alarm-actions"] ?? []).includes(name) && !sent.neverSent.has(name),
      applied: sent.applied.has(name),
      restored: (run.restored["alarm-actions"] ?? []).includes(name),
    };
    const decision = decideRestore(tags.get(name)!, alarm.ActionsEnabled === true, journal);
    if (decision.enable) enable.push(alarm);
    else if (decision.why) left.push(`${name} (${decision.why})`);
  }
  for (const alarm of enable) await setSuspensionTag(ctx, alarm, `restoring:${ctx.runId}`);
  const names = enable.map((a) => a.AlarmName!);
  for (const batch of chunk(names, 100)) {
    await awsCall(`re-enable the actions of ${batch.length} alarms`, () =>
      ctx.aws().cloudWatch.send(new EnableAlarmActionsCommand({ AlarmNames: batch })),
    );
    ctx.emit({ type: "restore", step: "restore-alarms", what: "alarm-actions", items: batch });
  }
  for (const alarm of tagged) {
    await awsCall(`clear the suspension tag of alarm ${alarm.AlarmName}`, () =>
      ctx.aws().cloudWatch.send(new UntagResourceCommand({ ResourceARN: alarm.AlarmArn, TagKeys: [SUSPENDED_TAG] })),
    );
  }
  const gone = ctx.suspendedAlarms.filter((n) => !alarms.some((a) => a.AlarmName === n));
  return [
    names.length > 0 ? `actions re-enabled on ${names.join(", ")}` : "no suspended alarm to restore",
    left.length > 0 ? `tag cleared, actions left as they are: ${left.join(", ")}` : "",
    unknownJournals.size > 0 ? `the journal of run ${[...unknownJournals].join(", ")} is not on this machine: its tags alone decided` : "",
    gone.length > 0 ? `deleted by the update (nothing to restore): ${gone.join(", ")}` : "",
  ].filter(Boolean).join("; ");
}

/** Alarm name → the value of its suspension tag, for every alarm that carries one (one GetResources per 100). */
async function suspensionTags(ctx: RunContext): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  await awsCall(`find the CloudWatch alarms tagged ${SUSPENDED_TAG}`, async () => {
    for await (const page of paginateGetResources(
      { client: ctx.aws().tagging },
      { ResourceTypeFilters: ["cloudwatch:alarm"], TagFilters: [{ Key: SUSPENDED_TAG }], ResourcesPerPage: 100 },
    )) {
      for (const r of page.ResourceTagMappingList ?? []) {
        const name = /:alarm:(.+)$/.exec(r.ResourceARN ?? "")?.[1];
        const value = r.Tags?.find((t) => t.Key === SUSPENDED_TAG)?.Value;
        if (name && value) found.set(name, value);
      }
    }
  });
  return found;
}
