import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { lastLines, shq, type RemoteHost } from "../../lib/ssh";
import { parseImage, readComposeFile, type ComposeFile } from "./composeFile";
import { discoverComposeFiles, listCandidatesScript } from "./discovery";
import { parseEnvFile } from "./interpolation";
import { imageServices, isRelease, type UtilitarianSettings } from "./settings";
import { planVersion, type ComposeModel, type EnvFileText, type VersionPlan } from "./versionSource";

/**
 * The deployment on the host as Compose sees it: which compose and env files it reads (found as
 * Compose finds them), the compose command line for them, and the model `docker compose config`
 * resolves from them (the authority on what each service runs). Over SSH; read-only.
 */
export interface Deployment {
  readonly host: RemoteHost;
  readonly settings: UtilitarianSettings;
  /** Absolute paths of the compose files on the host, in Compose's order. */
  readonly files: string[];
  /** How they were found ("compose.files", "COMPOSE_FILE of .env", "Compose's default names"). */
  readonly found: string;
  /** The env files Compose reads for interpolation (absolute; the default `.env` only if it exists). */
  readonly envFiles: string[];
}

const readText = async (host: RemoteHost, file: string, what: string, hint: string): Promise<string> => {
  // base64: the SSH client trims output, and the file must come back byte for byte
  const result = await host.exec(`base64 -w0 < ${shq(file)}`);
  if (result.code !== 0) throw new UpgradeError({ what: `${what} ${file}`, why: lastLines(result.stderr), hint, exitCode: 2, permanent: true });
  return Buffer.from(result.stdout.trim(), "base64").toString("utf8");
};

const exists = async (host: RemoteHost, file: string) => (await host.exec(`test -f ${shq(file)}`)).code === 0;

/** Finds the compose and env files of the deployment as Compose would. */
export async function openDeployment(host: RemoteHost, settings: UtilitarianSettings): Promise<Deployment> {
  const { projectDir } = settings.compose;
  const dotenvPath = path.posix.join(projectDir, ".env");
  const dotenv = (await exists(host, dotenvPath)) ? parseEnvFile(await readText(host, dotenvPath, "read", "check compose.projectDir")) : new Map();
  const listing = settings.compose.files ? "" : await host.run("list the compose files of the project", listCandidatesScript(projectDir, shq));
  const discovered = discoverComposeFiles({
    projectDir,
    files: settings.compose.files,
    invocationEnv: settings.compose.env,
    dotenv: new Map([...dotenv].map(([k, a]) => [k, a.value])),
    existing: listing.split("\n").map((l) => l.trim()).filter(Boolean),
  });
  const workingDir = path.posix.dirname(discovered.files[0]!);
  const defaultEnv = path.posix.join(workingDir, ".env");
  const envFiles = settings.compose.envFiles
    ? settings.compose.envFiles.map((f) => path.posix.resolve(projectDir, f))
    : (await exists(host, defaultEnv))
      ? [defaultEnv]
      : [];
  return { host, settings, files: discovered.files, found: discovered.how, envFiles };
}

export interface ComposeFilesOverride {
  /** Compose files to use instead of the deployment's (a candidate swapped in). */
  files?: string[];
  /** Env files to pass with --env-file instead (a candidate swapped in). */
  envFiles?: string[];
  /** Let Compose find the files itself (no -f, no --env-file): to check our discovery against it. */
  discover?: boolean;
}

/** The compose command line for these files (a file may be swapped for a candidate). */
export function composeCommand(d: Deployment, args: string[], o: ComposeFilesOverride = {}): string {
  const { compose } = d.settings;
  const env = Object.entries(compose.env).map(([k, v]) => `${k}=${shq(v)}`);
  const project = compose.project ? ["-p", shq(compose.project)] : [];
  const files = o.discover ? [] : (o.files ?? d.files);
  const envFiles = o.discover ? [] : (o.envFiles ?? (compose.envFiles ? d.envFiles : []));
  return [
    `cd ${shq(compose.projectDir)} &&`,
    ...(env.length > 0 ? ["env", ...env] : []),
    compose.command,
    ...project,
    ...files.flatMap((f) => ["-f", shq(f)]),
    ...envFiles.flatMap((f) => ["--env-file", shq(f)]),
    ...args.map(shq),
  ].join(" ");
}

