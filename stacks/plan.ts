import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { badInput, ExitCode, UpgradeError } from "../lib/errors";
import type { StepRecord } from "../lib/events";
import type { Step } from "../lib/steps";
import { packageVersion, pulumiSdkVersion } from "../lib/toolchain";
import type { ResolvedOptions, RunContext } from "./context";
import type { ExpectedDuration } from "./windows";
import { projectFileHashes } from "./projectFiles";
import { pulumiCall } from "./pulumiCall";

const run = promisify(execFile);

/**
 * A reviewed plan, applied exactly (`upgrade plan` → approval → `upgrade apply plan.json`).
 *
 * `upgrade plan` is a dry run that also refreshes the local stack config (the plan must be of the
 * config `up` will apply) and writes what it read as one versioned JSON artifact: the steps that
 * would run with their plan lines, the disruption they imply, the preview's operations per
 * resource (URN, operation, changed keys; never values), and what the plan depends on. `apply`
 * re-reads every dependency and previews again before anything disruptive (the `check-plan` step,
 * right after plan-update): any difference refuses the run with exit 5 and names it. The artifact
 * holds no secret and no machine path: the project directory, SSH keys and known_hosts are the
 * applying machine's own.
 */
export const PLAN_FORMAT = "upgrade-orchestrator/plan@1";

export interface UpgradePlan {
  format: typeof PLAN_FORMAT;
  runId: string;
  createdAt: string;
  stack: string;
  /** The runbook's name (null: none); `apply` runs the runbook the plan names. */
  runbook: string | null;
  /** The options that decide what the run does; `apply` runs with these. */
  options: PlannedOptions;
  dependsOn: PlanDependencies;
  /** Every step the dry run went through, with what it would do (its note). */
  steps: Array<Pick<StepRecord, "step" | "title" | "status" | "note">>;
  /** What the runbook's steps before `up` disrupt (the confirmation's lines). */
  disruption: string[];
  /** How long users are expected to be disrupted (--expected-duration, else this stack's earlier runs in the journal); null: no figure. */
  expectedDisruption: ExpectedDuration | null;
  /** The preview's counts per operation. */
  changes: Record<string, number>;
  /** The preview's operations other than `same`, by URN. */
  operations: PlannedOperation[];
}

export interface PlannedOperation {
  urn: string;
  type: string;
  op: string;
  /** The property keys that change (or force a replacement); never their values. */
  keys: string[];
}

/** What the plan was made against: when any of it differs at apply, the plan is stale. */
export interface PlanDependencies {
  /** The project's checked-out commit (null: not a git repository) and whether tracked files differ from it. */
  gitCommit: string | null;
  gitDirty: boolean;
  /** The tag of the checked-out commit, else its short id. */
  release: string | null;
  /** sha256 of package-lock.json, Pulumi.yaml and Pulumi.<stack>.yaml (after `config refresh` when the runbook refreshes). */
  lockfileSha256: string | null;
  projectConfigSha256: string | null;
  stackConfigSha256: string | null;
  /** The stack's last update in the backend (null: none yet); a diy backend numbers none (version 0), its times tell them apart. */
  lastUpdate: { version: number; kind: string; result: string; startTime: string; endTime?: string } | null;
  pulumiCli: string;
  pulumiSdk: string;
  orchestrator: string;
}

/** What a plan fixes: the run's options, and the runbook's own without the machine's SSH settings (`apply` brings its own). */
export type PlannedOptions = { runbook: string } & Pick<ResolvedOptions, "release" | "message" | "onFailure" | "windows" | "expectedDurationMs"> & {
  codeOcean: Omit<ResolvedOptions["codeOcean"], "ssh">;
};

/** The options a plan fixes (a runbook object by its name: `apply` through the API passes the object again). */
export function plannedOptions(o: ResolvedOptions): PlannedOptions {
  const { ssh: _machine, ...codeOcean } = o.codeOcean;
  return {
    runbook: typeof o.runbook === "string" ? o.runbook : o.runbook.name,
    release: o.release,
    message: o.message,
    onFailure: o.onFailure,
    windows: o.windows,
    expectedDurationMs: o.expectedDurationMs,
    codeOcean,
  };
}

/** The preview's operations from its engine events (values left out: only the keys that change). */
export function operationsOf(events: EngineEvent[]): PlannedOperation[] {
  const ops: PlannedOperation[] = [];
  for (const event of events) {
    const m = event.resourcePreEvent?.metadata;
    if (!m || m.op === "same") continue;
    const keys = [...new Set([...(m.diffs ?? []), ...(m.keys ?? [])])].sort();
    ops.push({ urn: m.urn, type: m.type, op: m.op, keys });
  }
  return ops.sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : a.op < b.op ? -1 : 1));
}

/** Reads what a plan depends on, now (the stack selected; the config refreshed when the runbook does). */
export async function readDependencies(ctx: RunContext): Promise<PlanDependencies> {
  const { cwd, stack } = ctx.options;
  const git = (...args: string[]) => run("git", args, { cwd }).then((r) => r.stdout.trim());
  const gitCommit = await git("rev-parse", "HEAD").catch(() => null);
  const gitDirty = gitCommit !== null && (await git("status", "--porcelain", "--untracked-files=no")) !== "";
  const release = gitCommit === null ? null : await git("describe", "--tags", "--exact-match", "HEAD").catch(() => git("rev-parse", "--short", "HEAD"));
  const files = projectFileHashes(cwd, stack);
  const [last] = await pulumiCall("read the stack's last update (pulumi stack history)", () => ctx.stack!.history(1, 1));
  return {
    gitCommit,
    gitDirty,
    release,
    lockfileSha256: files.lockfile,
    projectConfigSha256: files.project,
    stackConfigSha256: files.stack,
    lastUpdate: last
      ? { version: last.version, kind: last.kind, result: last.result, startTime: new Date(last.startTime).toISOString(), ...(last.endTime ? { endTime: new Date(last.endTime).toISOString() } : {}) }
      : null,
    pulumiCli: ctx.stack!.workspace.pulumiVersion,
    pulumiSdk: pulumiSdkVersion(),
    orchestrator: packageVersion(),
  };
}

