import * as fs from "node:fs";
import * as path from "node:path";
import { badInput, refused, UpgradeError } from "../lib/errors";
import type { Step } from "../lib/steps";
import { likelyPulumiBinDir, pulumiCommand } from "../lib/toolchain";
import { withCompileCache } from "../lib/compileCache";
import type { RunContext } from "./context";
import { checkRunbook, detectRunbook, loadRunbook } from "./runbooks/index";
import { configuredValue, outputsOf, readState, readStackState } from "./stackState";
import { firstErrorLine, pulumiCall } from "./pulumiCall";
import { foundStack } from "./sdkOverrides";
import { expectedDisruption, lastRun, lastRunInBackend, newerRun, recentRuns, recentRunsInBackend } from "./journal";
import { checkWindow as checkWindows, formatInstant, formatSpan, parseWindows, type ExpectedDuration } from "./windows";
import { formatDuration } from "../lib/wait";
import * as os from "node:os";
import { backendKind, lockKey, workspaceBackend } from "./backend";
import { acquireRunLock, describeHolder, describeLock, engineLocks, processAlive } from "./lock";

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
  return (
    journaled && {
      ms: journaled.ms,
      source: `the longest disruption of this stack's last successful update${journaled.runIds.length > 1 ? "s" : ""} in the journal: ${journaled.runIds.join(", ")}`,
      timeline: { runId: journaled.longest.runId, steps: journaled.longest.steps.map(({ step, status, durationMs }) => ({ step, status, durationMs })) },
    }
  );
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
      // a killed `up` on a file:// backend can leave the checkpoint torn: put Pulumi's backup back
      const { restoreTornCheckpoint } = await import("./checkpointRepair");
      const restored = await restoreTornCheckpoint(ctx, await LocalWorkspace.create({ workDir: cwd, pulumiCommand: command, envVars: ctx.env }), message);
      if (!restored) throw new UpgradeError({ what: `read the state of stack ${stack}`, why: firstErrorLine(message), cause: err });
      ctx.emit({ type: "note", step: "select-stack", message: restored });
      ctx.state = await readStackState(install.binDir, cwd, ctx.env, stack);
    }
    const workspace = await LocalWorkspace.create({ workDir: cwd, pulumiCommand: command, envVars: withCompileCache(ctx.env) });
    ctx.stack = await Stack.select(stack, foundStack(workspace));
    return `${stack} in ${cwd} (pulumi v${install.version}, ${install.source})`;
  },
};

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
  // `upgrade plan` refreshes for real: the plan must be of the config `up` will apply (it rewrites only the local file)
  plan: async (ctx) => (ctx.options.writePlan ? `${await refreshConfig.run(ctx)} (upgrade plan)` : "would run `pulumi config refresh -f` (rewrites the local Pulumi.<stack>.yaml)"),
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
    // the runbook asked for (an object, a name or a module path given to this run), else the stack's
    // config `upgrade:runbook` (a module path there is relative to the project), else detected
    const asked = ctx.options.runbook;
    if (typeof asked === "object") ctx.runbook = checkRunbook(asked, "upgrade({ runbook })");
    else if (asked !== "auto") ctx.runbook = await loadRunbook(asked, process.cwd());
    else {
      const configured = await configuredRunbook(ctx);
      ctx.runbook = configured !== undefined ? await loadRunbook(configured, ctx.options.cwd) : detectRunbook(ctx.outputs);
    }
    if (!ctx.runbook) return `runbook none: ${Object.keys(ctx.outputs).length} outputs`;
    return (await ctx.runbook.prepare?.(ctx)) ?? `runbook ${ctx.runbook.name}: ${Object.keys(ctx.outputs).length} outputs`;
  },
};

/** Config key `upgrade:runbook`, read from the stack's files (no CLI start); an encrypted value through the CLI. */
async function configuredRunbook(ctx: RunContext): Promise<string | undefined> {
  const project = await ctx.stack!.workspace.projectSettings();
  const value = configuredValue(ctx.options.cwd, ctx.options.stack, "upgrade:runbook", project as { stackConfigDir?: string; config?: Record<string, unknown> });
  if (value !== "secure") return value;
  return (await pulumiCall("read config upgrade:runbook", () => ctx.stack!.getConfig("upgrade:runbook"))).value;
}
