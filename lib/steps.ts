import { describe, UpgradeError } from "./errors";
import type { EventSink, StepRecord } from "./events";

/**
 * A step of a runbook or workflow: check before act. `check` looks at the world and says why the
 * step is already done (or undefined); `run` acts and may return a note; `verify` confirms the
 * effect. In a dry run, steps that only read run for real; the others describe what they would do.
 */
export interface Step<C> {
  id: string;
  title: string;
  /** Reads only: safe to run in a dry run. */
  readOnly?: boolean;
  /** Runs even after an earlier step failed (restoring what the run suspended). */
  always?: boolean;
  /** Skipped unless this holds (e.g. checkout-release without --release). */
  when?: (ctx: C) => boolean;
  check?: (ctx: C) => Promise<string | undefined>;
  /** Dry run: what the step would do. */
  plan?: (ctx: C) => Promise<string>;
  run: (ctx: C) => Promise<string | void>;
  verify?: (ctx: C) => Promise<void>;
}

export interface RunStepsOptions {
  dryRun: boolean;
  emit: EventSink;
  signal?: AbortSignal;
}

export interface StepsOutcome {
  records: StepRecord[];
  /** The first failure, if any; later `always` steps have run regardless. */
  failure?: unknown;
}

/** Runs the steps in order; after a failure only `always` steps run. */
export async function runSteps<C>(steps: Array<Step<C>>, ctx: C, options: RunStepsOptions): Promise<StepsOutcome> {
  const records: StepRecord[] = [];
  let failure: unknown;
  for (const step of steps) {
    if (step.when && !step.when(ctx)) continue;
    if (failure !== undefined && !step.always) continue;
    if (failure === undefined && options.signal?.aborted && !step.always) {
      failure = new UpgradeError({ what: `start step ${step.id}`, why: "the run was interrupted", exitCode: 130 });
      continue;
    }
    const started = Date.now();
    options.emit({ type: "step-start", step: step.id, title: step.title, time: new Date(started).toISOString() });
    const end = (record: Omit<StepRecord, "step" | "title" | "durationMs">) => {
      const full: StepRecord = { step: step.id, title: step.title, durationMs: Date.now() - started, ...record };
      records.push(full);
      options.emit({ type: "step-end", ...full });
    };
    try {
      const done = await step.check?.(ctx);
      if (done !== undefined) {
        end({ status: "skipped", note: done });
        continue;
      }
      if (options.dryRun && !step.readOnly) {
        end({ status: "skipped", note: `dry run: ${step.plan ? await step.plan(ctx) : `would ${step.title.toLowerCase()}`}` });
        continue;
      }
      const note = await step.run(ctx);
      await step.verify?.(ctx);
      end({ status: "done", note: note || undefined });
    } catch (err) {
      end({ status: "failed", error: describe(err) });
      failure ??= err;
    }
  }
  return { records, failure };
}
