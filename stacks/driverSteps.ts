import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { EngineEvent, Stack, Workspace } from "@pulumi/pulumi/automation";
import { badInput, describe as describeError, refused, UpgradeError } from "../lib/errors";
import type { Step } from "../lib/steps";
import { likelyPulumiBinDir, pulumiCommand } from "../lib/toolchain";
import { withCompileCache } from "../lib/compileCache";
import type { RunContext, Runbook } from "./context";
import { codeOceanPrivateCloud } from "./runbooks/codeocean-private-cloud";
import { codeOceanTargets, readsSecretOutputs } from "./runbooks/codeocean/targets";
import { configuredValue, outputsFrom, outputsOf, pendingDeletes, readStackState } from "./stackState";
import { expectedDisruption, lastRun, lastRunInBackend, newerRun, recentRuns, recentRunsInBackend } from "./journal";
import { checkWindow as checkWindows, formatInstant, formatSpan, parseWindows, type ExpectedDuration } from "./windows";
import { formatDuration } from "../lib/wait";
import * as os from "node:os";
import { backendKind, lockKey, workspaceBackend } from "./backend";
import { acquireRunLock, describeHolder, describeLock, engineLocks, processAlive } from "./lock";

const run = promisify(execFile);

/** The runbooks the driver knows, by name (`--runbook`, config key `upgrade:runbook`). */
export const RUNBOOKS: Record<string, Runbook> = { [codeOceanPrivateCloud.name]: codeOceanPrivateCloud };

/**
 * How long the disruptive part of this run is expected to take: --expected-duration, else the
 * journal's earlier runs: this machine's, and once lock-stack knows the backend, every machine's
 * (a pipeline's fresh machine has no local journal).
 */
export async function expectedDuration(ctx: RunContext): Promise<ExpectedDuration | undefined> {
  if (ctx.options.expectedDurationMs !== undefined) return { ms: ctx.options.expectedDurationMs, source: "--expected-duration" };
  const runs = new Map(recentRuns(ctx.env, ctx.options.cwd, ctx.options.stack, 20, ctx.runId).map((r) => [r.runId, r]));
  const store = ctx.backend?.store;
  if (store) for (const r of await recentRunsInBackend(store, ctx.backend!.project, ctx.options.stack, 20, ctx.runId)) if (!runs.has(r.runId)) runs.set(r.runId, r);
  const journaled = expectedDisruption([...runs.values()].sort((a, b) => (a.runId < b.runId ? 1 : -1)));
  return journaled && { ms: journaled.ms, source: `the longest disruption of this stack's last successful update${journaled.runIds.length > 1 ? "s" : ""} in the journal: ${journaled.runIds.join(", ")}` };
}

/**
 * --window: the run starts only inside a maintenance window, and only when its expected duration
 * fits before the window's end (refused, exit 3, before anything changed). A dry run says what a
 * real run would meet, and goes on.
 */
function windowStep(id: string, title: string, when: (ctx: RunContext) => boolean): Step<RunContext> {
  return {
    id,
    title,
    readOnly: true,
    when: (ctx) => ctx.options.windows.length > 0 && when(ctx),
    async run(ctx) {
      const windows = parseWindows(ctx.options.windows);
      const expected = await expectedDuration(ctx);
      ctx.windowExpected = expected ?? null;
      const now = ctx.options.now();
      try {
        ctx.window = checkWindows(windows, now, expected);
      } catch (err) {
        if (ctx.options.dryRun && err instanceof UpgradeError && err.exitCode === 3) return `dry run: a run now would be refused: ${err.why}`;
        throw err;
      }
      const end = formatInstant(ctx.window.endMs, ctx.window.timeZone);
      const expectation = expected ? `expected ${formatDuration(expected.ms)} (${expected.source})` : "no expected duration (no successful update in the journal, no --expected-duration): only the drain is held to the window";
      return `in the window ${ctx.window.specs.map((s) => JSON.stringify(s)).join(" + ")} until ${end} (${formatSpan(ctx.window.endMs - now)} left); ${expectation}`;
    },
  };
}

export const checkWindow = windowStep("check-window", "Check the maintenance window", () => true);
/**
 * After the plan's confirmation: a person's answer may have taken the run out of its window; and a
 * run that found no earlier update in this machine's journal now reads the backend's.
 */
