import type * as pulumi from "@pulumi/pulumi";
import { UpgradeError } from "../../lib/errors";
import { partialFailure, providerMessage } from "../../lib/dynamicProvider";
import { createProgress } from "../../lib/progress";
import { connectRemote, type RemoteHost } from "../../lib/ssh";
import { runSteps } from "../../lib/steps";
import { parseImage } from "./composeFile";
import { deploymentOf, imageFileOf, readComposeFiles, restoreCommand, type Backup, type Deployment } from "./remote";
import { compareVersions, fingerprintOf, imageServices, parseServiceSettings, type UtilitarianSettings } from "./settings";
import { previousPath, upgradeSteps, type UpgradeContext } from "./steps";

/**
 * The UtilitarianService provider's work (resource.ts holds only a thin provider that loads this
 * module at call time, as a dynamic provider must).
 *
 * `check` validates the settings (errors name the key), refuses a downgrade (Django migrations
 * are forward-only: the hint names the backup to restore instead) and adds `imageChanges`, the
 * compose services whose image changes, so the preview shows them beside `version: A → B`.
 * `update` runs the runbook (steps.ts). Outputs: `version` (the last version the whole deployment
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

function strip(inputs: Inputs): Record<string, unknown> {
  const { imageChanges: _i, __provider: _p, ...raw } = inputs;
  return raw;
}

const changesOf = (s: UtilitarianSettings, from: string) => (from === s.version ? [] : imageServices(s).map((name) => `${name}: ${s.image.repository}:${from} → ${s.version}`));

export async function check(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult> {
  const parsed = parseServiceSettings(strip(news));
  if ("issues" in parsed) {
    return { inputs: news, failures: parsed.issues.map((i) => ({ property: i.key.split(/[.[]/)[0]!, reason: `${i.key}: ${i.message}` })) };
  }
  const target = parsed.settings.version;
  const from = typeof olds.version === "string" ? olds.version : undefined;
  if (from === undefined) return { inputs: { ...news, imageChanges: [] } };
  // A downgrade is refused by diff, which sees the state's outputs (the backup to name).
  if (compareVersions(target, from) < 0) return { inputs: { ...news, imageChanges: [] } };
  return { inputs: { ...news, imageChanges: changesOf(parsed.settings, from) } };
}

export async function diff(olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
  const parsed = parseServiceSettings(strip(news));
  const from = typeof olds.version === "string" ? olds.version : undefined;
  if ("settings" in parsed && from !== undefined && compareVersions(parsed.settings.version, from) < 0) {
    throw new Error(downgradeRefusal(parsed.settings, from, (olds.backup as Backup | null | undefined) ?? null));
  }
  const fingerprint = "settings" in parsed ? fingerprintOf(parsed.settings) : undefined;
  return { changes: olds.version !== news.version || fingerprint !== olds.fingerprint, replaces: [], deleteBeforeReplace: false };
}

/** Django migrations are forward-only: the way back is the backup the last upgrade took. */
function downgradeRefusal(s: UtilitarianSettings, from: string, backup: Backup | null): string {
  const restore = backup
    ? `to go back, restore the backup taken before the upgrade to ${from}: ${backup.path} (${restoreCommand(s, backup.path)}), then run the old image`
    : `to go back, restore the database from a backup taken before the upgrade to ${from}, then run the old image`;
  return `Utilitarian ${from} → ${s.version} is a downgrade, which Django's forward-only migrations do not allow; ${restore}`;
}

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

function settingsOf(inputs: Inputs): UtilitarianSettings {
  const parsed = parseServiceSettings(strip(inputs));
  if ("issues" in parsed) {
    throw new UpgradeError({ what: "read the Utilitarian settings", why: parsed.issues.map((i) => `${i.key}: ${i.message}`).join("; "), permanent: true });
  }
  return parsed.settings;
}

