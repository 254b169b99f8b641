import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { awsSettingsFor, awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { ExitCode, UpgradeError } from "../../lib/errors";
import { inPlaceDiff, providerMessage, providerSettings, stepOutcome } from "../../lib/dynamicProvider";
import { createProgress } from "../../lib/progress";
import { runSteps } from "../../lib/steps";
import { BACKUP_TEMPLATE, judgeVersions, ROLE_TEMPLATE, sameVersion, statusHint, templateUrlFor, updatableStatus, updateRunning, withV } from "./plan";
import { companionTemplateUrl, discardUnexecuted, vpcRunbook, type VpcContext } from "./runbook";
import { parseVpcSettings, type VpcSettings } from "./settings";
import { readStack, readTemplate } from "./stacks";

/**
 * The CodeOceanVpc provider's work (resource.ts holds only the thin provider that loads this
 * module at call time). `check` (preview) validates the settings, reads the stacks and the new
 * template and refuses what the update must not do; it adds `plannedStacks`, the stacks `up` will
 * touch in order. `create` adopts the deployment (and upgrades it when the target is newer);
 * `update` performs runbook 2 (runbook.ts).
 */
export interface VpcOutputs {
  /** The version of the primary stack's template after the last run. */
  version: string;
  plannedStacks: string[];
  stackId: string;
  templateUrl: string;
  fingerprint: string;
}

type Inputs = Record<string, unknown> & { version?: string; plannedStacks?: string[] };
const vpcSettings = providerSettings("Code Ocean VPC settings", parseVpcSettings, ["plannedStacks"]);
const strip = vpcSettings.strip;

export async function check(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult> {
  const parsed = vpcSettings.check(news);
  if ("failed" in parsed) return parsed.failed;
  const settings = parsed.settings;
  // The stacks `up` will touch, shown by the preview when the version changes (`3.8.2` and `v3.8.2` are one version).
  const plannedStacks = olds.version !== undefined && !sameVersion(olds.version, settings.version) ? stacksInOrder(settings) : [];
  // Nothing asked to change: no reason to read AWS at every preview. The version stays as the template writes it.
  const unversioned = (i: Inputs) => JSON.stringify(strip({ ...i, version: undefined }));
  if (olds.version !== undefined && sameVersion(olds.version, settings.version) && unversioned(olds) === unversioned(news)) return { inputs: { ...news, version: olds.version, plannedStacks } };
  const failures: pulumi.dynamic.CheckFailure[] = [];
  let written = settings.version;
  const aws = await clientsFor(settings);
  try {
    const stack = await readStack(aws.cloudFormation, settings.stackName);
    if (!updatableStatus(stack.status) && !updateRunning(stack.status)) {
      failures.push({ property: "stackName", reason: `refused: the stack ${stack.name} is in ${stack.status}; ${statusHint(stack.status, stack.name)}` });
    }
    const templateUrl = settings.templateUrl ?? templateUrlFor(settings.version);
    const template = await readTemplate(aws.cloudFormation, templateUrl);
    if (template.version !== undefined && !sameVersion(template.version, settings.version)) {
      failures.push({ property: "templateUrl", reason: `the template ${templateUrl} is version ${template.version}, not ${settings.version}` });
    } else if (template.version !== undefined) {
      // Shown and kept as the template writes it (its Metadata: `v3.8.2`), whichever way the setting does.
      written = template.version;
    }
    if (!stack.version) {
      failures.push({ property: "stackName", reason: `the stack ${stack.name} has no CodeOcean::VersionInfo metadata: is it a Code Ocean VPC stack?` });
    } else {
      const verdict = judgeVersions(stack.version, written);
      if (!verdict.ok) failures.push({ property: "version", reason: `refused: ${verdict.why}; what to do: ${verdict.hint}` });
    }
    for (const [which, companion, file] of [["roleStack", settings.roleStack, ROLE_TEMPLATE], ["backupStack", settings.backupStack, BACKUP_TEMPLATE]] as const) {
      if (!companion) continue;
      const other = await clientsFor(settings, companion);
      try {
        const s = await readStack(other.cloudFormation, companion.stackName);
        if (!updatableStatus(s.status) && !updateRunning(s.status)) failures.push({ property: which, reason: `refused: the ${which} ${s.name} is in ${s.status}; ${statusHint(s.status, s.name)}` });
        await readTemplate(other.cloudFormation, companionTemplateUrl(companion, file, settings.version));
      } catch (err) {
        failures.push({ property: which, reason: `${which}: ${providerMessage(err)}` });
      } finally {
        other.destroy();
      }
    }
  } catch (err) {
    failures.push({ property: "stackName", reason: providerMessage(err) });
  } finally {
    aws.destroy();
  }
  return failures.length > 0 ? { inputs: news, failures } : { inputs: { ...news, version: written, plannedStacks } };
}

/** `olds` are the outputs in the state: the version reached and the fingerprint of the settings. */
export async function diff(olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
  const settings = vpcSettings.tryRead(news);
  const fingerprint = settings && fingerprintOf(settings);
  // A version change is the runbook, an in-place update; never a replacement.
  return inPlaceDiff(!sameVersion(olds.version as string | undefined, news.version) || olds.fingerprint !== fingerprint);
}

export async function create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
  const outs = await converge(settingsOf(inputs));
  return { id: `codeocean-vpc:${outs.stackId}`, outs };
}

export async function update(_id: string, _olds: Inputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
  return { outs: await converge(settingsOf(news)) };
}

const settingsOf = (inputs: Inputs): VpcSettings => vpcSettings.read(inputs);

export function stacksInOrder(settings: VpcSettings): string[] {
  return [
    ...(settings.roleStack ? [`role ${settings.roleStack.stackName}`] : []),
    ...(settings.backupStack ? [`backup ${settings.backupStack.stackName}`] : []),
    `primary ${settings.stackName}`,
  ];
}

async function clientsFor(settings: VpcSettings, other?: { region?: string; profile?: string; assumeRoleArn?: string }): Promise<AwsClients> {
  const target = other ?? settings;
  return createAwsClients(await awsSettingsFor(awsSettingsFromEnv(), { region: target.region ?? settings.region, profile: target.profile, assumeRoleArn: target.assumeRoleArn }));
}

/** Runs runbook 2 against the deployment; every step checks the world first, so a re-run resumes. */
/**
 * What decides the update, as a digest kept in the state: a changed stack, template or parameter is
 * an update; the maintenance hooks (which may hold tokens) are left out, so a rotated token is not.
 */
export function fingerprintOf(settings: VpcSettings): string {
  const { maintenance: _m, version, ...others } = settings;
  const rest = { ...others, version: withV(version) };
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sorted(x)])) : v;
  return createHash("sha256").update(JSON.stringify(sorted(rest))).digest("hex").slice(0, 16);
}

