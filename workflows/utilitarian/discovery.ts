import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";

/**
 * Which compose files a `docker compose` in the project directory reads, as Compose (compose-go's
 * cli options) decides: the `-f` list (compose.files) first; else COMPOSE_FILE from the
 * invocation's environment or the project's `.env` (split on COMPOSE_PATH_SEPARATOR, default `:`);
 * else the first of compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in the
 * project directory or the nearest parent that has one, plus the first override file of the same
 * directory (compose.override.yml, compose.override.yaml, docker-compose.override.yml,
 * docker-compose.override.yaml). The read-deployment step checks the answer against Compose
 * itself (`config` without `-f` must equal `config` with these files). Pure.
 */
export const DEFAULT_FILE_NAMES = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
export const OVERRIDE_FILE_NAMES = ["compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"];

export interface DiscoveryInputs {
  projectDir: string;
  /** compose.files (the `-f` list), relative to projectDir or absolute. */
  files?: string[];
  /** The environment of the compose invocation (compose.env). */
  invocationEnv: Record<string, string>;
  /** The variables of the project's `.env` file. */
  dotenv: ReadonlyMap<string, string>;
  /** Existing files among the default names, in projectDir and its parents (absolute paths). */
  existing: string[];
}

export interface Discovered {
  files: string[];
  /** How they were found, for messages. */
  how: string;
}

export function discoverComposeFiles(inputs: DiscoveryInputs): Discovered {
  const abs = (f: string) => path.posix.resolve(inputs.projectDir, f);
  if (inputs.files && inputs.files.length > 0) return { files: inputs.files.map(abs), how: "compose.files" };
  const fromEnv = inputs.invocationEnv.COMPOSE_FILE !== undefined ? "compose.env" : inputs.dotenv.has("COMPOSE_FILE") ? ".env" : undefined;
  if (fromEnv) {
    const value = fromEnv === "compose.env" ? inputs.invocationEnv.COMPOSE_FILE! : inputs.dotenv.get("COMPOSE_FILE")!;
    const separator = inputs.invocationEnv.COMPOSE_PATH_SEPARATOR || inputs.dotenv.get("COMPOSE_PATH_SEPARATOR") || ":";
    return { files: value.split(separator).filter(Boolean).map(abs), how: `COMPOSE_FILE of ${fromEnv}` };
  }
  const existing = new Set(inputs.existing.map((f) => path.posix.normalize(f)));
  for (let dir = path.posix.resolve(inputs.projectDir); ; dir = path.posix.dirname(dir)) {
    const main = DEFAULT_FILE_NAMES.map((n) => path.posix.join(dir, n)).find((f) => existing.has(f));
    if (main) {
      const override = OVERRIDE_FILE_NAMES.map((n) => path.posix.join(dir, n)).find((f) => existing.has(f));
      return { files: override ? [main, override] : [main], how: "Compose's default names" };
    }
    if (dir === "/") break;
  }
  throw new UpgradeError({
    what: `find the compose file of ${inputs.projectDir}`,
    why: `none of ${DEFAULT_FILE_NAMES.join(", ")} is there or in a parent directory, and neither compose.files nor COMPOSE_FILE names one`,
    hint: "check compose.projectDir, or set compose.files to the deployment's compose files (nothing was changed)",
    exitCode: 2,
    permanent: true,
  });
}

/** A shell script that prints every default-named compose file in `dir` and its parents. */
export function listCandidatesScript(dir: string, quote: (s: string) => string): string {
  const names = [...DEFAULT_FILE_NAMES, ...OVERRIDE_FILE_NAMES].join(" ");
  return `d=${quote(dir)}; while :; do for n in ${names}; do [ -f "$d/$n" ] && echo "$d/$n"; done; [ "$d" = / ] && break; d=$(dirname "$d"); done; true`;
}
