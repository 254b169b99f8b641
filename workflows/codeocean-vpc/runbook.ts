import { DeleteChangeSetCommand } from "@aws-sdk/client-cloudformation";
import { awsSettingsFor, awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import type { Step } from "../../lib/steps";
import { ADMIN_PANEL_STEP, describeActivity, idle, readActivity, runHook, waitForMaintenance } from "./maintenance";
import { executeChangeSet, liveVolumeSizes, prepareChangeSet, updateNames, type ChangeSetPlan } from "./changeSet";
import { BACKUP_TEMPLATE, backupTemplateUrlFor, compareVersions, ROLE_TEMPLATE, roleTemplateUrlFor, sameVersion, updateRunning, type LiveDatabase } from "./plan";
import type { CompanionStack, VpcSettings } from "./settings";
import { followUpdate, liveDatabase, readStack, readTemplate, requireUpdatable, type LiveStack, type Say, type TemplateSummary } from "./stacks";

/**
 * Runbook 2 of RUNBOOKS.md, the Code Ocean VPC upgrade, as steps. Everything that only reads or
 * reviews comes first, before the downtime: the database's storage, the primary's change set
 * (refused when it destroys data), the role and backup stacks' change sets. Then maintenance mode
 * is enabled and verified; only then are stacks updated: role, backup, primary; then maintenance
 * mode off. A maintenance mode that cannot be verified leaves every stack at its old template (the
 * change sets reviewed for them are deleted). Each step looks at the world first, so running the
 * whole list again after a crash resumes where it stopped (an update that is already running is
 * followed, never started a second time).
 */
export interface VpcContext {
  settings: VpcSettings;
  aws: AwsClients;
  templateUrl: string;
  template: TemplateSummary;
  /** The primary stack as last read. */
  stack: LiveStack;
  /** The database's storage and auto-scaling ceiling as read live. */
  live?: LiveDatabase;
  changeSet?: ChangeSetPlan;
  /** What the review found for the role and backup stacks. */
  companions: Partial<Record<CompanionKind, CompanionReview>>;
  /** Change sets this run made and has not executed: deleted when the run fails. */
  unexecuted: PendingChangeSet[];
  /** Maintenance mode was asked for (hook run or the operator told what to click) by this run. */
  maintenanceAsked: boolean;
  /** Maintenance mode's effects were seen (by this run's wait or its check). */
  maintenanceOn: boolean;
  /** The primary stack was at the target before this run (an adoption or a re-run): nothing to switch off. */
  startedAtTarget: boolean;
  pollMs: number;
  updateTimeoutMs: number;
  say: Say;
}

export type CompanionKind = "role" | "backup";

export interface CompanionReview {
  stackName: string;
  templateUrl: string;
  /** Nothing to do for it: why (already at its template, or no changes). */
  atTarget?: string;
  /** An update of it was running when reviewed (a crashed run's): followed after maintenance mode. */
  running?: string;
  /** Its reviewed change set, executed once maintenance mode is verified. */
  plan?: ChangeSetPlan;
}

export interface PendingChangeSet {
  stackName: string;
  changeSet: string;
  /** Set for a role/backup stack (its own region or account). */
  companion?: CompanionStack;
}

interface Companion {
  kind: CompanionKind;
  label: string;
  pick: (s: VpcSettings) => CompanionStack | undefined;
  file: string;
}
const ROLE: Companion = { kind: "role", label: "least-privilege role stack", pick: (s) => s.roleStack, file: ROLE_TEMPLATE };
const BACKUP: Companion = { kind: "backup", label: "backup stack", pick: (s) => s.backupStack, file: BACKUP_TEMPLATE };

// 1. Reading and reviewing only: a bad stack or template fails before maintenance mode is asked for.
export const checkRdsStorage: Step<VpcContext> = {
  id: "check-rds-storage",
  title: "Compare the database's live storage and its ceiling with pRdsAllocatedStorage and pRdsMaxAllocatedStorage",
  readOnly: true,
  check: async (ctx) => primaryDoneOrRunning(ctx),
  async run(ctx) {
    const { id, ...live } = await liveDatabase(ctx.aws.cloudFormation, ctx.aws.rds, ctx.stack.name);
    ctx.live = live;
    const param = (key: string) => ctx.settings.parameters?.[key] ?? ctx.stack.parameters[key] ?? "(unset)";
    return `${id}: live ${live.allocated} GiB (parameter ${param("pRdsAllocatedStorage")}), ceiling ${live.maxAllocated ?? "(auto-scaling off)"} GiB (parameter ${param("pRdsMaxAllocatedStorage")})`;
  },
};

export const reviewPrimaryStack: Step<VpcContext> = {
  id: "review-primary-stack",
  // A change set that would destroy data refuses the whole run, before any stack is touched.
  title: "Create and review the primary stack's change set",
  check: async (ctx) => primaryDoneOrRunning(ctx),
  async run(ctx) {
    ctx.changeSet = await prepareChangeSet(ctx.aws.cloudFormation, changeSetSettings(ctx));
    remember(ctx, ctx.stack.name, ctx.changeSet);
    return ctx.changeSet.empty ? "no changes" : `${ctx.changeSet.changes.length} resource change(s), executed once maintenance mode is verified`;
  },
};

export const reviewRoleStack = reviewCompanionStep(ROLE);

export const reviewBackupStack = reviewCompanionStep(BACKUP);

// 2. The downtime.
export const enableMaintenance: Step<VpcContext> = {
  id: "enable-maintenance",
  title: "Enable maintenance mode and wait for its effects",
  // Only the primary decides: updated role/backup stacks (an earlier run's) are no sign that
  // maintenance mode is still on; its effects in AWS are.
  check: async (ctx) => {
    const primary = primaryDoneOrRunning(ctx);
    if (primary !== undefined) return primary;
    const activity = await readActivity(ctx.aws, ctx.stack.name);
    if (!idle(activity)) return undefined;
    ctx.maintenanceOn = true;
    return `maintenance mode is on: its effects are visible (${describeActivity(activity)})`;
  },
  async run(ctx) {
    const enable = ctx.settings.maintenance?.enable;
    ctx.maintenanceAsked = true;
    if (enable) await ctx.say(`maintenance: enable hook: ${await runHook(enable, "enable")}`);
    else await ctx.say(`maintenance: ACTION NEEDED: ${ADMIN_PANEL_STEP}; waiting until its effects are visible in AWS`);
    const activity = await waitForMaintenance(() => readActivity(ctx.aws, ctx.stack.name), {
      pollMs: (ctx.settings.maintenance?.pollSeconds ?? 15) * 1000,
      timeoutMs: (ctx.settings.maintenance?.timeoutSeconds ?? 1800) * 1000,
      say: ctx.say,
      stackName: ctx.stack.name,
      untouched: untouchedNote(ctx),
    });
    ctx.maintenanceOn = true;
    return `verified: ${describeActivity(activity)}`;
  },
};

// 3. The updates, in the order of the docs: role, backup, primary.
export const updateRoleStack = updateCompanionStep(ROLE);

export const updateBackupStack = updateCompanionStep(BACKUP);

export const updatePrimaryStack: Step<VpcContext> = {
  id: "update-primary-stack",
  title: "Execute the change set and follow the stack's events",
  check: async (ctx) => (updateRunning(ctx.stack.status) ? undefined : (primaryDone(ctx) ?? (ctx.changeSet?.empty ? "the change set has no changes" : undefined))),
  async run(ctx) {
    const { token } = updateNames(ctx.stack.name, ctx.templateUrl);
    ctx.stack = await readStack(ctx.aws.cloudFormation, ctx.stack.name);
    if (updateRunning(ctx.stack.status)) {
      await ctx.say(`${ctx.stack.name}: an update is already running (${ctx.stack.status}); following it instead of starting another`);
    } else {
      // The storage may have auto-scaled again (or its ceiling been raised) while maintenance mode was awaited.
      const { id: _id, ...live } = await liveDatabase(ctx.aws.cloudFormation, ctx.aws.rds, ctx.stack.name);
      const moved = ctx.live !== undefined && (live.allocated > ctx.live.allocated || (live.maxAllocated ?? 0) > (ctx.live.maxAllocated ?? 0));
      if (ctx.changeSet === undefined || moved) {
        if (ctx.changeSet) await ctx.say(`${ctx.stack.name}: the database is now ${live.allocated} GiB (ceiling ${live.maxAllocated ?? "off"}) since the change set was made; making it again`);
        ctx.live = live;
        ctx.changeSet = await prepareChangeSet(ctx.aws.cloudFormation, changeSetSettings(ctx));
        remember(ctx, ctx.stack.name, ctx.changeSet);
        if (ctx.changeSet.empty) return "no changes";
      }
      await execute(ctx, ctx.aws, ctx.stack.name, ctx.changeSet);
    }
    await followUpdate(ctx.aws.cloudFormation, ctx.stack.name, token, { pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
    ctx.stack = await readStack(ctx.aws.cloudFormation, ctx.stack.name);
    return `${ctx.stack.status} at ${ctx.stack.version ?? "(no version metadata)"}`;
  },
};

export const disableMaintenance: Step<VpcContext> = {
  id: "disable-maintenance",
  title: "Maintenance mode off",
  check: async (ctx) => (ctx.startedAtTarget ? "nothing was updated by this run" : undefined),
  async run(ctx) {
    const disable = ctx.settings.maintenance?.disable;
    if (disable) return `disable hook: ${await runHook(disable, "disable")}`;
    return "the deployment turns maintenance mode off by itself when the update completes (no disable hook given)";
  },
};

/** The runbook in its order: review everything (1), the downtime (2), the updates role → backup → primary (3), maintenance mode off. */
export const vpcRunbook: Array<Step<VpcContext>> = [
  checkRdsStorage,
  reviewPrimaryStack,
  reviewRoleStack,
  reviewBackupStack,
  enableMaintenance,
  updateRoleStack,
  updateBackupStack,
  updatePrimaryStack,
  disableMaintenance,
];

function changeSetSettings(ctx: VpcContext) {
  return {
    stackName: ctx.stack.name,
    templateUrl: ctx.templateUrl,
    template: ctx.template,
    stack: ctx.stack,
    overrides: ctx.settings.parameters,
    live: ctx.live,
    liveSizes: liveVolumeSizes(ctx.aws.cloudFormation, ctx.aws.ec2, ctx.stack.name),
    roleArn: ctx.settings.roleArn,
    pollMs: ctx.pollMs,
    timeoutMs: ctx.updateTimeoutMs,
    say: ctx.say,
  };
}

function primaryDoneOrRunning(ctx: VpcContext): string | undefined {
  return updateRunning(ctx.stack.status) ? `an update of ${ctx.stack.name} is running (${ctx.stack.status}): it is followed below` : primaryDone(ctx);
}

/** The primary is at the target already: nothing of its part of the runbook is left. */
function primaryDone(ctx: VpcContext): string | undefined {
  if (updateRunning(ctx.stack.status)) return undefined;
  if (ctx.stack.version && compareVersions(ctx.stack.version, ctx.settings.version) >= 0 && /_COMPLETE$/.test(ctx.stack.status)) {
    return `the stack is at ${ctx.stack.version} (${ctx.stack.status})`;
  }
  return undefined;
}

/** What the maintenance deadline's refusal adds: which stacks are already at their new template (an earlier run's work). */
export function untouchedNote(ctx: Pick<VpcContext, "companions">): string | undefined {
  const already = (["role", "backup"] as const).flatMap((kind) => {
    const review = ctx.companions[kind];
    return review?.atTarget !== undefined ? [`${kind} ${review.stackName}`] : [];
  });
  return already.length > 0 ? `already at their target template before this run: ${already.join(", ")}` : undefined;
}

/**
 * A role/backup stack's template: its templateUrl, else Code Ocean's published URL: the role beside
 * the primary's release (its own version or the primary's), the backup stack in its own line (its
 * version is required by the settings).
 */
export function companionTemplateUrl(companion: CompanionStack, file: string, primaryVersion: string): string {
  if (companion.templateUrl) return companion.templateUrl;
  return file === BACKUP_TEMPLATE ? backupTemplateUrlFor(companion.version!) : roleTemplateUrlFor(companion.version ?? primaryVersion);
}

/** Reads a role/backup stack and its template and makes its change set (refused when destructive); executes nothing. */
async function reviewCompanion(ctx: VpcContext, aws: AwsClients, companion: CompanionStack, file: string): Promise<CompanionReview> {
  const templateUrl = companionTemplateUrl(companion, file, ctx.settings.version);
  const stack = await readStack(aws.cloudFormation, companion.stackName);
  requireUpdatable(stack);
  const review: CompanionReview = { stackName: stack.name, templateUrl };
  if (updateRunning(stack.status)) return { ...review, running: `${stack.name}: an update is running (${stack.status}); followed once maintenance mode is verified` };
  const template = await readTemplate(aws.cloudFormation, templateUrl);
  if (template.version && sameVersion(stack.version, template.version)) return { ...review, atTarget: `${stack.name}: already at ${template.version}` };
  const plan = await prepareChangeSet(aws.cloudFormation, { stackName: stack.name, templateUrl, template, stack, pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
  if (plan.empty) return { ...review, atTarget: `${stack.name}: already at its target template (no changes)` };
  remember(ctx, stack.name, plan, companion);
  return { ...review, plan };
}

/** Role and backup stacks, before the downtime: read, checked updatable, their change sets made and reviewed. */
function reviewCompanionStep(c: Companion): Step<VpcContext> {
  return {
    id: `review-${c.kind}-stack`,
    title: `Read the ${c.label} and review its change set`,
    when: (ctx) => c.pick(ctx.settings) !== undefined,
    async run(ctx) {
      const companion = c.pick(ctx.settings)!;
      const review = await withCompanionClients(ctx, companion, (aws) => reviewCompanion(ctx, aws, companion, c.file));
      ctx.companions[c.kind] = review;
      return review.atTarget ?? review.running ?? `${review.stackName}: ${review.plan!.changes.length} resource change(s), executed once maintenance mode is verified`;
    },
  };
}

/** Role and backup stacks, after maintenance mode: the reviewed change set executed and followed to UPDATE_COMPLETE. */
function updateCompanionStep(c: Companion): Step<VpcContext> {
  return {
    id: `update-${c.kind}-stack`,
    title: `Update the ${c.label}`,
    when: (ctx) => c.pick(ctx.settings) !== undefined,
    check: async (ctx) => ctx.companions[c.kind]?.atTarget,
    async run(ctx) {
      const companion = c.pick(ctx.settings)!;
      return withCompanionClients(ctx, companion, async (aws) => {
        let review = ctx.companions[c.kind] ?? (await reviewCompanion(ctx, aws, companion, c.file));
        const stack = await readStack(aws.cloudFormation, review.stackName);
        const { token } = updateNames(stack.name, review.templateUrl);
        if (updateRunning(stack.status)) {
          await ctx.say(`${stack.name}: an update is already running (${stack.status}); following it instead of starting another`);
        } else {
          // The update seen running at review time has ended since: look again.
          if (review.plan === undefined) review = ctx.companions[c.kind] = await reviewCompanion(ctx, aws, companion, c.file);
          if (review.atTarget !== undefined) return review.atTarget;
          await execute(ctx, aws, stack.name, review.plan!);
        }
        await followUpdate(aws.cloudFormation, stack.name, token, { pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
        return `${stack.name}: UPDATE_COMPLETE with ${review.templateUrl}`;
      });
    },
  };
}

function remember(ctx: VpcContext, stackName: string, plan: ChangeSetPlan, companion?: CompanionStack): void {
  ctx.unexecuted = ctx.unexecuted.filter((p) => !(p.stackName === stackName && p.changeSet === plan.changeSet));
  if (!plan.empty) ctx.unexecuted.push({ stackName, changeSet: plan.changeSet, companion });
}

async function execute(ctx: VpcContext, aws: AwsClients, stackName: string, plan: ChangeSetPlan): Promise<void> {
  ctx.unexecuted = ctx.unexecuted.filter((p) => !(p.stackName === stackName && p.changeSet === plan.changeSet));
  await executeChangeSet(aws.cloudFormation, stackName, plan);
}

/**
 * After a failed run: deletes the change sets this run reviewed and did not execute, so a refused
 * run (maintenance never verified, a failed hook) leaves every stack as it found it. Never throws;
 * returns what it deleted and what it could not.
 */
export async function discardUnexecuted(ctx: VpcContext): Promise<{ deleted: string[]; left: string[] }> {
  const deleted: string[] = [];
  const left: string[] = [];
  for (const p of ctx.unexecuted) {
    try {
      await withCompanionClients(ctx, p.companion, (aws) => aws.cloudFormation.send(new DeleteChangeSetCommand({ StackName: p.stackName, ChangeSetName: p.changeSet })));
      deleted.push(`${p.stackName}/${p.changeSet}`);
    } catch (err) {
      left.push(`${p.stackName}/${p.changeSet} (${(err as Error).name}: ${(err as Error).message})`);
    }
  }
  ctx.unexecuted = [];
  return { deleted, left };
}

async function withCompanionClients<T>(ctx: VpcContext, companion: CompanionStack | undefined, work: (aws: AwsClients) => Promise<T>): Promise<T> {
  if (!companion || (!companion.region && !companion.profile && !companion.assumeRoleArn)) return work(ctx.aws);
  const aws = createAwsClients(await awsSettingsFor(awsSettingsFromEnv(), { region: companion.region ?? ctx.settings.region, profile: companion.profile, assumeRoleArn: companion.assumeRoleArn }));
  try {
    return await work(aws);
  } finally {
    aws.destroy();
  }
}
