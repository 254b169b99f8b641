import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { StepRecord, UpgradeEvent } from "../lib/events";
import { journalPrefix, type BackendStore } from "./backend";
import { disruptionWindow, timedSteps, type DisruptionWindow } from "./timeline";

/**
 * The run journal: every event of a run (redacted, engine events left out) appended as one JSON
 * line as it happens, so a run killed at any moment leaves a readable record. One file per run
 * under the state dir, by project directory and stack; `upgrade-orchestrator status` reads the last.
 * The same lines are also written beside the stack's state in the backend
 * (`.pulumi/upgrade-orchestrator/journal/<project>/<stack>/<run id>.jsonl`) once the run knows its
 * backend, so `status` and resume work from any machine that can read the backend; the local copy
 * stays for offline reading. Every step's `check` reads the world as well.
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
  /** Also keep the journal in the backend from now on (everything recorded so far is written at once). */
  mirrorTo(store: BackendStore, project: string, stack: string): void;
  /** Where the backend copy is, once mirrored. */
  readonly backendLocation?: string;
  /** Waits for the backend copy to hold every line recorded; a failure is reported, not thrown. */
  flush(): Promise<string | undefined>;
}

/** Events that change what `status` shows; progress lines alone do not trigger a backend write. */
const MILESTONES = new Set(["run-start", "step-start", "step-end", "suspend", "restore", "note", "summary"]);

