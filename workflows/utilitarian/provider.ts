import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { UpgradeError } from "../../lib/errors";
import { asProviderErrors, inPlaceDiff, partialFailure, providerMessage, providerSettings, stepOutcome } from "../../lib/dynamicProvider";
import { createProgress } from "../../lib/progress";
import { connectRemote, type RemoteHost } from "../../lib/ssh";
import { runSteps, type StepsOutcome } from "../../lib/steps";
import { parseImage } from "./composeFile";
import { openDeployment, readDeployment } from "./deployment";
import { chooseTag } from "./registry";
import { containers, describeContainers, hostVersion, restoreCommand, type Backup, type HostVersion } from "./remote";
import { bareVersion, compareVersions, fingerprintOf, imageServices, isRelease, parseServiceSettings, sameVersion, type UtilitarianSettings } from "./settings";
import { previousPath, upgradeSteps, type UpgradeContext } from "./runbook";

/**
 * The UtilitarianService provider's work (resource.ts holds only a thin provider that loads this
 * module at call time, as a dynamic provider must).
 *
 * `check` validates the settings (errors name the key) and adds `imageChanges`, the compose
 * services whose image changes, so the preview shows them beside `version: A → B`. `diff`, when
 * the version changes, reads the version the host runs over SSH (a short deadline) and refuses a
 * downgrade against it (Django migrations are forward-only: the message names the backup to
 * restore instead); where the host differs from the state it says so in the preview.
 * `update` runs the runbook (runbook.ts). Outputs: `version` (the last version the whole deployment
 * completed: after a failure, the old one), `backup` (path and sha256 of the verified backup the
 * last upgrade took), `imageChanges`, `fingerprint`.
 */
export interface ServiceOutputs {
  version: string;
  backup: Backup | null;
  imageChanges: string[];
  fingerprint: string;
}

type Inputs = Record<string, unknown> & { version?: string };

const serviceSettings = providerSettings("Utilitarian settings", parseServiceSettings, ["imageChanges"]);

const changesOf = (s: UtilitarianSettings, from: string) => (sameVersion(from, s.version) ? [] : imageServices(s).map((name) => `${name}: ${s.image.repository}:${from} → ${s.version}`));

