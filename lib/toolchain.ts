import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UpgradeError } from "./errors";
import { compareParts, releaseParts } from "./versions";

/**
 * Where scripts/provision.sh puts the tools it provides; scripts/lib.sh computes the same paths.
 * Kept outside the checkout so every clone on a machine (and CI) reuses one build.
 */
export function toolchainCache(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.UPGRADE_ORCHESTRATOR_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "upgrade-orchestrator")
  );
}

/** The version of the @pulumi/pulumi SDK this process loads. */
export function pulumiSdkVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("@pulumi/pulumi/package.json") as { version: string }).version;
}

export interface PulumiInstall {
  /** The directory holding bin/pulumi, as PulumiCommand.get({ root }) expects. */
  root: string;
  binDir: string;
  /** The CLI's version (at or above the SDK's). */
  version: string;
  source: "PATH" | "cache";
}

/**
 * The Pulumi CLI for the SDK: `pulumi` on PATH when it is at least the SDK's version (the
 * Automation API's own rule), else the toolchain cache (scripts/provision-pulumi.sh): the build of
 * the SDK's own version, or else the oldest cached build newer than it. Throws with a hint when
 * there is none. Runs `pulumi version` on a CLI found on PATH (the bed's own calls); a run of the
 * driver uses `pulumiCommand`, which asks each CLI its version once per process.
 */
export function findPulumi(env: NodeJS.ProcessEnv = process.env): PulumiInstall {
  const onPath = whichPulumi(env);
  const pathVersion = onPath ? pulumiVersionOf(onPath) : undefined;
  if (onPath && pathVersion && compareVersions(pathVersion, pulumiSdkVersion()) >= 0) return pathInstall(onPath, pathVersion);
  return cachedInstall(env) ?? noPulumi(env, onPath, pathVersion);
}

/** What the Automation API runs the CLI through, and which install that is. */
export interface PulumiCli {
  command: import("@pulumi/pulumi/automation/cmd").PulumiCommand;
  install: PulumiInstall;
}

const pulumiClis = new Map<string, Promise<PulumiCli>>();

/**
 * `findPulumi`'s choice as the Automation API's `PulumiCommand`, made once per process for a given
 * PATH and cache: each `PulumiCommand.get` runs `pulumi version`, and a CLI start costs a few hundred
 * milliseconds (a fleet or a test file would otherwise pay it for every stack).
 */
export function pulumiCommand(env: NodeJS.ProcessEnv = process.env): Promise<PulumiCli> {
  const key = `${env.PATH ?? ""}\0${toolchainCache(env)}`;
  let found = pulumiClis.get(key);
  if (!found) {
    found = choosePulumiCommand(env);
    found.catch(() => pulumiClis.delete(key));
    pulumiClis.set(key, found);
  }
  return found;
}

/**
 * The Automation API's `PulumiCommand` from its own module (20 ms to load) rather than from the
 * API's index (0.3–0.5 s: it loads the whole SDK runtime), and synchronously: `PulumiCommand.get`
 * starts `pulumi version` at once, so the CLI runs while the caller loads the rest of the API.
 */
function loadPulumiCommand(): typeof import("@pulumi/pulumi/automation/cmd").PulumiCommand {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("@pulumi/pulumi/automation/cmd") as typeof import("@pulumi/pulumi/automation/cmd")).PulumiCommand;
}

async function choosePulumiCommand(env: NodeJS.ProcessEnv): Promise<PulumiCli> {
  const PulumiCommand = loadPulumiCommand();
  const onPath = whichPulumi(env);
  let pathVersion: string | undefined;
  if (onPath) {
    const install = pathInstall(onPath, "0.0.0");
    // the Automation API's own `pulumi version` call doubles as ours
    const command = await PulumiCommand.get({ root: install.root, skipVersionCheck: true }).catch(() => undefined);
    pathVersion = command?.version?.toString();
    if (command && pathVersion && compareVersions(pathVersion, pulumiSdkVersion()) >= 0) return { command, install: { ...install, version: pathVersion } };
  }
  const install = cachedInstall(env) ?? noPulumi(env, onPath, pathVersion);
  return { command: await PulumiCommand.get({ root: install.root }), install };
}

/**
 * The directory of the CLI `pulumiCommand` tries first (PATH's, else the cache's), found without
 * starting it: a caller may start its own reads with it while the version check runs, and must
 * compare it with the install `pulumiCommand` chose.
 */
export function likelyPulumiBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const onPath = whichPulumi(env);
  return onPath ? path.dirname(onPath) : cachedInstall(env)?.binDir;
}

function pathInstall(bin: string, version: string): PulumiInstall {
  const binDir = path.dirname(bin);
  return { root: path.dirname(binDir), binDir, version: version.replace(/^v/, ""), source: "PATH" };
}

function cachedInstall(env: NodeJS.ProcessEnv): PulumiInstall | undefined {
  const version = pulumiSdkVersion();
  const cache = path.join(toolchainCache(env), "pulumi");
  const built = (fs.existsSync(cache) ? fs.readdirSync(cache) : [])
    .filter((d) => /^v\d+\.\d+\.\d+$/.test(d) && fs.existsSync(path.join(cache, d, "bin", ".complete")))
    .map((d) => d.slice(1))
    .filter((v) => compareVersions(v, version) >= 0)
    .sort(compareVersions);
  const chosen = built.includes(version) ? version : built[0];
  if (chosen === undefined) return undefined;
  const root = path.join(cache, `v${chosen}`);
  return { root, binDir: path.join(root, "bin"), version: chosen, source: "cache" };
}

function noPulumi(env: NodeJS.ProcessEnv, onPath: string | undefined, pathVersion: string | undefined): never {
  const version = pulumiSdkVersion();
  const cache = path.join(toolchainCache(env), "pulumi");
  throw new UpgradeError({
    what: `find a Pulumi CLI for the SDK v${version}`,
    why: onPath ? `${onPath} is ${pathVersion ?? "of unknown version"}, older than the SDK, and ${cache} has no build at or above v${version}` : `no pulumi (with pulumi-language-nodejs beside it) on PATH, and ${cache} has no build at or above v${version}`,
    hint: `run \`npm run provision\` (builds it into the cache), or put pulumi >= v${version} on PATH`,
    permanent: true,
  });
}

/** Compares dotted numeric versions ("3.248.0"); pre-release suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  return compareParts(releaseParts(a) ?? [], releaseParts(b) ?? []);
}

function whichPulumi(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "pulumi");
    if (dir && fs.existsSync(candidate) && fs.existsSync(path.join(dir, "pulumi-language-nodejs"))) return candidate;
  }
  return undefined;
}

function pulumiVersionOf(bin: string): string | undefined {
  try {
    return execFileSync(bin, ["version"], { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

/** The Python virtualenv holding moto (and later Alembic, Django). */
export function pythonVenv(env: NodeJS.ProcessEnv = process.env): string {
  const venv = path.join(toolchainCache(env), "venv");
  if (!fs.existsSync(path.join(venv, "bin", "moto_server"))) {
    throw new UpgradeError({
      what: "find the test bed's Python tools",
      why: `${venv}/bin/moto_server does not exist`,
      hint: "run `npm run provision`",
      permanent: true,
    });
  }
  return venv;
}

/** This package's version (from its package.json, found from source or from dist/). */
export function packageVersion(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, "package.json");
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "upgrade-orchestrator") return pkg.version ?? "unknown";
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}