async function converge(id: string, settings: UtilitarianSettings, stateVersion: string | undefined, lastBackup: Backup | null, provider: unknown): Promise<ServiceOutputs> {
  const { info } = createProgress(`utilitarian ${settings.version}`);
  const outputs = (version: string, backup: Backup | null, from: string): ServiceOutputs => ({
    version,
    backup,
    imageChanges: changesOf(settings, from),
    fingerprint: fingerprintOf(settings),
  });
  let host: RemoteHost | undefined;
  try {
    host = await connectRemote(
      { host: settings.ssh.host, port: settings.ssh.port, username: settings.ssh.user, privateKey: settings.ssh.privateKey, knownHostsPath: settings.ssh.knownHostsPath },
      { name: `${settings.ssh.user}@${settings.ssh.host}${settings.ssh.port ? `:${settings.ssh.port}` : ""}`, commandTimeoutMs: settings.deadlines.commandSeconds * 1000 },
    );
    const d = deploymentOf(host, settings);
    const from = stateVersion ?? (await runningVersion(d));
    if (compareVersions(settings.version, from) < 0) throw new Error(downgradeRefusal(settings, from, lastBackup));
    if (from === settings.version) {
      await info(`already at ${from}`);
      return outputs(from, lastBackup, from);
    }
    await info(`plan: ${from} → ${settings.version}`);
    const ctx: UpgradeContext = { d, from, to: settings.version, info };
    const outcome = await runSteps(upgradeSteps(), ctx, { dryRun: false, emit: (event) => void reportStep(event, info) });
    if (outcome.failure !== undefined) {
      throw partialFailure(id, outputs(from, ctx.backup ?? lastBackup, from), provider, failureMessage(ctx, outcome.failure));
    }
    return outputs(settings.version, ctx.backup ?? null, from);
  } catch (err) {
    if (err instanceof UpgradeError) throw new Error(providerMessage(err));
    throw err;
  } finally {
    host?.close();
  }
}

/** The version the compose file names for the API (a deployment adopted by a new resource). */
async function runningVersion(d: Deployment): Promise<string> {
  const files = await readComposeFiles(d);
  const image = imageFileOf(files, d.settings.services.api)?.image(d.settings.services.api);
  const tag = image === undefined ? undefined : parseImage(image).tag;
  if (!tag || !/^\d+\.\d+\.\d+$/.test(tag)) {
    throw new UpgradeError({
      what: "read the running Utilitarian version",
      why: image === undefined ? `${d.settings.services.api} has no image in ${d.files.join(", ")}` : `${d.settings.services.api} runs ${image}, not a release tag`,
      hint: "check services.api and compose.files",
      exitCode: 2,
      permanent: true,
    });
  }
  return tag;
}

async function reportStep(event: import("../../lib/events").UpgradeEvent, info: (m: string) => Promise<void>): Promise<void> {
  if (event.type !== "step-end") return;
  const outcome = event.status === "failed" ? `failed: ${event.error}` : event.status === "skipped" ? `skipped (${event.note})` : `done${event.note ? ` (${event.note})` : ""}`;
  await info(`${event.step} ${outcome} [${(event.durationMs / 1000).toFixed(1)}s]`.replace(/\s*\n\s*/g, " "));
}

/** What the operator needs after a failed run: what runs now, the verified backup and how to restore it. */
function failureMessage(ctx: UpgradeContext, failure: unknown): string {
  const s = ctx.d.settings;
  const head = `Utilitarian upgrade ${ctx.from} → ${ctx.to} stopped; the completed version stays ${ctx.from}`;
  const backup = ctx.backup ? ` Verified backup: ${ctx.backup.path} (sha256 ${ctx.backup.sha256}); to restore it: ${restoreCommand(s, ctx.backup.path)}, and put back ${previousPath(ctx.imageFile?.label ?? ctx.d.files[0]!, ctx.from)}.` : "";
  if (ctx.failedMigration !== undefined) {
    return `${head}: migration ${ctx.failedMigration} failed (${providerMessage(failure)}). The API runs ${s.image.repository}:${ctx.to}, the beat, workers and dependents are stopped. Fix the data and run \`up\` again (it resumes at migrate), or restore.${backup}`;
  }
  return `${head}: ${providerMessage(failure)}.${backup}`;
}