export async function check(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult> {
  const parsed = serviceSettings.check(news);
  if ("failed" in parsed) return parsed.failed;
  const target = parsed.settings.version;
  const from = typeof olds.version === "string" ? olds.version : undefined;
  if (from === undefined) return { inputs: { ...news, imageChanges: [] } };
  // A downgrade is refused by diff, which sees the state's outputs (the backup to name).
  if (compareVersions(target, from) < 0) return { inputs: { ...news, imageChanges: [] } };
  return { inputs: { ...news, imageChanges: changesOf(parsed.settings, from) } };
}

/**
 * The preview's look at the host, when the version changes: connects (deadlines.previewSeconds),
 * reads the version the host runs, refuses a downgrade against it, and says so when it differs
 * from the state's last completed version. Done here rather than in check, because diff gets the
 * state's outputs (the completed version, the backup), where check gets the old inputs only,
 * which after a failed run already hold the target.
 */
export async function diff(olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
  const settings = serviceSettings.tryRead(news);
  const from = typeof olds.version === "string" ? olds.version : undefined;
  if (settings && from !== undefined && !sameVersion(settings.version, from)) {
    await previewAgainstHost(settings, from, (olds.backup as Backup | null | undefined) ?? null);
  }
  const fingerprint = settings && fingerprintOf(settings);
  return inPlaceDiff(!sameVersion(olds.version, news.version) || fingerprint !== olds.fingerprint);
}

async function previewAgainstHost(settings: UtilitarianSettings, stateVersion: string, lastBackup: Backup | null): Promise<void> {
  const { info, warn } = createProgress(`utilitarian ${settings.version}`);
  const seconds = settings.deadlines.previewSeconds;
  let host: RemoteHost | undefined;
  return asProviderErrors(async () => {
    const where = hostName(settings);
    host = await connectRemote(sshTargetOf(settings, seconds * 1000), { name: where, commandTimeoutMs: seconds * 1000, retries: 0 }).catch((err) => {
      throw new UpgradeError({
        what: `read the version ${where} runs (the preview of ${stateVersion} → ${settings.version})`,
        why: err instanceof UpgradeError ? err.why : (err as Error).message,
        hint: `check ssh.host, ssh.port and that the host is up: the preview reads the running version before it plans an upgrade (deadline deadlines.previewSeconds: ${seconds}s); nothing was changed`,
      });
    });
    const d = await openDeployment(host, settings);
    const seen = await hostVersion(d);
    const plan = planFrom(settings, stateVersion, seen);
    const running = describeContainers(seen.containers, imageServices(settings));
    if ("downgradeFrom" in plan) throw new Error(downgradeRefusal(settings, plan.downgradeFrom, lastBackup, stateVersion));
    const atTarget = sameVersion(plan.from, settings.version);
    // Where the version lives, in the tag form the deployment uses (up asks the registry which form it has).
    const lives = atTarget ? undefined : (await readDeployment(d, chooseTag(settings.version, seen.file, undefined, settings.image.repository).tag)).plan;
    await info(`the host runs ${seen.file} (its compose file; ${running}): ${atTarget ? "nothing to upgrade" : `plan ${plan.from} → ${settings.version}; ${lives!.edits.size > 0 ? lives!.change : `${lives!.where} already names the target`}`}`);
    if (!sameVersion(seen.file, stateVersion)) {
      const why =
        sameVersion(plan.from, stateVersion)
          ? `an upgrade to ${seen.file} was interrupted: up resumes it`
          : sameVersion(plan.from, settings.version)
            ? `changed outside this stack, e.g. rolled back by restoring a backup: up records ${plan.from} and changes nothing`
            : `changed outside this stack: the upgrade starts from ${plan.from}`;
      await warn(`the host runs ${seen.file}, the state's last completed version is ${stateVersion} (${why})`);
    }
  }).finally(() => host?.close());
}

/**
 * Where an upgrade to the target starts, from the state's last completed version and what the
 * host runs (pure). Django migrations are forward-only, so a target below the newest version the
 * host names or runs is a downgrade. An upgrade from the state's version starts there, also when
 * the compose file already names the target (an interrupted run resumes); a host changed outside
 * the stack (rolled back by restoring the backup, or upgraded by hand) is taken as it is.
 */
export function planFrom(settings: UtilitarianSettings, stateVersion: string | undefined, host: HostVersion): { from: string } | { downgradeFrom: string } {
  const target = settings.version;
  const tags = host.containers
    .filter((c) => c.state === "running" && imageServices(settings).includes(c.service))
    .map((c) => parseImage(c.image))
    .filter((ref) => ref.repository === settings.image.repository && isRelease(ref.tag))
    .map((ref) => ref.tag);
  const newest = [host.file, ...tags].reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
  if (compareVersions(target, newest) < 0) return { downgradeFrom: newest };
  if (stateVersion !== undefined && compareVersions(target, stateVersion) > 0 && (sameVersion(host.file, stateVersion) || sameVersion(host.file, target))) return { from: stateVersion };
  return { from: host.file };
}

/** Django migrations are forward-only: the way back is the backup taken before the upgrade to `running`. */
export function downgradeRefusal(s: UtilitarianSettings, running: string, backup: Backup | null, stateVersion?: string): string {
  const ofThat = backup && path.posix.basename(backup.path).includes(`-to-${running}-`) ? backup : null;
  const restore = ofThat
    ? `to go back, restore the backup taken before the upgrade to ${running}: ${ofThat.path} (${restoreCommand(s, ofThat.path)}), then run the old image`
    : `to go back, restore the database from a backup taken before the upgrade to ${running}, then run the old image`;
  const state = stateVersion !== undefined && stateVersion !== running ? ` (the host runs ${running}; the state's last completed version is ${stateVersion})` : "";
  return `Utilitarian ${running} → ${s.version} is a downgrade${state}, which Django's forward-only migrations do not allow; ${restore}`;
}

const hostName = (s: UtilitarianSettings) => `${s.ssh.user}@${s.ssh.host}${s.ssh.port ? `:${s.ssh.port}` : ""}`;
const sshTargetOf = (s: UtilitarianSettings, readyTimeoutMs?: number) => ({
  host: s.ssh.host,
  port: s.ssh.port,
  username: s.ssh.user,
  privateKey: s.ssh.privateKey,
  knownHostsPath: s.ssh.knownHostsPath,
  readyTimeoutMs,
});

/** Adopts a running deployment: reads the version its compose file names, upgrades when the target is newer. */
export async function create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
  const settings = settingsOf(inputs);
  const id = `utilitarian:${settings.ssh.user}@${settings.ssh.host}:${settings.ssh.port ?? 22}:${settings.compose.projectDir}`;
  return { id, outs: await converge(id, settings, undefined, null, inputs.__provider) };
}