/** The plan a finished `upgrade plan` writes (redacted by the caller). */
export async function buildPlan(ctx: RunContext, steps: StepRecord[], expected: ExpectedDuration | undefined): Promise<UpgradePlan> {
  return {
    format: PLAN_FORMAT,
    runId: ctx.runId,
    createdAt: new Date().toISOString(),
    stack: ctx.options.stack,
    runbook: ctx.runbook?.name ?? null,
    options: plannedOptions(ctx.options),
    dependsOn: await readDependencies(ctx),
    steps: steps.map(({ step, title, status, note }) => ({ step, title, status, ...(note !== undefined ? { note } : {}) })),
    disruption: ctx.disruption ?? [],
    expectedDisruption: expected ?? null,
    changes: (ctx.preview?.changeSummary as Record<string, number> | undefined) ?? {},
    operations: ctx.plannedOperations ?? [],
  };
}

const LABELS: Record<keyof PlanDependencies, string> = {
  gitCommit: "the project's commit",
  gitDirty: "uncommitted changes in the project",
  release: "the release checked out",
  lockfileSha256: "package-lock.json",
  projectConfigSha256: "Pulumi.yaml",
  stackConfigSha256: "the stack config (Pulumi.<stack>.yaml)",
  lastUpdate: "the stack's last update (another update ran since)",
  pulumiCli: "the Pulumi CLI version",
  pulumiSdk: "the Pulumi SDK version",
  orchestrator: "the upgrade-orchestrator version",
};

const shown = (v: unknown) => (v && typeof v === "object" ? JSON.stringify(v) : String(v));

/** What differs between the plan's dependencies and now, one line each (pure). */
export function staleDependencies(planned: PlanDependencies, now: PlanDependencies): string[] {
  return (Object.keys(LABELS) as Array<keyof PlanDependencies>)
    .filter((k) => JSON.stringify(planned[k]) !== JSON.stringify(now[k]))
    .map((k) => `${LABELS[k]}: ${shown(planned[k])} when planned, ${shown(now[k])} now`);
}

/** What differs between the plan's operations and the preview's now, one line each (pure). */
export function changedOperations(planned: PlannedOperation[], now: PlannedOperation[]): string[] {
  const line = (o: PlannedOperation) => `${o.op} ${o.urn}${o.keys.length ? ` [${o.keys.join(", ")}]` : ""}`;
  const before = new Set(planned.map(line));
  const after = new Set(now.map(line));
  return [...[...after].filter((l) => !before.has(l)).map((l) => `not in the plan: ${l}`), ...[...before].filter((l) => !after.has(l)).map((l) => `planned, no longer previewed: ${l}`)];
}

/**
 * Apply only: the approved plan still holds. Right after plan-update's preview and before any
 * step users feel: every dependency is read again and the operations are compared; any difference
 * refuses the run (exit 5), naming each.
 */
export const checkPlan: Step<RunContext> = {
  id: "check-plan",
  title: "Check that the approved plan still holds",
  readOnly: true,
  when: (ctx) => ctx.options.applyPlan !== undefined,
  async run(ctx) {
    const plan = ctx.options.applyPlan!;
    const stale = [
      ...staleDependencies(plan.dependsOn, await readDependencies(ctx)),
      ...changedOperations(plan.operations, ctx.plannedOperations ?? []),
      ...((ctx.runbook?.name ?? null) !== plan.runbook ? [`the runbook: ${plan.runbook ?? "none"} when planned, ${ctx.runbook?.name ?? "none"} now`] : []),
    ];
    if (stale.length > 0) {
      throw new UpgradeError({
        what: `apply the plan of run ${plan.runId} (${plan.createdAt})`,
        why: `the plan is stale:\n  ${stale.join("\n  ")}`,
        hint: "nothing was changed; make a new plan (upgrade plan) and have it approved",
        exitCode: ExitCode.StalePlan,
        permanent: true,
      });
    }
    ctx.confirmedChanges = plan.changes;
    return `the plan of run ${plan.runId} holds: same commit, config, state and ${plan.operations.length} operation(s); approved, no prompt`;
  },
};

/** Reads a plan file: bad input (exit 2) when it is not one. */
export function readPlanFile(file: string): UpgradePlan {
  let plan: Partial<UpgradePlan>;
  try {
    plan = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<UpgradePlan>;
  } catch (err) {
    throw badInput(`read the plan ${file}`, (err as Error).message, "pass the plan.json that `upgrade plan --out` wrote");
  }
  if (plan?.format !== PLAN_FORMAT || typeof plan.stack !== "string" || !plan.dependsOn || !Array.isArray(plan.operations) || !plan.options) {
    throw badInput(`read the plan ${file}`, `not a plan of this version (format ${JSON.stringify(plan?.format)}, expected ${PLAN_FORMAT})`, "make the plan again with this version (upgrade plan --out)");
  }
  return plan as UpgradePlan;
}