export const checkWindowAgain = windowStep(
  "check-window-again",
  "Check the maintenance window again",
  (ctx) => !ctx.options.dryRun && (!ctx.options.yes || (ctx.windowExpected === null && ctx.backend?.store !== undefined)),
);

export const selectStack: Step<RunContext> = {
  id: "select-stack",
  title: "Select the stack",
  readOnly: true,
  async run(ctx) {
    const { cwd, stack } = ctx.options;
    if (!fs.existsSync(path.join(cwd, "Pulumi.yaml")) && !fs.existsSync(path.join(cwd, "Pulumi.yml"))) {
      throw badInput(`open the Pulumi project in ${cwd}`, "there is no Pulumi.yaml there", "pass --cwd <the deployment's project directory>");
    }
    // Two CLI starts, `pulumi version` and one `stack export`, overlap the loading of the
    // Automation API, the largest part of a start. Both start at once, the export with the CLI that
    // the version check will most likely accept (it starts again if the check chose another).
    // The export is also what finds the stack: `pulumi stack select` would be a third start to
    // learn the same, and the Automation API passes --stack to every command anyway.
    const guess = likelyPulumiBinDir(ctx.env);
    const early = guess ? readStackState(guess, cwd, ctx.env, stack) : undefined;
    early?.catch(() => undefined); // awaited below, or replaced
    const cli = pulumiCommand(ctx.env);
    cli.catch(() => undefined); // awaited below
    const { LocalWorkspace, Stack } = await import("@pulumi/pulumi/automation");
    const { command, install } = await cli;
    ctx.pulumiBinDir = install.binDir;
    try {
      ctx.state = await (early && guess === install.binDir ? early : readStackState(install.binDir, cwd, ctx.env, stack));
    } catch (err) {
      const message = (err as Error).message ?? "";
      const backendProblem = /NoSuchBucket|InvalidAccessKeyId|AccessDenied|SignatureDoesNotMatch|ExpiredToken|NoCredentialProviders|failed to refresh cached credentials|no EC2 IMDS role found|StatusCode: 403/.exec(message);
      if (backendProblem) {
        const backend = ctx.env.PULUMI_BACKEND_URL ?? "the backend of this project (Pulumi.yaml backend.url or pulumi login)";
        throw badInput(
          `open the Pulumi backend of stack ${stack}`,
          firstErrorLine(message),
          backendProblem[0] === "NoSuchBucket"
            ? `the bucket of ${backend.split("?")[0]} does not exist: check the backend URL (PULUMI_BACKEND_URL / pulumi login)`
            : `the AWS credentials in use cannot read ${backend.split("?")[0]}: check AWS_PROFILE / AWS_ACCESS_KEY_ID and the bucket's policy`,
        );
      }
      if (/no stack named|not found/i.test(message)) {
        const ws = await LocalWorkspace.create({ workDir: cwd, pulumiCommand: command, envVars: ctx.env });
        const names = (await ws.listStacks().catch(() => [])).map((s) => s.name);
        throw badInput(`select the stack ${stack}`, "no stack of that name in this project's backend", `known stacks: ${names.join(", ") || "none"}; check PULUMI_BACKEND_URL / pulumi login`);
      }
      throw new UpgradeError({ what: `read the state of stack ${stack}`, why: firstErrorLine(message), cause: err });
    }
    const workspace = await LocalWorkspace.create({ workDir: cwd, pulumiCommand: command, envVars: withCompileCache(ctx.env) });
    ctx.stack = await Stack.select(stack, foundStack(workspace));
    return `${stack} in ${cwd} (pulumi v${install.version}, ${install.source})`;
  },
};

/**
 * The workspace, for `Stack.select` once the state read has found the stack: its `selectStack`
 * (`pulumi stack select`, which only checks that the stack exists and makes it the project's
 * current one) is answered as done; every other member is the workspace's own.
 */
function foundStack(workspace: Workspace): Workspace {
  return Object.create(workspace, { selectStack: { value: async () => undefined } }) as Workspace;
}

/** The stack's state read again (one `stack export`, secrets left encrypted), after select-stack's first read. */
const readState = (ctx: RunContext) => pulumiCall("read the stack's state", () => readStackState(ctx.pulumiBinDir!, ctx.options.cwd, ctx.env, ctx.options.stack));

