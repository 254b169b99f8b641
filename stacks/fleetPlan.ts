import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { badInput, type UpgradeError } from "../lib/errors";
import { GLOB } from "./stackPatterns";
import { parseWindows } from "./windows";

/**
 * A fleet's plan: which stacks, in which waves, each with its project directory, release, runbook,
 * windows and own flags; from names and globs over the backend's stacks, or a fleet file. What
 * `upgrade` over several stacks runs (stacks/fleet.ts) and what `fleet plan` prints as CI matrices.
 */
export interface FleetStack {
  stack: string;
  cwd: string;
  release?: string;
  runbook?: string;
  /** Its maintenance windows (--window), from the fleet file's stack or wave; they replace the command line's. */
  windows?: string[];
  /**
   * `upgrade` flags of this stack alone (the fleet file's `flags`), after the command line's: one
   * given on both takes this value (e.g. the port its services API listens on).
   */
  flags?: string[];
}

export interface FleetWave {
  name: string;
  canary: boolean;
  stacks: FleetStack[];
}

export interface FleetPlan {
  waves: FleetWave[];
  notify: string[];
  concurrency?: number;
}



export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Names and globs, in the order given, each stack once; a glob that matches nothing is bad input. */
export function expandStackPatterns(patterns: string[], known: string[] | undefined): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    if (!GLOB.test(p)) {
      if (!out.includes(p)) out.push(p);
      continue;
    }
    const re = globToRegExp(p);
    // `org/project/stack` names of the backend also match by their last segment
    const matches = (known ?? []).filter((name) => re.test(name) || re.test(name.split("/").pop()!)).sort();
    if (matches.length === 0) {
      throw badInput(`expand --stack ${JSON.stringify(p)}`, `it matches no stack of the backend${known?.length ? ` (stacks: ${known.join(", ")})` : " (it has none)"}`, "check the pattern and PULUMI_BACKEND_URL / pulumi login");
    }
    for (const m of matches) if (!out.includes(m)) out.push(m);
  }
  return out;
}


/** The stacks of a project's backend (for globs). */
export async function listBackendStacks(cwd: string, env: Record<string, string | undefined>): Promise<string[]> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  const { pulumiCommand: findCommand } = await import("../lib/toolchain");
  const clean = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const pulumiCommand = (await findCommand(clean)).command;
  if (!fs.existsSync(path.join(cwd, "Pulumi.yaml")) && !fs.existsSync(path.join(cwd, "Pulumi.yml"))) {
    throw badInput(`list the stacks of ${cwd}`, "there is no Pulumi.yaml there", "pass --cwd <the project directory>");
  }
  const workspace = await LocalWorkspace.create({ workDir: cwd, pulumiCommand, envVars: clean });
  return (await workspace.listStacks()).map((s) => s.name);
}

const windowList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const stackEntry = z.union([
  z.string().min(1),
  z.object({ stack: z.string().min(1), cwd: z.string().optional(), release: z.string().optional(), runbook: z.string().optional(), window: windowList.optional(), flags: z.array(z.string()).optional() }).strict(),
]);
const fleetFileSchema = z
  .object({
    cwd: z.string().optional(),
    concurrency: z.number().int().positive().optional(),
    notify: z.array(z.string().url()).optional(),
    waves: z
      .array(z.object({ name: z.string().min(1), canary: z.boolean().optional(), window: windowList.optional(), stacks: z.array(stackEntry).min(1) }).strict())
      .min(1),
  })
  .strict();

/**
 * A fleet file:
 *   cwd: ../private-cloud          # default project dir (relative to the file)
 *   concurrency: 3                 # default --concurrency
 *   notify: [https://hooks.example/…]
 *   waves:
 *     - name: canary
 *       canary: true
 *       stacks: [staging]
 *     - name: production
 *       window: "Sat 02:00-06:00 Europe/Berlin"   # or a list; for every stack of the wave
 *       stacks: ["prod-*", { stack: prod-us, release: 3.4.1, cwd: ../other, window: ["Sun 01:00-05:00 America/New_York"] }]
 *     - name: eu
 *       stacks: [{ stack: prod-eu, flags: [--services-port, "8400", --wait-dedicated] }]
 * A stack's or wave's `window` replaces the command line's --window for that stack; a stack's
 * `flags` are `upgrade` flags for it alone, checked against `upgrade`'s before anything runs.
 */
