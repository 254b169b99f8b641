import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createAwsClients, awsSettingsFromEnv, type AwsClients } from "../lib/aws";
import { describe, ExitCode, UpgradeError } from "../lib/errors";
import type { EventSink, StepRecord, UpgradeEvent } from "../lib/events";
import { notify, undeliveredNotes } from "../lib/notify";
import { createRedactor } from "../lib/redaction";
import { runSteps, type Step } from "../lib/steps";
import type { ConfirmRequest, RunContext } from "./context";
import type { UpgradeOptions } from "./options";

export type { ConfirmRequest };
import { checkWindow, checkWindowAgain, expectedDuration, lockStack, readOutputs, refreshConfig, repairInterruptedUpdate, selectStack } from "./driverSteps";
import { checkoutRelease, planUpdate, unlessUpToDate, up } from "./updateSteps";
import { confirmPlan, preview } from "./confirmation";
import { buildPlan, checkPlan } from "./plan";
import { renderPlan } from "./planMarkdown";
import { openJournal } from "./journal";
import { describeHolder } from "./lock";
import { renderReport } from "./report";
import { mergeEnv, resolveOptions } from "./options";
import { DEFAULTS } from "./defaults";

/** The defaults of `UpgradeOptions`. */
export { DEFAULTS };

export type { CodeOceanOptions, RunbookName, UpgradeOptions, UpgradeSshOptions } from "./options";

/** What a run ended with. `upgrade()` resolves with it whatever happened; it does not throw for a failed run. */
export interface UpgradeResult {
  /** Names the run's journal and report. */
  runId: string;
  status: "succeeded" | "failed";
  /** The CLI's exit code for this run (0, 1, 2, 3, 4 (rolled back) or 130). */
  exitCode: ExitCode;
  /** Every step that ran or was skipped, in order. */
  steps: StepRecord[];
  /** The preview's counts per operation, when a preview ran. */
  changes?: Record<string, number>;
  /** The stack's outputs after the run (secret ones as "[secret]"). */
  outputs?: Record<string, unknown>;
  /** Why the run failed: what was attempted, why, and what to do next. */
  error?: { message: string; what?: string; why?: string; hint?: string };
  /** The Markdown report. */
  report: string;
  /** Path of the run journal (JSON lines), read by `upgrade-orchestrator status`. */
  journal: string;
}

/**
 * Upgrades one stack: the driver's steps (select, lock, repair, read outputs, refresh config), the
 * plan and its confirmation (`confirm`), the detected runbook's steps before `up`, preview, `up`, the runbook's steps after it,
 * and a report. Resolves with the outcome; events stream to `options.onEvent` as they happen.
 */