/** The stack's backend as the Pulumi CLI resolves it, and a store for our objects beside its state. */
async function openBackend(ctx: RunContext): Promise<NonNullable<RunContext["backend"]>> {
  return (ctx.backend ??= await workspaceBackend(ctx.stack!.workspace, ctx.env));
}

export const lockStack: Step<RunContext> = {
  id: "lock-stack",
  title: "Lock the stack for this run",
  readOnly: true, // a dry run only looks at the lock
  async run(ctx) {
    const { url, project, store } = await openBackend(ctx);
    if (!store) {
      const where = backendKind(url) === "cloud" ? `Pulumi Cloud (${url || "app.pulumi.com"})` : url;
      return `not held: the backend ${where} keeps no run lock or journal of ours; Pulumi's own update lock applies`;
    }
    const key = lockKey(project, ctx.options.stack);
    if (ctx.options.dryRun) return `${await describeLock(store, key)} (a dry run does not take it)`;
    ctx.lock = await acquireRunLock(store, key, ctx.runId, ctx.options.forceUnlock);
    if (ctx.lock.tookOver) {
      const how = ctx.options.forceUnlock ? "--force-unlock: took over" : "took over (its process has exited)";
      ctx.emit({ type: "note", step: "lock-stack", message: `${how} the stale run lock of ${describeHolder(ctx.lock.tookOver)}` });
    }
    // the journal goes beside the state from here on; the last run may have been on another machine
    ctx.journal?.mirrorTo(store, project, ctx.options.stack);
    const previous = newerRun(lastRun(ctx.env, ctx.options.cwd, ctx.options.stack, ctx.runId, true), await lastRunInBackend(store, project, ctx.options.stack, ctx.runId));
    if (previous?.status === "running") {
      ctx.resumeFrom = previous;
      const suspended = Object.entries(previous.stillSuspended).map(([what, items]) => `${what}: ${items.join(", ")}`).join("; ");
      ctx.emit({
        type: "note",
        step: "lock-stack",
        message: `resuming after run ${previous.runId}, which stopped ${previous.unfinishedStep ? `during ${previous.unfinishedStep}` : "between steps"} without finishing${suspended ? `; it left suspended: ${suspended}` : ""}`,
      });
    }
    return `locked (${ctx.lock.location})`;
  },
};

/**
 * An `up` that was killed leaves Pulumi's lock on the stack and pending operations in its state;
 * the next `up` would then fail ("the stack is currently locked"). This step finds both, explains
 * them, and clears them with Pulumi's own tools (`pulumi cancel`, `pulumi refresh
 * --clear-pending-creates`): by itself when the evidence is certain (the lock's process on this
 * host is gone, and our journal shows our run died in `up`), otherwise only with --repair.
 */
export const repairInterruptedUpdate: Step<RunContext> = {
  id: "repair-interrupted-update",
  title: "Check for an interrupted update",
  readOnly: true, // a dry run reports; it repairs nothing
  async run(ctx) {
    const stack = ctx.stack!;
    const pending = ctx.state!.pendingOperations;
    const { project, store } = await openBackend(ctx);
    const locks = store ? await engineLocks(store, project, ctx.options.stack) : [];
    if (pending.length === 0 && locks.length === 0) return "none";
    const here = os.hostname();
    const running = locks.filter((l) => l.hostname === here && processAlive(l.pid));
    if (running.length > 0) {
      throw refusedRun(`a Pulumi operation is running on this stack (pid ${running[0]!.pid} on ${here} since ${running[0]!.timestamp})`, "wait for it to finish");
    }
    const what = [
      ...locks.map((l) => `Pulumi's lock from pid ${l.pid} on ${l.hostname} (${l.timestamp}${l.hostname === here ? ", process gone" : ", another host"})`),
      ...pending.map((p) => `pending ${p.type} of ${p.resource.urn.split("::").slice(-2).join(" ")}`),
    ];
    const plan = `${locks.length ? "pulumi cancel (removes the lock)" : ""}${locks.length && pending.length ? ", then " : ""}${pending.length ? "pulumi refresh --clear-pending-creates (reads the real state of pending resources; a resource whose create was interrupted is dropped from the state and may need `pulumi import`)" : ""}`;
    ctx.emit({ type: "note", step: "repair-interrupted-update", message: `an earlier update was interrupted and left: ${what.join("; ")}. Repair: ${plan}` });
    if (ctx.options.dryRun) return `dry run: would ${plan}`;
    const certain = locks.every((l) => l.hostname === here) && (pending.length === 0 || ctx.resumeFrom?.unfinishedStep === "up");
    if (!certain && !ctx.options.repair) {
      throw refusedRun(`an interrupted update left ${what.join("; ")}`, `check that no pulumi command is running on it anywhere, then re-run with --repair (${plan})`);
    }
    if (locks.length > 0) await stack.cancel();
    if (pending.length > 0) {
      await pulumiCall("refresh the stack after the interrupted update", () =>
        stack.refresh({ clearPendingCreates: true, onEvent: (event) => ctx.emit({ type: "engine", step: "repair-interrupted-update", event }) }),
      );
    }
    ctx.state = await readState(ctx);
    return `repaired: ${plan}`;
  },
};

