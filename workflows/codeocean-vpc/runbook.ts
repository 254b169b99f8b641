import { awsSettingsFor, awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import type { Step } from "../../lib/steps";
import { ADMIN_PANEL_STEP, describeActivity, idle, readActivity, runHook, waitForMaintenance } from "./maintenance";
import { compareVersions, templateUrlFor, updateRunning } from "./plan";
import type { CompanionStack, VpcSettings } from "./settings";
import {
  executeChangeSet,
  followUpdate,
  liveAllocatedStorage,
  prepareChangeSet,
  readStack,
  readTemplate,
  requireUpdatable,
  updateNames,
  type ChangeSetPlan,
  type LiveStack,
  type Say,
  type TemplateSummary,
} from "./stacks";

/**
 * Runbook 2 of RUNBOOKS.md, the Code Ocean VPC upgrade, as steps: the primary's change set is
 * made and reviewed first (reading only), then the role and backup stacks, maintenance mode, the
 * primary's update, maintenance mode off. Each step looks at the world
 * first, so running the whole list again after a crash resumes where it stopped (an update that is
 * already running is followed, never started a second time).
 */
export interface VpcContext {
  settings: VpcSettings;
  aws: AwsClients;
  templateUrl: string;
  template: TemplateSummary;
  /** The primary stack as last read. */
  stack: LiveStack;
  liveStorage?: number;
  changeSet?: ChangeSetPlan;
  /** Maintenance mode was asked for or verified by this run. */
  maintenanceOn: boolean;
  /** The primary stack was at the target before this run (an adoption or a re-run): nothing to switch off. */
  startedAtTarget: boolean;
  pollMs: number;
  updateTimeoutMs: number;
  say: Say;
}

export const ROLE_TEMPLATE = "codeocean-role.template.yaml";
export const BACKUP_TEMPLATE = "codeocean-backup.template.yaml";

export const vpcRunbook: Array<Step<VpcContext>> = [
  {
    id: "check-rds-storage",
    title: "Compare the database's live allocated storage with pRdsAllocatedStorage",
    readOnly: true,
    check: async (ctx) => primaryDoneOrRunning(ctx),
    async run(ctx) {
      const { id, storage } = await liveAllocatedStorage(ctx.aws.cloudFormation, ctx.aws.rds, ctx.stack.name);
      ctx.liveStorage = storage;
      const given = ctx.settings.parameters?.pRdsAllocatedStorage ?? ctx.stack.parameters.pRdsAllocatedStorage;
      return `${id}: live ${storage} GiB, stack parameter ${given ?? "(unset)"} GiB${given !== undefined && Number(given) < storage ? `: the update passes ${storage}` : ""}`;
    },
  },
  {
    id: "create-change-set",
    // Before any stack is touched: a change set that would destroy data refuses the whole run.
    title: "Create and review the primary stack's change set",
    check: async (ctx) => primaryDoneOrRunning(ctx),
    async run(ctx) {
      ctx.changeSet = await prepareChangeSet(ctx.aws.cloudFormation, changeSetSettings(ctx));
      return ctx.changeSet.empty ? "no changes" : `${ctx.changeSet.changes.length} resource change(s)`;
    },
  },
  companionStep("update-role-stack", "Update the least-privilege role stack", (s) => s.roleStack, ROLE_TEMPLATE),
  companionStep("update-backup-stack", "Update the backup stack", (s) => s.backupStack, BACKUP_TEMPLATE),
  {
    id: "enable-maintenance",
    title: "Enable maintenance mode and wait for its effects",
    check: async (ctx) => primaryDoneOrRunning(ctx) ?? (idle(await readActivity(ctx.aws, ctx.stack.name)) ? "its effects are visible: no active Batch jobs, workers at zero" : undefined),
    async run(ctx) {
      const enable = ctx.settings.maintenance?.enable;
      ctx.maintenanceOn = true;
      if (enable) await ctx.say(`maintenance: enable hook: ${await runHook(enable, "enable")}`);
      else await ctx.say(`maintenance: ACTION NEEDED: ${ADMIN_PANEL_STEP}; waiting until its effects are visible in AWS`);
      const activity = await waitForMaintenance(() => readActivity(ctx.aws, ctx.stack.name), {
        pollMs: (ctx.settings.maintenance?.pollSeconds ?? 15) * 1000,
        timeoutMs: (ctx.settings.maintenance?.timeoutSeconds ?? 1800) * 1000,
        say: ctx.say,
        stackName: ctx.stack.name,
      });
      return `verified: ${describeActivity(activity)}`;
    },
  },
  {
    id: "update-primary-stack",
    title: "Execute the change set and follow the stack's events",
    check: async (ctx) => (updateRunning(ctx.stack.status) ? undefined : (primaryDone(ctx) ?? (ctx.changeSet?.empty ? "the change set has no changes" : undefined))),
    async run(ctx) {
      const { token } = updateNames(ctx.stack.name, ctx.templateUrl);
      ctx.stack = await readStack(ctx.aws.cloudFormation, ctx.stack.name);
      if (updateRunning(ctx.stack.status)) {
        await ctx.say(`${ctx.stack.name}: an update is already running (${ctx.stack.status}); following it instead of starting another`);
      } else {
        // The storage may have auto-scaled again while maintenance mode was awaited.
        const { storage } = await liveAllocatedStorage(ctx.aws.cloudFormation, ctx.aws.rds, ctx.stack.name);
        if (ctx.changeSet === undefined || (ctx.liveStorage !== undefined && storage > ctx.liveStorage)) {
          if (ctx.changeSet) await ctx.say(`${ctx.stack.name}: the database grew to ${storage} GiB since the change set was made; making it again`);
          ctx.liveStorage = storage;
          ctx.changeSet = await prepareChangeSet(ctx.aws.cloudFormation, changeSetSettings(ctx));
          if (ctx.changeSet.empty) return "no changes";
        }
        await executeChangeSet(ctx.aws.cloudFormation, ctx.stack.name, ctx.changeSet);
      }
      await followUpdate(ctx.aws.cloudFormation, ctx.stack.name, token, { pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
      ctx.stack = await readStack(ctx.aws.cloudFormation, ctx.stack.name);
      return `${ctx.stack.status} at ${ctx.stack.version ?? "(no version metadata)"}`;
    },
  },
  {
    id: "disable-maintenance",
    title: "Maintenance mode off",
    check: async (ctx) => (ctx.startedAtTarget ? "nothing was updated by this run" : undefined),
    async run(ctx) {
      const disable = ctx.settings.maintenance?.disable;
      if (disable) return `disable hook: ${await runHook(disable, "disable")}`;
      return "the deployment turns maintenance mode off by itself when the update completes (no disable hook given)";
    },
  },
];

function changeSetSettings(ctx: VpcContext) {
  return {
    stackName: ctx.stack.name,
    templateUrl: ctx.templateUrl,
    template: ctx.template,
    stack: ctx.stack,
    overrides: ctx.settings.parameters,
    liveAllocatedStorage: ctx.liveStorage,
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

export function companionTemplateUrl(companion: CompanionStack, file: string, primaryVersion: string): string {
  return companion.templateUrl ?? templateUrlFor(companion.version ?? primaryVersion).replace(/codeocean\.template\.yaml$/, file);
}

/** Role and backup stacks: updated with their own template and followed to UPDATE_COMPLETE, skipped when already there. */
function companionStep(id: string, title: string, pick: (s: VpcSettings) => CompanionStack | undefined, file: string): Step<VpcContext> {
  return {
    id,
    title,
    when: (ctx) => pick(ctx.settings) !== undefined,
    async run(ctx) {
      const companion = pick(ctx.settings)!;
      const aws = await companionClients(ctx, companion);
      try {
        const url = companionTemplateUrl(companion, file, ctx.settings.version);
        const stack = await readStack(aws.cloudFormation, companion.stackName);
        requireUpdatable(stack);
        const { token } = updateNames(stack.name, url);
        const follow = () => followUpdate(aws.cloudFormation, stack.name, token, { pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
        if (updateRunning(stack.status)) {
          await ctx.say(`${stack.name}: an update is already running (${stack.status}); following it`);
          await follow();
          return `${stack.name}: followed to UPDATE_COMPLETE`;
        }
        const template = await readTemplate(aws.cloudFormation, url);
        if (template.version && stack.version === template.version) return `${stack.name}: already at ${template.version}`;
        const plan = await prepareChangeSet(aws.cloudFormation, { stackName: stack.name, templateUrl: url, template, stack, pollMs: ctx.pollMs, timeoutMs: ctx.updateTimeoutMs, say: ctx.say });
        if (plan.empty) return `${stack.name}: already at its target template (no changes)`;
        await executeChangeSet(aws.cloudFormation, stack.name, plan);
        await follow();
        return `${stack.name}: UPDATE_COMPLETE with ${url}`;
      } finally {
        if (aws !== ctx.aws) aws.destroy();
      }
    },
  };
}

async function companionClients(ctx: VpcContext, companion: CompanionStack): Promise<AwsClients> {
  if (!companion.region && !companion.profile && !companion.assumeRoleArn) return ctx.aws;
  return createAwsClients(await awsSettingsFor(awsSettingsFromEnv(), { region: companion.region ?? ctx.settings.region, profile: companion.profile, assumeRoleArn: companion.assumeRoleArn }));
}