export async function compose(d: Deployment, what: string, args: string[], options: ComposeFilesOverride & { timeoutMs?: number } = {}): Promise<string> {
  return d.host.run(what, composeCommand(d, args, options), { timeoutMs: options.timeoutMs ?? d.settings.deadlines.commandSeconds * 1000 });
}

/** The compose files as they are on the host now. */
export async function readComposeFiles(d: Deployment): Promise<ComposeFile[]> {
  const files: ComposeFile[] = [];
  for (const file of d.files) files.push(readComposeFile(await readText(d.host, file, "read the compose file", `check compose.projectDir and compose.files (found by ${d.found})`), file));
  return files;
}

export async function readEnvFiles(d: Deployment): Promise<EnvFileText[]> {
  const out: EnvFileText[] = [];
  for (const file of d.envFiles) out.push({ path: file, text: await readText(d.host, file, "read the env file", "check compose.envFiles") });
  return out;
}

/** What `docker compose config` resolves: the authority on every service's image. */
export async function composeModel(d: Deployment, o: ComposeFilesOverride = {}): Promise<ComposeModel> {
  const out = await compose(d, "resolve the compose project (docker compose config)", ["config", "--format", "json"], o);
  return JSON.parse(out) as ComposeModel;
}

/** The deployment's files, env files and model, and where its version lives for the target tag. */
export interface DeploymentView {
  files: ComposeFile[];
  envFiles: EnvFileText[];
  model: ComposeModel;
  plan: VersionPlan;
}

export async function readDeployment(d: Deployment, toTag: string): Promise<DeploymentView> {
  const files = await readComposeFiles(d);
  const envFiles = await readEnvFiles(d);
  const model = await composeModel(d);
  const resolved = Object.fromEntries(imageServices(d.settings).map((s) => [s, model.services?.[s]?.image]));
  const plan = planVersion({ files, envFiles, invocationEnv: d.settings.compose.env, services: imageServices(d.settings), resolved, projectDir: d.settings.compose.projectDir }, toTag);
  return { files, envFiles, model, plan };
}

/** The services a configuration names that the model lacks: the mismatch message lists the real names and the settings. */
export function missingServices(d: Deployment, model: ComposeModel): UpgradeError | undefined {
  const s = d.settings.services;
  const all = Object.keys(model.services ?? {});
  const missing = [...imageServices(d.settings), ...s.dependents].filter((name) => !all.includes(name));
  if (missing.length === 0) return undefined;
  return new UpgradeError({
    what: "read the Utilitarian deployment",
    why: `the compose files ${d.files.join(", ")} (found by ${d.found}) have no service ${missing.join(", ")}; their services are ${all.join(", ")}`,
    hint: `set services.api (now ${s.api}), services.beat (${s.beat}), services.workers (${s.workers.join(", ")}) and services.dependents (${s.dependents.join(", ") || "none"}) to the names in the compose file (nothing was changed)`,
    exitCode: 2,
    permanent: true,
  });
}

/** The tag Compose resolves for the API: what the deployment is set to run. */
export async function apiTag(d: Deployment): Promise<{ tag: string; model: ComposeModel }> {
  await readComposeFiles(d); // a file that is not YAML is named as such, before Compose's own message
  const model = await composeModel(d);
  const api = d.settings.services.api;
  const missing = missingServices(d, model);
  if (missing) throw missing;
  const image = model.services?.[api]?.image;
  const tag = image === undefined ? undefined : parseImage(image).tag;
  if (!tag || !isRelease(tag)) {
    throw new UpgradeError({
      what: "read the version the Utilitarian host runs",
      why: image === undefined ? `${api} has no image in ${d.files.join(", ")}` : `${api} runs ${image} (as docker compose config resolves it), not a release tag`,
      hint: "check services.api and the compose files",
      exitCode: 2,
      permanent: true,
    });
  }
  return { tag, model };
}