async function converge(settings: VpcSettings): Promise<VpcOutputs> {
  const { info } = createProgress(`codeocean-vpc ${settings.stackName} → ${settings.version}`);
  const aws = await clientsFor(settings);
  let ctx: VpcContext | undefined;
  try {
    const templateUrl = settings.templateUrl ?? templateUrlFor(settings.version);
    const stack = await readStack(aws.cloudFormation, settings.stackName);
    if (!updatableStatus(stack.status) && !updateRunning(stack.status)) {
      throw new UpgradeError({ what: `update ${stack.name}`, why: `the stack is in ${stack.status}`, hint: statusHint(stack.status, stack.name), exitCode: ExitCode.Refused, permanent: true });
    }
    const template = await readTemplate(aws.cloudFormation, templateUrl);
    if (stack.version && !updateRunning(stack.status)) {
      const verdict = judgeVersions(stack.version, template.version ?? settings.version);
      if (!verdict.ok) throw new UpgradeError({ what: `upgrade ${stack.name}`, why: verdict.why, hint: verdict.hint, exitCode: ExitCode.Refused, permanent: true });
    }
    await info(`plan: review ${stacksInOrder(settings).join(", ")}; then maintenance mode; then update ${stacksInOrder(settings).join(" → ")}; ${stack.name} at ${stack.version ?? "?"} (${stack.status}), target ${settings.version} (${templateUrl})`);
    ctx = {
      settings,
      aws,
      templateUrl,
      template,
      stack,
      companions: {},
      unexecuted: [],
      maintenanceAsked: false,
      maintenanceOn: false,
      startedAtTarget: !updateRunning(stack.status) && sameVersion(stack.version, settings.version),
      pollMs: (settings.deadlines?.pollSeconds ?? 15) * 1000,
      updateTimeoutMs: (settings.deadlines?.stackUpdateSeconds ?? 7200) * 1000,
      say: info,
    };
    const outcome = await runSteps(vpcRunbook, ctx, {
      dryRun: false,
      emit: (event) => {
        const outcome = stepOutcome(event);
        if (outcome !== undefined && event.type === "step-end") void info(`${event.step} ${outcome} [${(event.durationMs / 1000).toFixed(1)}s]`);
      },
    });
    if (outcome.failure !== undefined) throw outcome.failure;
    return { version: ctx.stack.version ?? settings.version, plannedStacks: ctx.startedAtTarget ? [] : stacksInOrder(settings), stackId: ctx.stack.stackId, templateUrl, fingerprint: fingerprintOf(settings) };
  } catch (err) {
    let left = "";
    if (ctx) {
      // A refused or failed run leaves no reviewed change set behind for someone to execute by hand.
      const { deleted, left: kept } = await discardUnexecuted(ctx);
      if (deleted.length > 0) left += `; the change sets this run reviewed and did not execute were deleted (${deleted.join(", ")})`;
      if (kept.length > 0) left += `; could not delete the change sets ${kept.join(", ")}: delete them in the console`;
      if (ctx.maintenanceOn) left += "; maintenance mode is left on: turn it off in the admin panel (System Maintenance → Disable) once the stack is healthy";
      else if (ctx.maintenanceAsked) left += "; maintenance mode was asked for but not verified: check the admin panel, and turn it off there if the deployment should stay in service until the next try";
    }
    throw new Error(providerMessage(err) + left);
  } finally {
    aws.destroy();
  }
}

