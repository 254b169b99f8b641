import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { describe as describeError, refused, UpgradeError } from "../lib/errors";
import type { Step } from "../lib/steps";
import type { RunContext } from "./context";
import { operationsOf } from "./plan";
import { projectFileHashes } from "./projectFiles";
import { firstErrorLine, pulumiCall } from "./pulumiCall";
import { withoutReadBack } from "./sdkOverrides";
import { outputsFrom, outputsOf, pendingDeletes, readState } from "./stackState";

const run = promisify(execFile);

// The release and the update: check out the release (or finish a rollback an interrupted run left),
// plan the update, run `up`. The steps before them (stack, lock, repair, outputs, config, window)
// are in driverSteps.ts.

/** The rollback an interrupted run of this stack started and did not finish (its target), if any. */
export function pendingRollback(ctx: RunContext): { to: string; runId: string } | undefined {
  const previous = ctx.resumeFrom;
  return previous?.rollbackTo ? { to: previous.rollbackTo, runId: previous.runId } : undefined;
}

/** The release this run checks out: --release, or the target of a rollback an interrupted run did not finish. */
const releaseToCheckOut = (ctx: RunContext) => ctx.resumedRollback?.to ?? ctx.options.release!;

export const checkoutRelease: Step<RunContext> = {
  id: "checkout-release",
  title: "Check out the release",
  when: (ctx) => ctx.options.release !== undefined || pendingRollback(ctx) !== undefined,
  async check(ctx) {
    // a run killed while rolling back is finished first: deploying the release that failed again would undo it
    ctx.resumedRollback = pendingRollback(ctx);
    if (ctx.resumedRollback) {
      ctx.emit({
        type: "progress", step: "checkout-release",
        message: `run ${ctx.resumedRollback.runId} was interrupted while rolling back to ${ctx.resumedRollback.to}: this run finishes that rollback${ctx.options.release ? ` (not the upgrade to ${ctx.options.release}; run again for that)` : ""}`,
        data: { rollbackTo: ctx.resumedRollback.to },
      });
    }
    const tag = releaseToCheckOut(ctx);
    const head = await git(ctx, "rev-parse", "HEAD");
    const target = await git(ctx, "rev-parse", "--verify", "--quiet", `refs/tags/${tag}^{commit}`).catch(() => undefined);
    if (target === undefined) {
      throw refused(`check out release ${tag}`, `no tag ${tag} in ${ctx.options.cwd}`, "git fetch --tags, or check the release name");
    }
    const dirty = await git(ctx, "status", "--porcelain", "--untracked-files=no");
    if (dirty) {
      throw refused(`check out release ${tag}`, `the working tree has uncommitted changes:\n${dirty}`, "commit or stash them first; the deployed code must be exactly the release");
    }
    if (head !== target) return undefined;
    // checked out by an interrupted run: what ran before it is in its journal (a rollback's target)
    if (!ctx.resumedRollback) ctx.checkedOutFrom ??= ctx.resumeFrom?.checkedOutFrom;
    return `already at ${tag}${ctx.resumedRollback ? ` (finishing the rollback of run ${ctx.resumedRollback.runId})` : ""}`;
  },
  async plan(ctx) {
    // a plan previews the code it names: the release must be checked out where the plan is made
    if (ctx.options.writePlan && !ctx.resumedRollback) {
      throw refused(`plan the upgrade to ${ctx.options.release}`, `the project is at ${await currentRelease(ctx)}, and a plan previews the checked-out code`, `git checkout ${ctx.options.release} && npm ci in ${ctx.options.cwd}, then plan again`);
    }
    return `would git checkout ${releaseToCheckOut(ctx)} and npm ci${ctx.resumedRollback ? ` (finishing the rollback of run ${ctx.resumedRollback.runId})` : ""}`;
  },
  async run(ctx) {
    if (ctx.resumedRollback) return `${await checkoutAndInstall(ctx, ctx.resumedRollback.to)} (finishing the rollback of run ${ctx.resumedRollback.runId})`;
    // what ran before: a decline says how to go back, and a rollback deploys it (recorded for a resumed run too)
    const from = await currentRelease(ctx);
    ctx.checkedOutFrom = from;
    ctx.emit({ type: "progress", step: "checkout-release", message: `the project is at ${from} before this run`, data: { checkedOutFrom: from } });
    return checkoutAndInstall(ctx, ctx.options.release!);
  },
};

