import type { UpgradeEvent } from "../../lib/events";

/** Events of synthetic runs, for the timeline's tests (unit and Mermaid oracle). */
export const T0 = Date.parse("2026-12-12T01:00:00Z");
export type Spec = [step: string, status: "done" | "skipped" | "failed", startS: number, durationS: number, waited?: boolean];

/** The events of a run whose steps started and lasted as given (seconds after T0). */
export function runEvents(specs: Spec[], status: "succeeded" | "failed" = "succeeded"): UpgradeEvent[] {
  const events: UpgradeEvent[] = [{ type: "run-start", runId: "r", stack: "prod", runbook: "auto", dryRun: false, cwd: "/p", time: new Date(T0).toISOString() }];
  for (const [step, st, startS, durationS, waited] of specs) {
    events.push({ type: "step-start", step, title: step, time: new Date(T0 + startS * 1000).toISOString() });
    events.push({ type: "engine", step, event: { sequence: 1, timestamp: 0 } });
    if (waited) events.push({ type: "progress", step, message: "…", data: { elapsedMs: 1, timeoutMs: 60_000 } });
    events.push({ type: "step-end", step, title: step, status: st, durationMs: durationS * 1000, ...(st === "failed" ? { error: "could not x: y" } : {}) });
  }
  events.push({ type: "summary", status, exitCode: status === "succeeded" ? 0 : 3, durationMs: 1, steps: [] });
  return events;
}

export const codeOcean: Spec[] = [
  ["select-stack", "done", 0, 2],
  ["lock-stack", "done", 2, 1],
  ["plan-update", "done", 3, 10],
  ["confirm-plan", "done", 13, 1],
  ["cancel-computations", "done", 14, 3],
  ["wait-idle-workers", "done", 17, 120],
  ["restore-point", "done", 137, 4],
  ["remove-scale-in-protection", "done", 141, 2],
  ["suspend-alarms", "done", 143, 1],
  ["preview", "done", 144, 1],
  ["up", "done", 145, 300],
  ["verify-deployment", "done", 445, 60, true],
  ["restore-alarms", "done", 505, 2],
];