export async function readFleetFile(file: string, env: Record<string, string | undefined>, defaultCwd: string): Promise<FleetPlan> {
  const yaml = await import("yaml");
  let raw: unknown;
  try {
    raw = yaml.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw badInput(`read the fleet file ${file}`, (err as Error).message.split("\n")[0]!, "see `upgrade --help` for its format");
  }
  const parsed = fleetFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badInput(`read the fleet file ${file}`, `${issue.path.join(".") || "(top)"}: ${issue.message}`, "see `upgrade --help` for its format");
  }
  const base = path.dirname(path.resolve(file));
  const fileCwd = parsed.data.cwd ? path.resolve(base, parsed.data.cwd) : defaultCwd;
  const listed = new Map<string, string[]>();
  const waves: FleetWave[] = [];
  const windowsOf = (given: string | string[] | undefined, where: string): string[] | undefined => {
    if (given === undefined) return undefined;
    const specs = typeof given === "string" ? [given] : given;
    try {
      parseWindows(specs);
    } catch (err) {
      const e = err as UpgradeError;
      throw badInput(`read the fleet file ${file}`, `${where}.window: ${e.why}`, e.hint);
    }
    return specs;
  };
  for (const w of parsed.data.waves) {
    const stacks: FleetStack[] = [];
    const waveWindows = windowsOf(w.window, `wave ${w.name}`);
    for (const entry of w.stacks) {
      const e = typeof entry === "string" ? { stack: entry, window: undefined, flags: undefined } : entry;
      const windows = windowsOf(e.window, `wave ${w.name}, stack ${e.stack}`) ?? waveWindows;
      const cwd = e.cwd ? path.resolve(base, e.cwd) : fileCwd;
      let names = [e.stack];
      if (GLOB.test(e.stack)) {
        if (!listed.has(cwd)) listed.set(cwd, await listBackendStacks(cwd, env));
        names = expandStackPatterns([e.stack], listed.get(cwd));
      }
      for (const stack of names) stacks.push({ stack, cwd, release: e.release, runbook: e.runbook, ...(windows ? { windows } : {}), ...(e.flags?.length ? { flags: e.flags } : {}) });
    }
    waves.push({ name: w.name, canary: w.canary ?? false, stacks });
  }
  checkNoStackTwice(waves);
  return { waves: [...waves.filter((w) => w.canary), ...waves.filter((w) => !w.canary)], notify: parsed.data.notify ?? [], concurrency: parsed.data.concurrency };
}

/** The per-stack arguments less the command line's --window (a stack's own windows replace them). */
export function withoutWindows(args: readonly string[]): string[] {
  return args.filter((a, i) => a !== "--window" && args[i - 1] !== "--window");
}

function checkNoStackTwice(waves: FleetWave[]): void {
  const seen = new Map<string, string>();
  for (const w of waves) {
    for (const s of w.stacks) {
      const id = `${s.cwd}\u0000${s.stack}`;
      if (seen.has(id)) throw badInput("plan the fleet", `stack ${s.stack} (${s.cwd}) is in wave ${seen.get(id)} and in wave ${w.name}`, "list each stack once");
      seen.set(id, w.name);
    }
  }
}

/** `fleet plan --json`: the waves as CI matrices (one job per stack, one wave after another). */
export function planMatrix(plan: FleetPlan, relativeTo = process.cwd()) {
  return {
    waves: plan.waves.map((w) => ({
      name: w.name,
      canary: w.canary,
      matrix: {
        include: w.stacks.map((s) => ({ stack: s.stack, cwd: path.relative(relativeTo, s.cwd) || ".", ...(s.release ? { release: s.release } : {}), ...(s.runbook ? { runbook: s.runbook } : {}), ...(s.windows ? { windows: s.windows } : {}), ...(s.flags ? { flags: s.flags } : {}) })),
      },
    })),
  };
}

