import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { UpgradeError } from "../../lib/errors";
import { shq as sq } from "../../lib/ssh";
import { parseImage } from "./composeFile";
import { compose, composeModel, missingServices, readDeployment, type ComposeFilesOverride, type Deployment } from "./deployment";
import { chooseTag, listTags, registryOf } from "./registry";
import { writeFileAtomically } from "./remote";
import { compareVersions, imageServices } from "./settings";
import { sharedVariable, unexpectedChanges, type VersionPlan } from "./versionSource";

/**
 * The read-deployment step's work and the rewrite it prepares: what Compose resolves (the
 * authority), the tag as the registry has it, where the version lives, the edited files written
 * beside the originals as candidates and checked with `docker compose config` (only the images of
 * the API, beat and workers may change), and, at the rewrite step, the swap: the old files kept
 * as `<file>.before-<from>`, each new one written atomically.
 */
export interface Prepared {
  fromTag: string;
  toTag: string;
  plan: VersionPlan;
  note: string;
}

export const candidatePath = (file: string) => path.posix.join(path.posix.dirname(file), `.${path.posix.basename(file)}.next`);
export const previousPath = (file: string, from: string) => `${file}.before-${from}`;

/** The compose and env files with every edited one swapped for its candidate. */
export function withCandidates(d: Deployment, edits: ReadonlyMap<string, string>): ComposeFilesOverride {
  const swap = (f: string) => (edits.has(f) ? candidatePath(f) : f);
  const envChanged = d.envFiles.some((f) => edits.has(f));
  return { files: d.files.map(swap), envFiles: envChanged ? d.envFiles.map(swap) : undefined };
}

const refusal = (why: string, hint: string, exitCode = 3) => new UpgradeError({ what: "read the Utilitarian deployment", why, hint: `${hint} (nothing was changed)`, exitCode, permanent: true });

export async function prepareUpgrade(d: Deployment, from: string, to: string, info: (m: string) => Promise<void>): Promise<Prepared> {
  const s = d.settings;
  const apps = imageServices(s);
  const model = await composeModel(d);
  const missing = missingServices(d, model);
  if (missing) throw missing;
  if (!s.compose.files && !isDeepStrictEqual(model, await composeModel(d, { discover: true }))) {
    throw refusal(`docker compose in ${s.compose.projectDir} reads other files than ${d.files.join(", ")} (found by ${d.found})`, "set compose.files to the deployment's compose files", 2);
  }
  // Every API, beat and worker image as Compose resolves it: this repository, at the old version (or the new one after an interrupted run).
  const images = apps.map((name) => [name, model.services?.[name]?.image] as const);
  for (const [name, image] of images) {
    const ref = image === undefined ? undefined : parseImage(image);
    if (!ref || ref.repository !== s.image.repository || !/^v?\d+\.\d+\.\d+$/.test(ref.tag) || ![from, to].some((v) => compareVersions(ref.tag, v) === 0)) {
      throw refusal(
        `${name} runs ${image ?? "no image"} (as docker compose config resolves it), expected ${s.image.repository}:${from} (or ${to} after an interrupted run)`,
        ref && ref.repository !== s.image.repository ? `set image.repository to ${ref.repository} if that is the Utilitarian image` : "bring the API, beat and workers to one version first",
      );
    }
  }
  const deploymentTag = parseImage(images.find(([, i]) => compareVersions(parseImage(i!).tag, from) === 0)?.[1] ?? images[0]![1]!).tag;
  const registry = registryOf(s.image.repository, s.image.registry);
  const listed = registry ? await listTags(registry) : undefined;
  if (listed && "error" in listed) await info(`read-deployment: the tags of ${s.image.repository} could not be listed (${listed.error}); keeping the deployment's form ${deploymentTag}`);
  const choice = chooseTag(to, deploymentTag, listed && "tags" in listed ? listed.tags : undefined, s.image.repository);
  const view = await readDeployment(d, choice.tag);
  const plan = view.plan;
  if (plan.edits.size > 0) {
    for (const [file, text] of plan.edits) await d.host.run(`write the candidate ${candidatePath(file)}`, `cat > ${sq(candidatePath(file))}`, { stdin: text });
    const expected = `${s.image.repository}:${choice.tag}`;
    const after = await composeModel(d, withCandidates(d, plan.edits)).catch((err) => {
      throw refusal(`docker compose config rejects the edited files: ${(err as UpgradeError).why ?? (err as Error).message}`, "fix the compose file", 2);
    });
    const { others, wrong } = unexpectedChanges(view.model, after, apps, expected);
    if (others.length > 0) {
      await removeCandidates(d, plan.edits);
      throw sharedVariable(plan.variable, plan.where, others);
    }
    if (wrong.length > 0) {
      await removeCandidates(d, plan.edits);
      throw refusal(`after the edit docker compose config gives ${wrong.map((w) => `${w} ${after.services?.[w]?.image}`).join(", ")}, not ${expected}`, "report this");
    }
  }
  const note = plan.edits.size === 0 ? `${plan.where} already names ${choice.tag} (an interrupted run)` : `${plan.change} (tag ${choice.tag}: ${choice.how})`;
  return { fromTag: plan.fromTag, toTag: choice.tag, plan, note };
}

async function removeCandidates(d: Deployment, edits: ReadonlyMap<string, string>): Promise<void> {
  await d.host.run("remove the candidate files", `rm -f ${[...edits.keys()].map((f) => sq(candidatePath(f))).join(" ")}`);
}

/** The swap: each edited file kept as `<file>.before-<from>` and replaced atomically by its new text. */
export async function writeEdits(d: Deployment, edits: ReadonlyMap<string, string>, from: string): Promise<string[]> {
  const kept: string[] = [];
  for (const [file, text] of edits) {
    const previous = previousPath(file, from);
    await d.host.run(`keep ${previous}`, `cp -p ${sq(file)} ${sq(previous)}`);
    await writeFileAtomically(d, file, text);
    kept.push(previous);
  }
  await removeCandidates(d, edits);
  await compose(d, "validate the compose files (docker compose config)", ["config", "--quiet"]);
  return kept;
}
