import type { StepRecord, UpgradeEvent } from "../lib/events";

/**
 * The run as a timeline: when each step started and ended, which were waits, and the disruption
 * window (the first disruptive step that ran → the last step that ran after it, the alarms'
 * restore). Pure: from the events of a run (live, or read back from its journal). The report draws
 * it as a Mermaid gantt; the journal's `disruption` figure and the expected duration of a run in a
 * maintenance window come from the same function.
 */
export interface TimedStep extends StepRecord {
  startMs: number;
  /** Waited on the world (a poll with a deadline): drain, health, bake. */
  wait: boolean;
}

export interface DisruptionWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
  /** The step it begins with and the one it ends with. */
  from: string;
  to: string;
}

/** Steps that disrupt the deployment (or begin to): the runbooks' steps before `up`, and `up`. */
export const DISRUPTIVE_STEPS: ReadonlySet<string> = new Set([
  "cancel-computations",
  "wait-idle-workers",
  "restore-point",
  "remove-scale-in-protection",
  "suspend-alarms",
  "up",
]);

/** The steps of a run with their start instants: each step-start paired with its step-end. */
export function timedSteps(events: ReadonlyArray<UpgradeEvent & { at?: string }>): TimedStep[] {
  const steps: TimedStep[] = [];
  let open: { step: string; startMs: number; wait: boolean } | undefined;
  for (const e of events) {
    if (e.type === "step-start") open = { step: e.step, startMs: Date.parse(e.time), wait: e.step.startsWith("wait-") };
    else if (e.type === "progress" && open?.step === e.step && typeof e.data?.timeoutMs === "number") open.wait = true;
    else if (e.type === "step-end" && open?.step === e.step) {
      const { type: _t, at: _a, ...record } = e as typeof e & { at?: string };
      steps.push({ ...(record as StepRecord), startMs: open.startMs, wait: open.wait });
      open = undefined;
    }
  }
  return steps;
}

/**
 * From the start of the first disruptive step that ran (done or failed, not skipped) to the end of
 * the last step that ran after it (restore-alarms, which always runs; `up` or its verification
 * when the runbook suspends nothing). Undefined: nothing disruptive ran (a dry run, up to date,
 * refused before the drain).
 */
export function disruptionWindow(steps: readonly TimedStep[]): DisruptionWindow | undefined {
  const first = steps.findIndex((s) => DISRUPTIVE_STEPS.has(s.step) && s.status !== "skipped");
  if (first < 0) return undefined;
  const last = steps.slice(first).filter((s) => s.status !== "skipped").at(-1)!;
  const startMs = steps[first]!.startMs;
  const endMs = last.startMs + last.durationMs;
  return { startMs, endMs, durationMs: endMs - startMs, from: steps[first]!.step, to: last.step };
}

/** A duration without colons (a colon would end a gantt task's name): "850 ms", "12.3 s", "4 min 05 s", "1 h 02 min". */
export function shortDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A task name Mermaid's gantt grammar takes: no `:` (it ends the name), `;` or `#` (comments, entities). */
const taskName = (text: string) => text.replace(/[:;#\n\r]+/g, " ").replace(/\s+/g, " ").trim();

/**
 * A Mermaid `gantt` block (GitHub renders it): one bar per step (done, `crit` when it failed,
 * `active` instead of `done` when it waited on the world), and the disruption window as a `crit` bar of its own.
 * Instants are epoch milliseconds (`dateFormat x`). No `title`: the report's heading names the
 * run (and Mermaid sanitizes titles with DOMPurify, which needs a browser).
 */
export function renderGantt(steps: readonly TimedStep[], disruption: DisruptionWindow | undefined): string {
  const lines = ["```mermaid", "gantt", "  dateFormat x", "  axisFormat %H:%M:%S", "  section Steps"];
  steps.forEach((s, i) => {
    // a wait is drawn `active` rather than `done`, to stand out among the steps
    const tags = [s.status === "failed" ? "crit" : s.status === "done" && !s.wait ? "done" : undefined, s.wait ? "active" : undefined].filter(Boolean);
    const name = taskName(`${s.step} ${s.status === "done" ? "" : `(${s.status}) `}${s.wait ? "wait " : ""}${shortDuration(s.durationMs)}`);
    lines.push(`  ${name} :${[...tags, `s${i}`, s.startMs, s.startMs + s.durationMs].join(", ")}`);
  });
  if (disruption) {
    lines.push("  section Disruption", `  ${taskName(`${disruption.from} to ${disruption.to} ${shortDuration(disruption.durationMs)}`)} :crit, disruption, ${disruption.startMs}, ${disruption.endMs}`);
  }
  lines.push("```");
  return lines.join("\n");
}