export async function update(id: string, olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
  const settings = settingsOf(news);
  const from = typeof olds.version === "string" ? olds.version : undefined;
  return { outs: await converge(id, settings, from, (olds.backup as Backup | null | undefined) ?? null, news.__provider) };
}

const settingsOf = (inputs: Inputs): UtilitarianSettings => serviceSettings.read(inputs);

async function converge(id: string, settings: UtilitarianSettings, stateVersion: string | undefined, lastBackup: Backup | null, provider: unknown): Promise<ServiceOutputs> {
  const { info } = createProgress(`utilitarian ${settings.version}`);
  const outputs = (version: string, backup: Backup | null, from: string): ServiceOutputs => ({
    version,
    backup,
    imageChanges: changesOf(settings, from),
    fingerprint: fingerprintOf(settings),
  });
  let host: RemoteHost | undefined;
  return asProviderErrors(async () => {
    host = await connectRemote(sshTargetOf(settings), { name: hostName(settings), commandTimeoutMs: settings.deadlines.commandSeconds * 1000 });
    const d = await openDeployment(host, settings);
    const plan = planFrom(settings, stateVersion, await hostVersion(d));
    if ("downgradeFrom" in plan) throw new Error(downgradeRefusal(settings, plan.downgradeFrom, lastBackup, stateVersion));
    const from = bareVersion(plan.from);
    if (sameVersion(from, settings.version)) {
      await info(`already at ${from}`);
      return outputs(settings.version, lastBackup, settings.version);
    }
    await info(`plan: ${from} → ${settings.version} (compose files ${d.files.join(", ")}, found by ${d.found})`);
    const ctx: UpgradeContext = { d, from, to: bareVersion(settings.version), info, fromTag: from, toTag: bareVersion(settings.version), where: "", edits: new Map() };
    const outcome = await runSteps(upgradeSteps, ctx, { dryRun: false, emit: (event) => void reportStep(event, info) });
    if (outcome.failure !== undefined) {
      const failedStep = outcome.records.find((r) => r.status === "failed")?.step ?? "(unknown)";
      throw partialFailure(id, outputs(from, ctx.backup ?? lastBackup, from), provider, await failureMessage(ctx, failedStep, outcome));
    }
    return outputs(settings.version, ctx.backup ?? null, from);
  }).finally(() => host?.close());
}

async function reportStep(event: import("../../lib/events").UpgradeEvent, info: (m: string) => Promise<void>): Promise<void> {
  const outcome = stepOutcome(event);
  if (outcome !== undefined && event.type === "step-end") await info(`${event.step} ${outcome} [${(event.durationMs / 1000).toFixed(1)}s]`);
}

/** What the operator needs after a failed run: the step, what runs now, the verified backup and how to restore it. */
async function failureMessage(ctx: UpgradeContext, step: string, outcome: StepsOutcome): Promise<string> {
  const s = ctx.d.settings;
  const head = `Utilitarian upgrade ${ctx.from} → ${ctx.to} stopped at step ${step}; the completed version stays ${ctx.from}`;
  // What runs now, as the host says (best effort: the message must not fail for want of it).
  const now = await containers(ctx.d)
    .then((all) => ` Services now: ${describeContainers(all, [...imageServices(s), ...s.services.dependents])}.`)
    .catch(() => "");
  const migrated = outcome.records.some((r) => r.step === "migrate" && r.status !== "failed") ? " The migrations are applied." : "";
  const backup = ctx.backup ? ` Verified backup: ${ctx.backup.path} (sha256 ${ctx.backup.sha256}); to restore it: ${restoreCommand(s, ctx.backup.path)}, and put back ${(ctx.rewritten ?? []).map((f) => previousPath(f, ctx.from)).join(" and ") || `any file kept as <file>.before-${ctx.from} beside the compose and env files`}.` : "";
  if (ctx.failedMigration !== undefined) {
    return `${head}: migration ${ctx.failedMigration} failed (${providerMessage(outcome.failure)}).${now} Fix the data and run \`up\` again (it resumes at migrate), or restore.${backup}`;
  }
  return `${head}: ${providerMessage(outcome.failure)}.${now}${migrated}${backup}`;
}