export function openJournal(env: Record<string, string | undefined>, cwd: string, stack: string, runId: string): Journal {
  const dir = runsDir(env, cwd, stack);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${runId}.jsonl`);
  const lines: string[] = [];
  let mirror: { store: BackendStore; key: string } | undefined;
  let writing: Promise<void> = Promise.resolve();
  let written = 0;
  let failure: string | undefined;
  // one write at a time, each of the whole journal (S3 has no append); a burst coalesces
  const sync = () => {
    writing = writing.then(async () => {
      if (!mirror || written === lines.length) return;
      const upTo = lines.length;
      try {
        await mirror.store.put(mirror.key, lines.slice(0, upTo).join(""));
        written = upTo;
        failure = undefined;
      } catch (err) {
        failure = (err as Error).message;
      }
    });
  };
  const journal: Journal = {
    path: file,
    record(event) {
      if (event.type === "engine") return;
      const line = JSON.stringify({ ...event, at: new Date().toISOString() }) + "\n";
      // synchronous on purpose: a kill -9 right after a step must find it recorded
      fs.appendFileSync(file, line, { mode: 0o600 });
      lines.push(line);
      if (MILESTONES.has(event.type)) sync();
    },
    mirrorTo(store, project, stack) {
      mirror = { store, key: `${journalPrefix(project, stack)}${runId}.jsonl` };
      Object.defineProperty(journal, "backendLocation", { value: `${store.description}/${mirror.key}` });
      sync();
    },
    async flush() {
      sync();
      await writing;
      return failure;
    },
  };
  return journal;
}

/** The last run of a stack in the backend's journal (any machine's). */
export async function lastRunInBackend(store: BackendStore, project: string, stack: string, exceptRunId?: string): Promise<RunState | undefined> {
  const prefix = journalPrefix(project, stack);
  const keys = (await store.list(prefix)).filter((k) => k.endsWith(".jsonl") && !k.endsWith(`/${exceptRunId}.jsonl`));
  const last = keys.at(-1);
  if (!last) return undefined;
  const object = await store.get(last);
  return object && parseRun(object.body, path.posix.basename(last, ".jsonl"), `${store.description}/${last}`);
}

/** The backend's journal of a stack (any machine's runs), newest first: at most `limit` runs. */
export async function recentRunsInBackend(store: BackendStore, project: string, stack: string, limit: number, exceptRunId?: string): Promise<RunState[]> {
  const keys = (await store.list(journalPrefix(project, stack))).filter((k) => k.endsWith(".jsonl") && !k.endsWith(`/${exceptRunId}.jsonl`)).sort().reverse();
  const runs: RunState[] = [];
  for (const key of keys.slice(0, limit * 2)) {
    const object = await store.get(key);
    if (!object) continue;
    const run = parseRun(object.body, path.posix.basename(key, ".jsonl"), `${store.description}/${key}`);
    if (refusedByWindow(run)) continue;
    runs.push(run);
    if (runs.length === limit) break;
  }
  return runs;
}

/** The newer of two runs by run id (ids start with their UTC start time). */
export function newerRun(a: RunState | undefined, b: RunState | undefined): RunState | undefined {
  if (!a || !b) return a ?? b;
  if (a.runId === b.runId) return a.status !== "running" || b.status === "running" ? a : b;
  return a.runId > b.runId ? a : b;
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
  /** What the run recorded it was about to suspend (the intent, before the change), by kind. */
  suspendIntended: Record<string, string[]>;
  /** What the run's suspensions were recorded as done (`applied`), by kind. */
  suspendApplied: Record<string, string[]>;
  /** What the run's restore events recorded as restored, by kind. */
  restored: Record<string, string[]>;
  /** When the cancel request of this run was sent (for resuming the wait). */
  cancelRequestedAt?: string;
  /** What the project was checked out at before checkout-release moved it (a rollback's target). */
  checkedOutFrom?: string;
  /** The release the run started to roll back to (--on-failure rollback). */
  rollbackTo?: string;
  error?: string;
  /** From the first disruptive step that ran to the end of the last step after it (the alarms' restore); absent: nothing disruptive ran. */
  disruption?: DisruptionWindow;
}

/**
 * The last run of a stack on this machine. `startedOnly`: leave out runs refused by check-window
 * before they selected the stack (a scheduled job refused outside its window every hour must not
 * hide the run a resume needs; they never reach the backend's journal either).
 */
export function lastRun(env: Record<string, string | undefined>, cwd: string, stack: string, exceptRunId?: string, startedOnly = false): RunState | undefined {
  const dir = runsDir(env, cwd, stack);
  if (!fs.existsSync(dir)) return undefined;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl") && f !== `${exceptRunId}.jsonl`).sort().reverse();
  for (const file of files) {
    const run = readRun(path.join(dir, file));
    if (!startedOnly || !refusedByWindow(run)) return run;
  }
  return undefined;
}

/** A run that ended at check-window, before anything else ran. */
export function refusedByWindow(run: RunState): boolean {
  return run.status !== "running" && run.steps.length === 1 && run.steps[0]!.step === "check-window";
}

/** One run's journal on this machine, by run id (undefined: not recorded here). */
export function runJournal(env: Record<string, string | undefined>, cwd: string, stack: string, runId: string): RunState | undefined {
  if (!/^[\w-]+$/.test(runId)) return undefined;
  const file = path.join(runsDir(env, cwd, stack), `${runId}.jsonl`);
  return fs.existsSync(file) ? readRun(file) : undefined;
}

export function readRun(file: string): RunState {
  return parseRun(fs.readFileSync(file, "utf8"), path.basename(file, ".jsonl"), file);
}

export function parseRun(text: string, runId: string, journal: string): RunState {
  const entries = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as UpgradeEvent & { at: string }];
      } catch {
        return []; // a line cut short by a crash
      }
    });
  const state: RunState = { runId, journal, status: "running", steps: [], stillSuspended: {}, suspendIntended: {}, suspendApplied: {}, restored: {} };
  const add = (map: Record<string, string[]>, what: string, items: string[]) => void (map[what] = [...new Set([...(map[what] ?? []), ...items])]);
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
        add(state.stillSuspended, e.what, e.items);
        add(state.suspendIntended, e.what, e.items);
        if (e.applied) add(state.suspendApplied, e.what, e.items);
        break;
      case "restore":
        state.stillSuspended[e.what] = (state.stillSuspended[e.what] ?? []).filter((i) => !e.items.includes(i));
        add(state.restored, e.what, e.items);
        break;
      case "progress": {
        const data = e.data as { checkedOutFrom?: unknown; rollbackTo?: unknown } | undefined;
        if (typeof data?.checkedOutFrom === "string") state.checkedOutFrom = data.checkedOutFrom;
        if (typeof data?.rollbackTo === "string") state.rollbackTo = data.rollbackTo;
        break;
      }
      case "summary":
        state.status = e.status;
        state.exitCode = e.exitCode;
        state.error = e.error;
        break;
    }
  }
  state.unfinishedStep = open;
  state.disruption = disruptionWindow(timedSteps(entries));
  for (const [k, v] of Object.entries(state.stillSuspended)) if (v.length === 0) delete state.stillSuspended[k];
  return state;
}

/** This machine's journal of a stack, newest run first: at most `limit` runs, not counting those refused at check-window. */
export function recentRuns(env: Record<string, string | undefined>, cwd: string, stack: string, limit: number, exceptRunId?: string): RunState[] {
  const dir = runsDir(env, cwd, stack);
  if (!fs.existsSync(dir)) return [];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl") && f !== `${exceptRunId}.jsonl`).sort().reverse();
  const runs: RunState[] = [];
  // runs refused at check-window do not count against the limit (a schedule may leave many)
  for (const file of files.slice(0, limit * 20)) {
    const run = readRun(path.join(dir, file));
    if (refusedByWindow(run)) continue;
    runs.push(run);
    if (runs.length === limit) break;
  }
  return runs;
}

/**
 * How long a run of this stack is expected to disrupt: the longest disruption window of its (up
 * to) three most recent successful runs that applied an update. Undefined: no such run journaled.
 */
export function expectedDisruption(runs: readonly RunState[]): { ms: number; runIds: string[]; longest: RunState } | undefined {
  const applied = runs
    .filter((r) => r.status === "succeeded" && r.disruption && r.steps.some((s) => s.step === "up" && s.status === "done"))
    .slice(0, 3);
  if (applied.length === 0) return undefined;
  const longest = applied.reduce((a, b) => (b.disruption!.durationMs > a.disruption!.durationMs ? b : a));
  return { ms: longest.disruption!.durationMs, runIds: applied.map((r) => r.runId), longest };
}
