import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { EventSink, StepStatus, UpgradeEvent } from "../lib/events";
import { formatDuration } from "../lib/wait";

/**
 * How a run shows itself: `--json` prints each event as one JSON line on stdout and nothing else;
 * on a TTY a live task list (spinner, elapsed time per step); otherwise plain timestamped lines.
 * Events arrive already redacted.
 */
export type OutputMode = "json" | "tty" | "plain";

export interface Renderer {
  sink: EventSink;
  /** Stops the live display (before prompting or exiting). */
  pause(): void;
  resume(): void;
  close(): void;
}

export function createRenderer(mode: OutputMode, out: NodeJS.WriteStream = process.stdout, verbose = false): Renderer {
  if (mode === "json") {
    return { sink: (e) => void out.write(JSON.stringify(e) + "\n"), pause() {}, resume() {}, close() {} };
  }
  if (mode === "plain") return plainRenderer(out, verbose);
  return ttyRenderer(out, verbose);
}

/**
 * One line for an engine event worth showing, else undefined: what a preview plans (with the
 * changed inputs that are plain values, e.g. `version: 23.09.8 → 24.03.2`), what `up` did,
 * what a resource's provider reports (its progress), warnings and errors.
 */
export function engineLine(event: EngineEvent): string | undefined {
  const op = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
  // provider resources (the engine's own bookkeeping) are not what an operator plans or watches
  if (op && op.op !== "same" && !op.type.startsWith("pulumi:providers:")) {
    const failed = event.resOpFailedEvent ? " FAILED" : "";
    const [before, after] = [op.old?.inputs ?? {}, op.new?.inputs ?? {}];
    // dynamic providers report no per-property diff: compare the inputs then
    const keys = op.diffs ?? [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !k.startsWith("__") && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    // what changes, for resources that stay or are replaced (a create or a delete lists no "changes")
    const changing = ["update", "replace", "create-replacement"].includes(op.op);
    const changes = changing ? keys.map((key) => change(key, before[key], after[key])).filter(Boolean) : [];
    return `${symbol(op.op)} ${op.type} ${op.urn.split("::").pop()}${changes.length ? ` (${changes.join("; ")})` : ""}${failed}`;
  }
  const diag = event.diagnosticEvent;
  // info lines: a resource's own, and the workflow providers' progress, which reaches the engine
  // without a URN (lib/progress.ts) but names its workflow ("codeocean-vpc prod → 3.8.2: …")
  if (diag && !diag.ephemeral && (diag.severity === "error" || diag.severity === "warning" || diag.severity === "info")) {
    const text = diag.message.trim().split("\n")[0];
    if (diag.severity !== "info") return `${diag.severity}: ${text}`;
    return diag.urn ? `${diag.urn.split("::").pop()}: ${text}` : text;
  }
  return undefined;
}

/** How the engine marks a value that is only known once the update ran (an output of another resource). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** `key: old → new` for inputs that read as text (scalars, lists of scalars); secrets and objects stay out. */
function change(key: string, before: unknown, after: unknown): string | undefined {
  const text = (v: unknown): string | undefined => {
    if (v === undefined || v === null) return "(none)";
    if (v === UNKNOWN) return "(known after the update)";
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
    if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) return v.length ? v.join(", ") : "(none)";
    return undefined;
  };
  const [b, a] = [text(before), text(after)];
  if (b === undefined || a === undefined || b === "[secret]" || a === "[secret]") return undefined;
  return `${key}: ${b} → ${a}`;
}

const symbol = (op: string) => ({ create: "+", update: "~", delete: "-", replace: "+-", "create-replacement": "++", "delete-replaced": "--" })[op] ?? op;

function plainRenderer(out: NodeJS.WriteStream, verbose: boolean): Renderer {
  const line = (text: string) => out.write(`${new Date().toISOString()} ${text}\n`);
  const sink: EventSink = (e) => {
    const text = describeEvent(e, verbose);
    if (text !== undefined) line(text);
  };
  return { sink, pause() {}, resume() {}, close() {} };
}

