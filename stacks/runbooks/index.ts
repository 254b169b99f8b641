import * as path from "node:path";
import type { OutputMap } from "@pulumi/pulumi/automation";
import { badInput } from "../../lib/errors";
import type { Runbook } from "../context";
import { codeOceanPrivateCloud } from "./codeocean-private-cloud";

/** The shipped runbooks, by name (`--runbook <name>`, config key `upgrade:runbook`); `auto` asks each one's `detect`. */
export const RUNBOOKS: Record<string, Runbook> = { [codeOceanPrivateCloud.name]: codeOceanPrivateCloud };

/** A `--runbook` value that names a module rather than a shipped runbook: a path (`./x.js`, `/abs/x.js`) or a file name ending in .js/.cjs/.mjs. */
export const isRunbookModule = (spec: string) => /^\.{0,2}\//.test(spec) || /\.(c|m)?js$/.test(spec);

/** The shipped runbook whose `detect` accepts these outputs, if any. */
export function detectRunbook(outputs: OutputMap): Runbook | undefined {
  return Object.values(RUNBOOKS).find((r) => r.detect?.(outputs));
}

/**
 * The runbook a name or module path asks for; undefined for `none`. A module (relative to `base`,
 * the directory the command was given in) exports the runbook as `runbook`, `default` or
 * `module.exports`; its shape is checked here, so a wrong one is bad input before any step runs.
 */
export async function loadRunbook(spec: string, base: string): Promise<Runbook | undefined> {
  if (spec === "none") return undefined;
  if (!isRunbookModule(spec)) {
    const shipped = RUNBOOKS[spec];
    if (!shipped) throw badInput("choose the runbook", `unknown runbook ${JSON.stringify(spec)}`, `use one of ${[...Object.keys(RUNBOOKS), "auto", "none"].join(", ")}, or a module path such as ./my-runbook.js`);
    return shipped;
  }
  const file = path.resolve(base, spec);
  let loaded: Record<string, unknown>;
  try {
    // require: this package is CommonJS (TypeScript would turn import() into it anyway); Node loads
    // an ES module this way too from 22.12 on, when it has no top-level await
    loaded = require(file) as Record<string, unknown>;
  } catch (err) {
    throw badInput(`load the runbook module ${file}`, (err as Error).message.split("\n")[0]!, "give the path of a built JavaScript module (e.g. ./dist/my-runbook.js) that exports the runbook");
  }
  // `export const runbook`, `export default`, or CommonJS `module.exports = runbook`
  const inner = loaded.default as Record<string, unknown> | undefined;
  const own = "name" in loaded || "beforeUp" in loaded ? loaded : undefined;
  const candidate = loaded.runbook ?? (inner && typeof inner === "object" && "runbook" in inner ? inner.runbook : inner) ?? own;
  return checkRunbook(candidate, file);
}

/** A user's runbook object, checked: a name, and `beforeUp`/`afterUp` lists of steps with an id, a title and `run`. */
export function checkRunbook(candidate: unknown, where: string): Runbook {
  const bad = (why: string) => badInput(`use the runbook of ${where}`, why, "export { name, beforeUp: [steps], afterUp: [steps] } as `default` or `runbook`; a step is { id, title, run(ctx) }");
  const r = candidate as Partial<Runbook> | undefined;
  if (!r || typeof r !== "object") throw bad("it exports no runbook object (`default` or `runbook`)");
  if (typeof r.name !== "string" || r.name === "") throw bad("its runbook has no `name`");
  for (const list of ["beforeUp", "afterUp"] as const) {
    const steps = r[list] ?? [];
    if (!Array.isArray(steps)) throw bad(`\`${list}\` is not a list of steps`);
    for (const [i, s] of steps.entries()) {
      if (!s || typeof s.id !== "string" || typeof s.title !== "string" || typeof s.run !== "function") throw bad(`${list}[${i}] is not a step ({ id, title, run })`);
    }
  }
  return { ...r, beforeUp: r.beforeUp ?? [], afterUp: r.afterUp ?? [] } as Runbook;
}