function refusedRun(why: string, hint: string): UpgradeError {
  return refused("start the update", why, hint);
}

/**
 * `pulumi config refresh -f`, where the runbook asks for it (Code Ocean's step 3: the deployment's
 * config lives with its last deployment). Elsewhere the local stack config is the change being
 * applied (an own stack's new `version`), and refreshing would silently revert it.
 */
export const refreshConfig: Step<RunContext> = {
  id: "refresh-config",
  title: "Refresh the stack config",
  check: async (ctx) => (ctx.runbook?.refreshConfig ? undefined : `runbook ${ctx.runbook?.name ?? "none"}: the local stack config is what this run applies`),
  plan: async () => "would run `pulumi config refresh -f` (rewrites the local Pulumi.<stack>.yaml)",
  async run(ctx) {
    try {
      await pulumiCall("refresh the stack config (pulumi config refresh -f)", () => ctx.stack!.refreshConfig());
    } catch (err) {
      if (err instanceof UpgradeError && /no previous deployment/.test(err.why)) return "no previous deployment: the local config is the only config";
      throw err;
    }
    return "local config replaced by the config of the last deployment";
  },
};

export const readOutputs: Step<RunContext> = {
  id: "read-outputs",
  title: "Read the stack outputs",
  readOnly: true,
  async run(ctx) {
    ctx.outputs = outputsOf(ctx.state!);
    const configured = ctx.options.runbook !== "auto" ? ctx.options.runbook : await configuredRunbook(ctx);
    const name = configured ?? (ctx.outputs.ec2ServicesInstanceId ? codeOceanPrivateCloud.name : "none");
    if (name !== "none") {
      ctx.runbook = RUNBOOKS[name];
      if (!ctx.runbook) throw badInput("choose the runbook", `unknown runbook ${JSON.stringify(name)}`, `known: ${Object.keys(RUNBOOKS).join(", ")}, none`);
    }
    if (ctx.runbook === codeOceanPrivateCloud) {
      // the export leaves secrets encrypted: decrypt the outputs only when the runbook reads a secret one
      if (readsSecretOutputs(ctx.outputs)) ctx.outputs = await pulumiCall("read the stack outputs", () => ctx.stack!.outputs());
      const { targets, notes } = codeOceanTargets(ctx.outputs);
      ctx.deployment = targets;
      for (const message of notes) ctx.emit({ type: "note", step: "read-outputs", message });
      // a bad SSH config (unreadable, weak StrictHostKeyChecking...) is refused before anything changes
      // loaded here: node-ssh and the SSH config parser are for the Code Ocean runbook only
      (await import("./runbooks/codeocean/cancelComputations")).checkSshConfig(ctx);
      return `runbook ${name}: services ${targets.servicesInstanceId}, workers ${targets.workerAsgs.map((a) => `${a.name} (${a.output})`).join(", ") || "none"}`;
    }
    return `runbook none: ${Object.keys(ctx.outputs).length} outputs`;
  },
};

/** Config key `upgrade:runbook`, read from the stack's files (no CLI start); an encrypted value through the CLI. */
async function configuredRunbook(ctx: RunContext): Promise<string | undefined> {
  const project = await ctx.stack!.workspace.projectSettings();
  const value = configuredValue(ctx.options.cwd, ctx.options.stack, "upgrade:runbook", project as { stackConfigDir?: string; config?: Record<string, unknown> });
  if (value !== "secure") return value;
  return (await pulumiCall("read config upgrade:runbook", () => ctx.stack!.getConfig("upgrade:runbook"))).value;
}

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
  plan: async (ctx) => `would git checkout ${releaseToCheckOut(ctx)} and npm ci${ctx.resumedRollback ? ` (finishing the rollback of run ${ctx.resumedRollback.runId})` : ""}`,
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
  const files = ["Pulumi.yaml", "Pulumi.yml", `Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`, "package-lock.json"].map((f) => {
    try {
      return `${f}:${createHash("sha256").update(fs.readFileSync(path.join(cwd, f))).digest("hex")}`;
    } catch {
      return `${f}:-`;
    }
  });
  return [head, ...files].join(" ");
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