/** The tag of the checked-out commit, else its short commit id. */
export const currentRelease = (ctx: RunContext) =>
  git(ctx, "describe", "--tags", "--exact-match", "HEAD").catch(() => git(ctx, "rev-parse", "--short", "HEAD"));

/** `git checkout <ref>`, then `npm ci` where there is a package-lock.json. */
export async function checkoutAndInstall(ctx: RunContext, tag: string): Promise<string> {
  await git(ctx, "checkout", "--quiet", tag);
  if (!fs.existsSync(path.join(ctx.options.cwd, "package-lock.json"))) return `checked out ${tag} (no package-lock.json: npm ci skipped)`;
  await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: ctx.options.cwd, env: ctx.env, maxBuffer: 64 << 20 }).catch((err) => {
    throw new UpgradeError({ what: `install the dependencies of ${tag} (npm ci)`, why: firstErrorLine(String(err.stderr ?? err)), cause: err });
  });
  return `checked out ${tag}, npm ci done`;
}

async function git(ctx: RunContext, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run("git", args, { cwd: ctx.options.cwd });
    return stdout.trim();
  } catch (err) {
    throw new UpgradeError({ what: `git ${args.join(" ")}`, why: firstErrorLine(String((err as { stderr?: string }).stderr ?? err)), cause: err, permanent: true });
  }
}

/**
 * Before anything disruptive: does the update change anything? When the stack already matches the
 * code (a re-run after an `up` that completed, or a release already deployed), cancelling
 * computations and draining workers would only hurt: the runbook's steps are skipped.
 */
export const planUpdate: Step<RunContext> = {
  id: "plan-update",
  title: "Check what the update changes",
  readOnly: true,
  async run(ctx) {
    const events: EngineEvent[] = [];
    const show = engineEvents(ctx, "plan-update");
    ctx.planInputs = await planInputs(ctx);
    const plan = await pulumiCall("preview the update", () =>
      ctx.stack!.preview({ message: ctx.options.message, onEvent: (event) => (events.push(event), show(event)) }),
    );
    // This preview is the one confirmed at confirm-plan, and still the plan at `preview` unless its inputs change.
    ctx.preview = plan;
    ctx.planEvents = events;
    ctx.plannedOperations = operationsOf(events);
    const changes = plan.changeSummary as Record<string, number>;
    // A replacement whose delete failed (an ASG held by protected instances) leaves the old
    // resource in the state marked for deletion: the preview does not count it, but the next `up`
    // deletes it, so the stack is not up to date and the runbook must run first.
    // (the state read at select-stack: a preview does not change it, nor do the steps since, but repair, which reads it again)
    const leftovers = pendingDeletes(ctx.state!);
    const none = leftovers.length === 0 && Object.entries(changes).every(([op, n]) => op === "same" || n === 0);
    const summary = `${formatChanges(changes)}${leftovers.length ? `; ${leftovers.length} replaced resource(s) still to delete (${leftovers.join(", ")})` : ""}`;
    if (ctx.options.dryRun && ctx.options.release && !(await checkoutRelease.check!(ctx))) {
      return `${summary} for the current checkout; release ${ctx.options.release} is not checked out in a dry run`;
    }
    ctx.upToDate = none;
    return none ? "no changes: the stack already matches the code" : summary;
  },
};

/**
 * What a preview depends on besides the stack's state: the checked-out commit (a release checkout,
 * `npm ci`), the project and stack config files (`pulumi config refresh -f`, an edit). When these
 * are the same at the `preview` step as at plan-update, plan-update's preview is still the plan.
 * The runbook's steps between them (cancel, drain, unprotect, alarms) change AWS, not the program's
 * inputs or the stack's state, and a preview does not refresh: they cannot change the plan.
 */
