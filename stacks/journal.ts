import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { StepRecord, UpgradeEvent } from "../lib/events";

/**
 * The run journal: every event of a run (redacted, engine events left out) appended as one JSON
 * line as it happens, so a run killed at any moment leaves a readable record. One file per run
 * under the state dir, by project directory and stack; `upgrade-orchestrator status` reads the last.
 * Pipelines on throwaway machines lose it: every step's `check` reads the world as well.
 */
export function stateDir(env: Record<string, string | undefined> = process.env): string {
  return (
    env.UPGRADE_ORCHESTRATOR_STATE ??
    path.join(env.XDG_STATE_HOME ?? path.join(os.homedir(), ".local", "state"), "upgrade-orchestrator")
  );
}

function runsDir(env: Record<string, string | undefined>, cwd: string, stack: string): string {
  const project = path.resolve(cwd).replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+/, "");
  return path.join(stateDir(env), "journal", project, stack);
}

export interface Journal {
  readonly path: string;
  record(event: UpgradeEvent): void;
}

export function openJournal(env: Record<string, string | undefined>, cwd: string, stack: string, runId: string): Journal {
  const dir = runsDir(env, cwd, stack);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${runId}.jsonl`);
  return {
    path: file,
    record(event) {
      if (event.type === "engine") return;
      // synchronous on purpose: a kill -9 right after a step must find it recorded
      fs.appendFileSync(file, JSON.stringify({ ...event, at: new Date().toISOString() }) + "\n", { mode: 0o600 });
    },
  };
}

export interface RunState {
  runId: string;
  journal: string;
  startedAt?: string;
  /** "running" when the journal has no summary: the run is going on, or it crashed. */
  status: "succeeded" | "failed" | "running";
  exitCode?: number;
  steps: StepRecord[];
  /** The step that started and never ended. */
  unfinishedStep?: string;
  /** What a suspend event recorded and no restore event undid, by kind. */
  stillSuspended: Record<string, string[]>;
  /** When the cancel request of this run was sent (for resuming the wait). */
  cancelRequestedAt?: string;
  error?: string;
}

export function lastRun(env: Record<string, string | undefined>, cwd: string, stack: string, exceptRunId?: string): RunState | undefined {
  const dir = runsDir(env, cwd, stack);
  if (!fs.existsSync(dir)) return undefined;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl") && f !== `${exceptRunId}.jsonl`).sort();
  const last = files.at(-1);
  return last ? readRun(path.join(dir, last)) : undefined;
}

export function readRun(file: string): RunState {
  const entries = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as UpgradeEvent & { at: string }];
      } catch {
        return []; // a line cut short by a crash
      }
    });
  const state: RunState = { runId: path.basename(file, ".jsonl"), journal: file, status: "running", steps: [], stillSuspended: {} };
  let open: string | undefined;
  for (const e of entries) {
    switch (e.type) {
      case "run-start":
        state.startedAt = e.time;
        break;
      case "step-start":
        open = e.step;
        if (e.step === "cancel-computations") state.cancelRequestedAt = e.time;
        break;
      case "step-end": {
        const { type: _t, at: _a, ...record } = e;
        state.steps.push(record as StepRecord);
        if (open === e.step) open = undefined;
        if (e.step === "cancel-computations" && e.status !== "done") state.cancelRequestedAt = undefined;
        break;
      }
      case "suspend":
        state.stillSuspended[e.what] = [...new Set([...(state.stillSuspended[e.what] ?? []), ...e.items])];
        break;
      case "restore":
        state.stillSuspended[e.what] = (state.stillSuspended[e.what] ?? []).filter((i) => !e.items.includes(i));
        break;
      case "summary":
        state.status = e.status;
        state.exitCode = e.exitCode;
        state.error = e.error;
        break;
    }
  }
  state.unfinishedStep = open;
  for (const [k, v] of Object.entries(state.stillSuspended)) if (v.length === 0) delete state.stillSuspended[k];
  return state;
}
