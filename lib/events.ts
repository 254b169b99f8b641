import type { EngineEvent } from "@pulumi/pulumi/automation";

/** How a step ended: `skipped` when its check found it already done (or a dry run). */
export type StepStatus = "done" | "skipped" | "failed";

/** One step of a run, as it ended; `UpgradeResult.steps` and the `summary` event list them. */
export type StepRecord = {
  /** Stable id, e.g. `wait-idle-workers` (README: the steps). */
  step: string;
  title: string;
  status: StepStatus;
  durationMs: number;
  /** What the step found or did, for people ("3 instances unprotected", "already drained"). */
  note?: string;
  /** Why it failed (what, why, hint), when `status` is `failed`. */
  error?: string;
};

/** A run begins: which stack, which runbook, where. Always the first event of a run. */
export type RunStartEvent = {
  type: "run-start";
  runId: string;
  stack: string;
  /** The runbook asked for (`auto` until `read-outputs` detects one). */
  runbook: string;
  dryRun: boolean;
  cwd: string;
  /** ISO 8601. */
  time: string;
};

/** A step starts. */
export type StepStartEvent = {
  type: "step-start";
  step: string;
  title: string;
  time: string;
};

/** A step ended; the same fields as its `StepRecord`. */
export type StepEndEvent = StepRecord & {
  type: "step-end";
};

/** Progress inside a long step (a wait, a hop of a workflow), with machine-readable `data`. */
export type ProgressEvent = {
  type: "progress";
  step: string;
  message: string;
  data?: Record<string, unknown>;
};

/** Something worth telling that is not progress (a lock taken over, a report not written). */
export type NoteEvent = {
  type: "note";
  step?: string;
  message: string;
};

/** An event of the Pulumi engine during `preview` or `up`, as the Automation API reports it. */
export type EngineStreamEvent = {
  type: "engine";
  step: string;
  event: EngineEvent;
};

/**
 * Recorded before the run suspends something (alarm actions, maintenance mode...), and again with
 * `applied` once the change is made (a re-run tells "suspended by that run" from "changed by a person").
 */
export type SuspendEvent = {
  type: "suspend";
  step: string;
  /** e.g. "alarm-actions". */
  what: string;
  items: string[];
  /** The suspension of these items is done (absent: about to be). */
  applied?: boolean;
};

/** Recorded when what a run suspended is restored. */
export type RestoreEvent = {
  type: "restore";
  step: string;
  what: string;
  items: string[];
};

/** The run ended. Always the last event of a run that started; `exitCode` is the process's. */
export type SummaryEvent = {
  type: "summary";
  status: "succeeded" | "failed";
  exitCode: number;
  durationMs: number;
  steps: StepRecord[];
  /** The preview's counts per operation, e.g. `{ update: 1, same: 4 }`. */
  changes?: Record<string, number>;
  error?: string;
  hint?: string;
  /** --on-failure rollback: what the run rolled back to, and whether the rollback verified. */
  rolledBack?: { to: string; verified: boolean };
  /** The restore point taken before `up` (snapshots of the data volumes), its state at the end, and how to restore from it. */
  restorePoints?: Array<{ snapshotId: string; volumeId: string; state: string; restore: string }>;
};

/**
 * The command line was refused before a run could start (a missing or malformed flag): the only
 * event of such an invocation with `--json`. Not emitted by `upgrade()` itself, which throws.
 */
export type ErrorEvent = {
  type: "error";
  exitCode: number;
  error: string;
  hint?: string;
};

/**
 * Every event a run reports, in order: `run-start`, then per step `step-start` … `step-end` (with
 * `progress`, `note`, `engine`, `suspend` and `restore` in between), then `summary`. `--json`
 * prints one per line. Events arrive redacted: no passphrase, key or token is ever in one.
 * Switch on `type` to narrow.
 */
export type UpgradeEvent =
  | RunStartEvent
  | StepStartEvent
  | StepEndEvent
  | ProgressEvent
  | NoteEvent
  | EngineStreamEvent
  | SuspendEvent
  | RestoreEvent
  | SummaryEvent
  | ErrorEvent;

/** Receives the events of a run, in order, synchronously as they happen. */
export type EventSink = (event: UpgradeEvent) => void;
