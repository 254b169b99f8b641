import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { UpgradeError } from "../../lib/errors";
import { imageScalarOf, parseImage, rewriteImageTags, type ComposeFile } from "./composeFile";
import { originOf, parseEnvFile, parseTemplate, resolveTemplate, type Part } from "./interpolation";

/**
 * Where the version of the API, beat and workers lives, and the edit that changes it there: the
 * image text in a compose file (`image: quay.io/pwit/utilitarian:1.0.0`, or the default of
 * `${UTILITARIAN_VERSION:-1.0.0}` when the variable is unset), or the value of a variable in an
 * env file (`UTILITARIAN_VERSION=1.0.0` for `:${UTILITARIAN_VERSION}`, or
 * `UTILITARIAN_IMAGE=quay.io/pwit/utilitarian:1.0.0` for `image: ${UTILITARIAN_IMAGE}`). Every
 * other byte of either file stays. Pure: texts in, texts out; the caller checks the result with
 * `docker compose config` (the authority) before it writes anything.
 */
export interface EnvFileText {
  /** Absolute path on the host. */
  path: string;
  text: string;
}

export interface VersionInputs {
  files: ComposeFile[];
  /** The env files Compose reads, in its order (a later one wins). */
  envFiles: EnvFileText[];
  /** The environment of the compose invocation (compose.env); it wins over the env files. */
  invocationEnv: Record<string, string>;
  /** The services whose image changes (API, beat, workers). */
  services: string[];
  /** Each service's image as `docker compose config` resolves it. */
  resolved: Record<string, string | undefined>;
  projectDir: string;
}

export interface VersionPlan {
  /** The tag the services run now (one for all of them, or the refusal says otherwise). */
  fromTag: string;
  /** Where it lives, for people: ".env: UTILITARIAN_VERSION" or "docker-compose.yaml: image of …". */
  where: string;
  /** Per file to change: its new text. Empty: already at the target. */
  edits: Map<string, string>;
  /** ".env: UTILITARIAN_VERSION 1.0.0 → 2.0.0" */
  change: string;
  /** The variable holding the version, if one does (for the sharing refusal). */
  variable?: string;
}

const readRefusal = (why: string, hint: string, exitCode = 2) => new UpgradeError({ what: "find where the Utilitarian version is set", why, hint: `${hint} (nothing was changed)`, exitCode, permanent: true });

type Location = { kind: "text"; file: string; start: number; end: number } | { kind: "variable"; file: string; start: number; end: number; name: string; value: string; offset: number };

export function envOf(envFiles: EnvFileText[], invocationEnv: Record<string, string>): Map<string, string> {
  const env = new Map<string, string>();
  for (const f of envFiles) for (const [name, a] of parseEnvFile(f.text)) env.set(name, a.value);
  for (const [name, value] of Object.entries(invocationEnv)) env.set(name, value);
  return env;
}