/**
 * The stack, for one `up`: `Stack.up()` ends by reading back the outputs (`pulumi stack output`,
 * twice: plain and with secrets) and the update's summary (`pulumi stack history`), three CLI starts
 * and 0.8 s after every update, all of it decrypted. The driver needs neither read: the engine's
 * summary event carries the resource changes, and the root stack's outputs event the outputs
 * (secrets masked). So `up` runs on a view of the stack whose `outputs` and `info` answer nothing (its
 * result's `outputs` and `summary` are not used); every other member is the stack's own.
 */
function withoutReadBack(stack: Stack): Stack {
  return Object.create(stack, {
    outputs: { value: async () => ({}) },
    info: { value: async () => undefined },
  }) as Stack;
}

export const changeKey = (changes: Record<string, number>) => Object.entries(changes).filter(([op, n]) => n > 0 && op !== "same").map(([op, n]) => `${op}:${n}`).sort().join(",");

export function formatChanges(changes: Record<string, number>): string {
  const parts = Object.entries(changes).filter(([, n]) => n > 0).map(([op, n]) => `${n} ${op}`);
  return parts.join(", ") || "no changes";
}

/**
 * Runs one Automation API call and turns its failure into an error for people. A wrong or missing
 * passphrase is bad input (exit 2), with the hint the operator needs.
 */
export async function pulumiCall<T>(what: string, call: () => Promise<T>, hint?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const why = pulumiErrors(err);
    if (/passphrase/i.test(why)) {
      throw new UpgradeError({ what, why, hint: "check PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) for this stack", exitCode: 2, permanent: true, cause: err });
    }
    // A workflow provider's safety refusal (its message starts with "refused:") keeps exit code 3.
    const refusedByProvider = /(^|; )refused: /.test(why);
    throw new UpgradeError({ what, why, hint, cause: err, ...(refusedByProvider ? { exitCode: 3, permanent: true } : {}) });
  }
}

function firstErrorLine(message: string): string {
  return message.split("\n").map((l) => l.trim()).find((l) => /^error:/i.test(l))?.replace(/^error:\s*/i, "") ?? message.split("\n")[0] ?? message;
}

/**
 * The engine's own error lines from a failed preview/up, without the CLI's framing. A program
 * that threw ("failed with an unhandled exception:") is followed by its exception's message,
 * indented on the next lines: that message is what the operator needs (not its stack trace).
 */
export function pulumiErrors(err: unknown): string {
  const text = String((err as { stderr?: string }).stderr ?? "") + "\n" + String((err as Error).message ?? err);
  const all = text.split("\n");
  const found: string[] = [];
  all.forEach((raw, i) => {
    const line = raw.trim();
    if (!/^error:/.test(line) || /^error:\s*(update|preview) failed$/.test(line)) return;
    let message = line.replace(/^error:\s*/, "");
    // The detail a framing line announces, on the lines after it: a thrown exception's message,
    // or a provider's errors ("1 error occurred:" then "* updating urn:…: <message>").
    if (/(unhandled exception|errors? occurred):?$/.test(message)) {
      const detail: string[] = [];
      for (const next of all.slice(i + 1)) {
        const t = next.trim();
        if (!t || /^at /.test(t) || /^error:/.test(t)) break;
        const cleaned = t
          .replace(/^\*\s*/, "")
          .replace(/^(creating|updating|deleting|reading) urn:\S+:\s+/, "")
          .replace(/^\d+ errors? occurred:?\s*/, "")
          .replace(/^(Error|ConfigError):\s*/, "");
        if (cleaned) detail.push(cleaned);
      }
      if (detail.length > 0) message = /unhandled/.test(message) ? `the program failed: ${detail.join(" ")}` : detail.join(" ");
    }
    if (!found.includes(message)) found.push(message);
  });
  return found.join("; ") || firstErrorLine(text);
}