function describeEvent(e: UpgradeEvent, verbose: boolean): string | undefined {
  switch (e.type) {
    case "run-start":
      return `upgrade of stack ${e.stack} in ${e.cwd}${e.dryRun ? " (dry run)" : ""} — run ${e.runId}`;
    case "step-start":
      return `[${e.step}] ${e.title}…`;
    case "step-end":
      return `[${e.step}] ${e.status} in ${formatDuration(e.durationMs)}${e.error ? `: ${e.error}` : e.note ? `: ${e.note}` : ""}`;
    case "progress":
      return `[${e.step}] ${e.message}`;
    case "note":
      return `${e.step ? `[${e.step}] ` : ""}note: ${e.message}`;
    case "engine": {
      const text = engineLine(e.event);
      // the plan before the confirmation, and what `up` does; plan-update's own preview only with --verbose
      return text && (verbose || e.step === "up" || e.step === "preview" || e.step === "confirm-plan" || /error/.test(text)) ? `[${e.step}] ${text}` : undefined;
    }
    case "summary":
      return `${e.status === "succeeded" ? "succeeded" : "FAILED"} in ${formatDuration(e.durationMs)} (exit ${e.exitCode})${e.error ? `\n  ${e.error}` : ""}${e.hint && !e.error?.includes(e.hint) ? `\n  hint: ${e.hint}` : ""}`;
  }
}

/** A workflow's progress line that asks the operator to act (lib/progress.ts callers say it so). */
const ACTION_NEEDED = /\bACTION NEEDED\b/;

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const DONE: Record<StepStatus, string> = { done: "\x1b[32m✔\x1b[0m", skipped: "\x1b[2m–\x1b[0m", failed: "\x1b[31m✖\x1b[0m" };

/** The live task list: one line per step, redrawn in place; finished steps keep their result. */
function ttyRenderer(out: NodeJS.WriteStream, verbose: boolean): Renderer {
  interface Row { step: string; title: string; started: number; status?: StepStatus; detail?: string; durationMs?: number }
  const rows: Row[] = [];
  let drawn = 0;
  let frame = 0;
  let paused = false;
  const width = () => Math.max(40, (out.columns ?? 100) - 1);
  // A row must never wrap: the redraw moves up one terminal line per row. Its icon and the space
  // after it take two columns; code points are counted, not UTF-16 units.
  const clip = (text: string) => {
    const room = width() - 2;
    // a detail of several lines (an error and its hint) is one line here: a row that took two
    // terminal lines would shift every redraw below it
    const s = text.replace(/\s*\n\s*/g, " · ");
    const chars = [...s];
    return chars.length > room ? chars.slice(0, room - 1).join("") + "…" : s;
  };
  const draw = () => {
    if (paused) return;
    if (drawn > 0) out.write(`\x1b[${drawn}A`);
    for (const r of rows) {
      const icon = r.status ? DONE[r.status] : `\x1b[36m${FRAMES[frame % FRAMES.length]}\x1b[0m`;
      const elapsed = formatDuration(r.durationMs ?? Date.now() - r.started);
      out.write(`\x1b[2K${icon} ${clip(`${r.title} (${elapsed})${r.detail ? ` — ${r.detail}` : ""}`)}\n`);
    }
    drawn = rows.length;
  };
  const timer = setInterval(() => {
    frame++;
    if (rows.some((r) => !r.status)) draw();
  }, 120);
  timer.unref();
  const print = (text: string) => {
    // a line above the live block: erase the block, print, redraw below
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
    out.write(text + "\n");
    draw();
  };
  const current = (step: string) => [...rows].reverse().find((r) => r.step === step);
  const sink: EventSink = (e) => {
    switch (e.type) {
      case "run-start":
      case "note":
        print(describeEvent(e, verbose)!);
        return;
      case "step-start":
        rows.push({ step: e.step, title: e.title, started: Date.parse(e.time) });
        break;
      case "step-end": {
        const row = current(e.step);
        if (row) Object.assign(row, { status: e.status, durationMs: e.durationMs, detail: e.error ?? e.note });
        break;
      }
      case "progress": {
        const row = current(e.step);
        if (row) row.detail = e.message;
        break;
      }
      case "engine": {
        const text = engineLine(e.event);
        const row = current(e.step);
        if (text && row) row.detail = text;
        // the planned changes stay on screen for the confirmation that follows the preview, and so
        // does what a workflow asks the operator to do (enable maintenance mode in the admin panel)
        if (text && (verbose || /^error/.test(text) || e.step === "preview" || e.step === "confirm-plan" || ACTION_NEEDED.test(text))) print(`  ${text}`);
        break;
      }
      case "summary":
        draw();
        out.write(`\n${e.status === "succeeded" ? "\x1b[32m✔ upgrade succeeded\x1b[0m" : "\x1b[31m✖ upgrade failed\x1b[0m"} in ${formatDuration(e.durationMs)} (exit ${e.exitCode})\n`);
        if (e.error) out.write(`  ${e.error}\n`);
        if (e.hint && !e.error?.includes(e.hint)) out.write(`  hint: ${e.hint}\n`);
        drawn = 0;
        rows.length = 0;
        return;
    }
    draw();
  };
  return {
    sink,
    pause: () => void (paused = true),
    resume: () => {
      paused = false;
      drawn = 0;
      draw();
    },
    close: () => clearInterval(timer),
  };
}