/** Where each service's tag comes from, checked against Compose's own resolution. */
export function planVersion(inputs: VersionInputs, toTag: string): VersionPlan {
  const rel = (file: string) => path.posix.relative(inputs.projectDir, file) || file;
  const env = envOf(inputs.envFiles, inputs.invocationEnv);
  const locations = new Map<string, Location>();
  const users = new Map<string, string[]>();
  const tags = new Map<string, string>();
  let literalOnly = true;
  for (const service of inputs.services) {
    const source = imageScalarOf(inputs.files, service);
    if (!source) throw readRefusal(`${service} has no image in ${inputs.files.map((f) => rel(f.label)).join(", ")}`, "check services.api, services.beat and services.workers");
    const composeSays = inputs.resolved[service];
    const resolved = resolveTemplate(parseTemplate(source.raw, source.start), env, source.raw);
    if (composeSays !== undefined && resolved.value !== composeSays) {
      throw readRefusal(
        `docker compose config resolves the image of ${service} to ${composeSays}, the files give ${resolved.value} (${resolved.variables.join(", ") || "no variables"}): a value set outside the env files and compose.env, e.g. in the host's environment`,
        `set ${resolved.variables.join(", ") || "the image"} in the project's .env file or in compose.env`,
      );
    }
    if (resolved.variables.length > 0) literalOnly = false;
    const image = resolved.value;
    const ref = parseImage(image);
    if (ref.tag === "") throw readRefusal(`${service} runs ${image}, which names no tag (a digest or none)`, "pin the image with a version tag, e.g. quay.io/pwit/utilitarian:1.0.0", 3);
    const at = image.length - ref.tag.length;
    const from = originOf(resolved, at, image.length);
    if (!from) throw readRefusal(`the tag of ${service}'s image ${source.raw} is made of more than one piece`, "keep the version in one place: the image text or one variable");
    let location: Location;
    if (from.origin.kind === "text") {
      if (!from.origin.exact || !source.exact) throw readRefusal(`the image of ${service} in ${rel(source.file.label)} is written with escapes`, "write it plainly");
      const start = from.origin.start + from.offset;
      location = { kind: "text", file: source.file.label, start, end: start + ref.tag.length };
    } else {
      const name = from.origin.name;
      if (name in inputs.invocationEnv) throw readRefusal(`${service}'s version comes from ${name}, set in compose.env`, `change compose.env.${name} to the new version yourself, or move ${name} into the project's .env file`, 3);
      const envFile = [...inputs.envFiles].reverse().find((f) => parseEnvFile(f.text).has(name));
      const assignment = envFile && parseEnvFile(envFile.text).get(name)!;
      if (!envFile || !assignment) throw readRefusal(`${service}'s version comes from ${name}, which no env file sets`, `set ${name} in the project's .env file`);
      if (!assignment.editable) throw readRefusal(`${name} in ${rel(envFile.path)} is written with escapes, interpolation or quotes over lines`, `write ${name}=<value> plainly`);
      const start = assignment.start + from.offset;
      location = { kind: "variable", file: envFile.path, start, end: start + ref.tag.length, name, value: assignment.value, offset: from.offset };
    }
    const key = `${location.file}:${location.start}`;
    locations.set(key, location);
    users.set(key, [...(users.get(key) ?? []), service]);
    tags.set(service, ref.tag);
  }
  const distinct = [...new Set(tags.values())];
  const pending = distinct.filter((t) => t !== toTag);
  if (pending.length > 1) {
    throw readRefusal(`the services run different versions: ${[...tags].map(([s, t]) => `${s} ${t}`).join(", ")}`, "bring them to one version first", 3);
  }
  const fromTag = pending[0] ?? toTag;
  const all = [...locations.values()];
  const variables = [...new Set(all.flatMap((l) => (l.kind === "variable" ? [l.name] : [])))];
  // For people, one entry per file and variable: ".env: UTILITARIAN_VERSION 1.0.0 → 2.0.0".
  const groups = new Map<string, { label: string; change: string }>();
  const imageUsers = new Map<string, string[]>();
  for (const [key, l] of locations) {
    if (l.kind === "variable") {
      const after = l.value.slice(0, l.offset) + toTag + l.value.slice(l.offset + (l.end - l.start));
      groups.set(`${l.file}\0${l.name}`, { label: `${rel(l.file)}: ${l.name}`, change: `${rel(l.file)}: ${l.name} ${l.value} → ${after}` });
    } else {
      const names = [...(imageUsers.get(l.file) ?? []), ...users.get(key)!];
      imageUsers.set(l.file, names);
      const label = `${rel(l.file)}: image of ${names.join(", ")}`;
      groups.set(`${l.file}\0`, { label, change: `${label} ${fromTag} → ${toTag}` });
    }
  }
  const where = [...groups.values()].map((g) => g.label).join("; ");
  const change = [...groups.values()].map((g) => g.change).join("; ");
  // A variable other images name too: refused here already (the preview), the model check at
  // read-deployment catches any other use.
  for (const name of variables) {
    const others = otherImagesUsing(inputs, name);
    if (others.length > 0) throw sharedVariable(name, where, others);
  }
  const edits = new Map<string, string>();
  if (fromTag !== toTag) {
    if (literalOnly) {
      // No interpolation: the image text, with per-service image keys where an anchor is shared.
      const byFile = new Map<ComposeFile, string[]>();
      for (const service of inputs.services) {
        const file = imageScalarOf(inputs.files, service)!.file;
        if (tags.get(service) !== toTag) byFile.set(file, [...(byFile.get(file) ?? []), service]);
      }
      for (const [file, services] of byFile) edits.set(file.label, rewriteImageTags(file, services, toTag));
    } else {
      const texts = new Map<string, string>([...inputs.files.map((f) => [f.label, f.text] as const), ...inputs.envFiles.map((f) => [f.path, f.text] as const)]);
      for (const l of all.sort((a, b) => b.start - a.start)) {
        const text = edits.get(l.file) ?? texts.get(l.file)!;
        if (text.slice(l.start, l.end) === toTag) continue;
        edits.set(l.file, text.slice(0, l.start) + toTag + text.slice(l.end));
      }
    }
  }
  return { fromTag, where, edits, change, variable: variables[0] };
}

export const sharedVariable = (name: string | undefined, where: string, others: string[]) =>
  new UpgradeError({
    what: "find where the Utilitarian version is set",
    why: `changing ${where} would change ${others.join(", ")} too${name ? ` (${name} is not only the Utilitarian version)` : ""}`,
    hint: `${name ? `give the API, beat and workers a variable of their own (e.g. UTILITARIAN_VERSION) and keep ${name} for ${others.join(", ")}` : `give ${others.join(", ")} an image of its own`} (nothing was changed)`,
    exitCode: 3,
    permanent: true,
  });

/** The services outside `inputs.services` whose image text names the variable. */
function otherImagesUsing(inputs: VersionInputs, name: string): string[] {
  const names = new Set(inputs.files.flatMap((f) => f.services));
  const uses = (parts: Part[]): boolean => parts.some((p) => p.kind === "var" && (p.name === name || uses(p.arg)));
  return [...names].filter((service) => {
    if (inputs.services.includes(service)) return false;
    const source = imageScalarOf(inputs.files, service);
    if (!source) return false;
    try {
      return uses(parseTemplate(source.raw));
    } catch {
      return false;
    }
  });
}

/**
 * What `docker compose config` says changes between the model before and after the edit, beyond
 * the images of the chosen services (pure): the services whose configuration would change too.
 */
export function unexpectedChanges(before: ComposeModel, after: ComposeModel, services: string[], expectedImage: string): { others: string[]; wrong: string[] } {
  const others: string[] = [];
  const names = new Set([...Object.keys(before.services ?? {}), ...Object.keys(after.services ?? {})]);
  for (const name of names) {
    if (services.includes(name)) continue;
    if (!isDeepStrictEqual(before.services?.[name], after.services?.[name])) others.push(name);
  }
  const wrong = services.filter((s) => after.services?.[s]?.image !== expectedImage);
  // Top-level `x-` extensions (an anchor's home, say) run nothing: their effect shows in the services.
  const rest = (m: ComposeModel) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== "services" && !k.startsWith("x-")));
  if (!isDeepStrictEqual(rest(before), rest(after))) others.push("(the project's networks, volumes or name)");
  return { others, wrong };
}

export interface ComposeModel {
  name?: string;
  services?: Record<string, { image?: string } & Record<string, unknown>>;
  [key: string]: unknown;
}