export async function planInputs(ctx: RunContext): Promise<string> {
  const { cwd, stack } = ctx.options;
  const head = await run("git", ["rev-parse", "HEAD"], { cwd }).then((r) => r.stdout.trim(), () => "no git");
  const files = projectFileHashes(cwd, stack);
  return [head, files.project ?? "-", files.stack ?? "-", files.lockfile ?? "-"].join(" ");
}

/** The step, skipped (recorded as such) when plan-update found nothing to change. */
export function unlessUpToDate(step: Step<RunContext>): Step<RunContext> {
  return {
    ...step,
    check: async (ctx) => (ctx.upToDate ? "nothing to update" : step.check?.(ctx)),
  };
}

/** Engine events for the event stream; the SDK's debug tracing (every RPC it makes) is left out. */
export const engineEvents = (ctx: RunContext, step: string) => (event: EngineEvent) => {
  if ((event.diagnosticEvent?.severity as string | undefined) === "debug") return;
  ctx.emit({ type: "engine", step, event });
};

export const up: Step<RunContext> = {
  id: "up",
  title: "Apply the update (pulumi up)",
  plan: async (ctx) => `would apply: ${formatChanges(ctx.changes ?? {})}`,
  async run(ctx) {
    let summary: Record<string, number> | undefined;
    let rootOutputs: Record<string, unknown> | undefined;
    // resources the update changed before it ended (a failed `up` that changed some can be rolled back)
    let applied = 0;
    const show = engineEvents(ctx, "up");
    try {
      await pulumiCall(
        "apply the update (pulumi up)",
        () =>
          withoutReadBack(ctx.stack!).up({
            message: ctx.options.message,
            onEvent: (event) => {
              if (event.summaryEvent) summary = event.summaryEvent.resourceChanges as Record<string, number>;
              const res = event.resOutputsEvent?.metadata;
              if (res?.type === "pulumi:pulumi:Stack" && res.new?.outputs) rootOutputs = res.new.outputs;
              if (res && res.type !== "pulumi:pulumi:Stack" && res.op !== "same" && res.op !== "read") applied++;
              show(event);
            },
            signal: ctx.signal,
          }),
        "see the engine events above; the stack holds what was applied before the failure",
      );
    } catch (err) {
      if (applied > 0 && !ctx.signal?.aborted) {
        // changes were applied: like a failed verification, a rollback may undo them (its outputs are the state's now)
        ctx.failedAfterUp = `\`pulumi up\` failed after changing ${applied} resource(s): ${describeError(err).split("\n")[0]}`;
        ctx.outputs = await readState(ctx).then(outputsOf, () => ctx.outputs);
      }
      throw err;
    }
    // the outputs after the update, secrets masked: from the root stack's outputs event, or else the state
    ctx.outputs = rootOutputs
      ? outputsFrom(rootOutputs)
      : outputsOf(await readState(ctx));
    summary ??= (await pulumiCall("read the update's summary", () => ctx.stack!.info()))?.resourceChanges as Record<string, number> | undefined;
    const confirmed = ctx.changes ?? {};
    ctx.changes = summary ?? {};
    // `up` is not held to the confirmed plan (`pulumi up --plan` is still experimental, README):
    // when what it did differs from what was confirmed, the operator is told.
    if (changeKey(confirmed) !== changeKey(ctx.changes)) {
      ctx.emit({ type: "note", step: "up", message: `the update did ${formatChanges(ctx.changes)}; the confirmed preview planned ${formatChanges(confirmed)}` });
    }
    return formatChanges(ctx.changes);
  },
};

export const changeKey = (changes: Record<string, number>) => Object.entries(changes).filter(([op, n]) => n > 0 && op !== "same").map(([op, n]) => `${op}:${n}`).sort().join(",");

export function formatChanges(changes: Record<string, number>): string {
  const parts = Object.entries(changes).filter(([, n]) => n > 0).map(([op, n]) => `${n} ${op}`);
  return parts.join(", ") || "no changes";
}