export async function upgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const runId = `${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${randomUUID().slice(0, 8)}`;
  const started = Date.now();
  const env = mergeEnv(options.env);
  const redactor = createRedactor([env.PULUMI_CONFIG_PASSPHRASE, options.codeOcean?.ssh?.passphrase, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN]);
  const resolved = resolveOptions(options);
  const events: UpgradeEvent[] = [];
  const journal = openJournal(env, resolved.cwd, resolved.stack, runId);
  const emit: EventSink = (event) => {
    const clean = redactor.value(event);
    if (clean.type !== "engine") events.push(clean);
    journal.record(clean);
    options.onEvent?.(clean);
  };
  let aws: AwsClients | undefined;
  const ctx: RunContext = {
    runId,
    options: resolved,
    emit,
    redactor,
    signal: options.signal,
    env,
    aws: () => (aws ??= createAwsClients(awsSettingsFromEnv(env))),
    suspendedAlarms: [],
    journal,
  };
  const steps: StepRecord[] = [];
  ctx.records = steps;
  emit({ type: "run-start", runId, stack: resolved.stack, runbook: typeof resolved.runbook === "object" ? resolved.runbook.name : resolved.runbook, dryRun: resolved.dryRun, cwd: resolved.cwd, time: new Date(started).toISOString() });
  const webhooks = options.notify ?? [];
  const notifyOptions = { redactor, timeoutMs: options.notifyTimeoutMs, minBackoffMs: options.notifyBackoffMs };
  const startNotified = webhooks.length
    ? notify(webhooks, { event: "run-started", text: `upgrade of stack ${resolved.stack} started (run ${runId}${resolved.dryRun ? ", dry run" : ""})`, summary: { runId, stack: resolved.stack, cwd: resolved.cwd, dryRun: resolved.dryRun } }, notifyOptions)
    : Promise.resolve([]);

  let failure: unknown;
  const phase = async (list: Array<Step<RunContext>>) => {
    const outcome = await runSteps(list, ctx, { dryRun: resolved.dryRun, emit, signal: options.signal });
    steps.push(...outcome.records);
    failure ??= outcome.failure;
  };
  try {
    await phase([checkWindow, selectStack, lockStack, repairInterruptedUpdate, readOutputs, refreshConfig]);
    if (failure === undefined) {
      const runbook = ctx.runbook;
      const beforeUp = (runbook?.beforeUp ?? []).map(unlessUpToDate);
      await phase([checkoutRelease, planUpdate, checkPlan, unlessUpToDate(confirmPlan), unlessUpToDate(checkWindowAgain), ...beforeUp, preview, unlessUpToDate(up), ...(runbook?.afterUp ?? [])]);
    }
  } finally {
    const lost = ctx.lock?.lost();
    if (lost) emit({ type: "note", message: `the run lock was ${lost === "deleted" ? "deleted" : `taken over by ${describeHolder(lost)}`} while this run held it` });
    await ctx.lock?.release().catch((err) => emit({ type: "note", message: `could not release the run lock: ${describe(err)}` }));
    aws?.destroy();
  }
  if (failure === undefined && resolved.writePlan) failure = await writePlanFiles(ctx, steps, resolved.writePlan, env.GITHUB_STEP_SUMMARY);

  if (failure === undefined && ctx.resumedRollback && !resolved.dryRun) {
    // the rollback an interrupted run started is finished and verified: still not a successful upgrade
    const { to, runId: from } = ctx.resumedRollback;
    ctx.rolledBack = { to, verified: true };
    failure = new UpgradeError({
      what: "upgrade",
      why: `run ${from} failed after \`up\` and was interrupted while rolling back; this run finished the rollback to ${to}`,
      hint: resolved.release ? `the deployment runs ${to} again; to try ${resolved.release} once more, run the same command again` : `the deployment runs ${to} again`,
      permanent: true,
    });
  }
  const interrupted = options.signal?.aborted === true;
  const exitCode =
    failure === undefined ? ExitCode.Succeeded
    : interrupted ? ExitCode.Interrupted
    : ctx.rolledBack?.verified ? ExitCode.RolledBack
    : failure instanceof UpgradeError ? failure.exitCode : ExitCode.StepFailed;
  const status = failure === undefined ? "succeeded" : "failed";
  const error = failure === undefined ? undefined : errorSummary(failure, redactor.text);
  const restorePoints = ctx.restorePoints?.map((p) => ({ snapshotId: p.snapshotId, volumeId: p.volumeId, state: p.state, restore: p.restore }));
  if (error && ctx.rolledBack) {
    error.hint = `rolled back to ${ctx.rolledBack.to}${ctx.rolledBack.verified ? ", and the rollback verified" : ", but the rollback did NOT verify: see the rollback step"}${error.hint ? `; ${error.hint}` : ""}`;
  }
  if (error && ctx.failedAfterUp && restorePoints?.length) {
    error.hint = `${error.hint ? `${error.hint}; ` : ""}the data as it was before \`up\`: ${restorePoints.map((p) => `${p.snapshotId} (${p.state}): ${p.restore}`).join("; ")}`;
  }
  if (webhooks.length) {
    // the outcome is sent once it is final: after every step's own retries
    const ended = await notify(
      webhooks,
      {
        event: status === "succeeded" ? "run-succeeded" : "run-failed",
        text: `upgrade of stack ${resolved.stack} ${status} (exit ${exitCode}, run ${runId})${error ? `: ${error.message.split("\n")[0]}` : ""}`,
        summary: { runId, stack: resolved.stack, status, exitCode, durationMs: Date.now() - started, changes: ctx.changes, error: error?.message, steps: steps.map((s) => ({ step: s.step, status: s.status })) },
      },
      notifyOptions,
    );
    for (const message of [...undeliveredNotes(await startNotified, "start"), ...undeliveredNotes(ended, "outcome")]) emit({ type: "note", message });
  }
  emit({ type: "summary", status, exitCode, durationMs: Date.now() - started, steps, changes: ctx.changes, error: error?.message, hint: error?.hint, ...(ctx.rolledBack ? { rolledBack: ctx.rolledBack } : {}), ...(restorePoints ? { restorePoints } : {}) });
  const report = renderReport({ runId, options: resolved, status, exitCode, steps, changes: ctx.changes, error, events, durationMs: Date.now() - started, restorePoints, rolledBack: ctx.rolledBack });
  writeReports(report, options.reportPath, env.GITHUB_STEP_SUMMARY, emit);
  const notMirrored = await journal.flush();
  if (notMirrored) options.onEvent?.({ type: "note", message: `the journal could not be written to the backend (${redactor.text(notMirrored)}); the local copy is ${journal.path}` });
  ctx.backend?.store?.close();
  const outputs = ctx.outputs && Object.fromEntries(Object.entries(ctx.outputs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value]));
  return { runId, status, exitCode, steps, changes: ctx.changes, outputs, error, report, journal: journal.path };
}


/** `upgrade plan`: the plan as JSON and Markdown (redacted), also appended to the step summary; a failure to write fails the run. */
async function writePlanFiles(ctx: RunContext, steps: StepRecord[], file: string, stepSummary: string | undefined): Promise<unknown> {
  try {
    const plan = ctx.redactor.value(await buildPlan(ctx, steps, await expectedDuration(ctx)));
    const markdown = ctx.redactor.text(renderPlan(plan));
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(plan, null, 2) + "\n");
    const md = file.replace(/(\.json)?$/, ".md");
    fs.writeFileSync(md, markdown);
    if (stepSummary) fs.appendFileSync(stepSummary, markdown);
    ctx.emit({ type: "note", message: `plan written to ${file} (for review: ${md}); apply it with: upgrade apply ${file} --cwd <project>` });
    return undefined;
  } catch (err) {
    return err instanceof UpgradeError ? err : new UpgradeError({ what: `write the plan to ${file}`, why: describe(err), cause: err });
  }
}


function errorSummary(err: unknown, redact: (s: string) => string): UpgradeResult["error"] {
  if (err instanceof UpgradeError) return { message: redact(err.message), what: err.what, why: redact(err.why), hint: err.hint };
  return { message: redact(describe(err)) };
}

function writeReports(report: string, reportPath: string | undefined, stepSummary: string | undefined, emit: EventSink): void {
  for (const [file, append] of [[reportPath, false], [stepSummary, true]] as const) {
    if (!file) continue;
    try {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      (append ? fs.appendFileSync : fs.writeFileSync)(file, report);
    } catch (err) {
      emit({ type: "note", message: `could not write the report to ${file}: ${describe(err)}` });
    }
  }
}
