import type { EngineEvent } from "@pulumi/pulumi/automation";

/** Every event a run reports, in order; `--json` prints one per line. */
export type StepStatus = "done" | "skipped" | "failed";

export interface StepRecord {
  step: string;
  title: string;
  status: StepStatus;
  durationMs: number;
  /** What the step found or did, for people ("3 instances unprotected", "already drained"). */
  note?: string;
  error?: string;
}

export type UpgradeEvent =
  | { type: "run-start"; runId: string; stack: string; runbook: string; dryRun: boolean; cwd: string; time: string }
  | { type: "step-start"; step: string; title: string; time: string }
  | { type: "step-end"; step: string; status: StepStatus; durationMs: number; note?: string; error?: string }
  | { type: "progress"; step: string; message: string; data?: Record<string, unknown> }
  | { type: "note"; step?: string; message: string }
  | { type: "engine"; step: string; event: EngineEvent }
  /** Recorded before something is suspended (alarm actions, maintenance mode...), and when it is restored. */
  | { type: "suspend"; step: string; what: string; items: string[] }
  | { type: "restore"; step: string; what: string; items: string[] }
  | {
      type: "summary";
      status: "succeeded" | "failed";
      exitCode: number;
      durationMs: number;
      steps: StepRecord[];
      changes?: Record<string, number>;
      error?: string;
      hint?: string;
    };

export type EventSink = (event: UpgradeEvent) => void;
