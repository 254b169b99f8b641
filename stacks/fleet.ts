import { spawn, type ChildProcess } from "node:child_process";
import { lineSplitter } from "../lib/lines";
import { withoutWindows, type FleetPlan, type FleetStack, type FleetWave } from "./fleetPlan";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ExitCode } from "../lib/errors";
import { notify, undeliveredNotes } from "../lib/notify";
import { createRedactor } from "../lib/redaction";
import { formatDuration } from "../lib/wait";
import { stateDir } from "./journal";

/**
 * Fleets: many stacks upgraded in waves. Each stack's upgrade is its own `upgrade --stack <one>`
 * process (the same command a CI job of a cross-machine fleet runs), so a stack's run keeps its
 * own lock, journal, signals and report; the backend's run lock keeps overlapping fleets apart.
 * Canary waves go first, one stack at a time; within other waves up to `concurrency` run at once.
 * The first failure (or the `maxFailures`-th) stops the fleet: stacks not started are reported as
 * such, running ones are told to stop after their current step (SIGTERM, as an operator's Ctrl-C).
 * A wave starts only when every stack of the one before succeeded (its runbook's verification
 * included), unless `keepGoing`: a tolerated failure lets its own wave finish, not the next begin.
 */
export type StackStatus = "succeeded" | "failed" | "stopped" | "skipped" | "not-started";

export interface FleetStackResult extends FleetStack {
  wave: string;
  status: StackStatus;
  exitCode?: number;
  runId?: string;
  durationMs?: number;
  changes?: Record<string, number>;
  error?: string;
  /** The stack's own Markdown run report. */
  report?: string;
  /** Its runbook's verification after `up` (verify-deployment): "verified: …", "FAILED: …", or absent when the runbook has none. */
  verification?: string;
}

export interface FleetResult {
  fleetId: string;
  status: "succeeded" | "failed";
  exitCode: number;
  durationMs: number;
  stacks: FleetStackResult[];
  /** The fleet report, Markdown and JSON. */
  report: { markdown: string; json: string };
}

export type FleetEvent = Record<string, unknown> & { type: string; stack: string | null };

export interface FleetOptions {
  plan: FleetPlan;
  /** Stacks running at once within a wave (canary waves: 1). */
  concurrency: number;
  /**
   * When failures stop the fleet: a count (the n-th failed stack, fleet-wide; default 1), or a
   * percentage of a wave (`{ percent: 50 }`: a wave of 4 goes on past 2 failures, stops at the 3rd).
   */
  maxFailures: number | { percent: number };
  /** Start the next wave even after a wave with failed stacks (--keep-going). */
  keepGoing?: boolean;
  /** Wait this long between two waves (the next wave starts only after it). */
  waveDelayMs?: number;
  /** A stack another run holds: "fail" counts it as failed (exit 3), "skip" skips it and says so. */
  onLocked: "fail" | "skip";
  /** `upgrade` flags for every stack (--yes, --dry-run, --ssh-…), as the CLI takes them. */
  upgradeArgs: string[];
  env: Record<string, string | undefined>;
  onEvent: (event: FleetEvent) => void;
  /** Fleet report (Markdown; the JSON beside it). Per-stack reports go into `<report>.stacks/`. */
  reportPath?: string;
  signal?: AbortSignal;
  notifyTimeoutMs?: number;
  notifyBackoffMs?: number;
}

/**
 * Exit code of a fleet: the worst of its stacks'. Worst first: 1 (a step failed: something may be
 * half done), 130 (interrupted), 4 (rolled back to the previous release), 5 (an approved plan went
 * stale), 3 (refused by a safety check), 2 (bad input), 0.
 */
export const EXIT_SEVERITY = [ExitCode.StepFailed, ExitCode.Interrupted, ExitCode.RolledBack, ExitCode.StalePlan, ExitCode.Refused, ExitCode.BadInput, ExitCode.Succeeded];
export function worstExitCode(codes: number[]): number {
  // a run that died by a signal (kill -9: 137) or with a code of no meaning here counts as failed
  const known = codes.map((c) => ((EXIT_SEVERITY as number[]).includes(c) ? c : ExitCode.StepFailed));
  return known.reduce((worst, c) => ((EXIT_SEVERITY as number[]).indexOf(c) < (EXIT_SEVERITY as number[]).indexOf(worst) ? c : worst), ExitCode.Succeeded as number);
}

// ---------------------------------------------------------------------------------------------
// Running a fleet

function cliPath(): string {
  const built = path.join(__dirname, "cli.js");
  return fs.existsSync(built) ? built : path.join(__dirname, "..", "dist", "stacks", "cli.js");
}

export async function runFleet(options: FleetOptions): Promise<FleetResult> {
  const fleetId = `${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${randomUUID().slice(0, 8)}`;
  const started = Date.now();
  const env = options.env;
  const redactor = createRedactor([env.PULUMI_CONFIG_PASSPHRASE, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, env.UPGRADE_SSH_KEY_PASSPHRASE]);
  const emit = (e: FleetEvent) => options.onEvent(redactor.value(e));
  const fleetDir = path.join(stateDir(env), "fleet", fleetId);
  const reportsDir = options.reportPath ? `${options.reportPath.replace(/\.md$/, "")}.stacks` : fleetDir;
  fs.mkdirSync(reportsDir, { recursive: true });
  const results: FleetStackResult[] = options.plan.waves.flatMap((w) => w.stacks.map((s) => ({ ...s, wave: w.name, status: "not-started" as StackStatus })));
  const running = new Map<FleetStackResult, ChildProcess>();
  let failures = 0;
  let stopping: string | undefined;
  const webhooks = options.plan.notify;
  const notifyOptions = { redactor, timeoutMs: options.notifyTimeoutMs, minBackoffMs: options.notifyBackoffMs };
  const total = results.length;

  emit({ type: "fleet-start", stack: null, fleetId, time: new Date(started).toISOString(), waves: options.plan.waves.map((w) => ({ name: w.name, canary: w.canary, stacks: w.stacks.map((s) => s.stack) })) });
  const startNotified = webhooks.length
    ? notify(webhooks, { event: "fleet-started", text: `fleet upgrade ${fleetId} started: ${total} stack(s) in ${options.plan.waves.length} wave(s)`, summary: { fleetId, waves: options.plan.waves.map((w) => ({ name: w.name, stacks: w.stacks.map((s) => s.stack) })) } }, notifyOptions)
    : Promise.resolve([]);

  const stop = (why: string) => {
    if (stopping) return;
    stopping = why;
    emit({ type: "fleet-stopping", stack: null, reason: why, running: [...running.keys()].map((r) => r.stack) });
    for (const child of running.values()) child.kill("SIGTERM"); // each stops after its current step
  };
  options.signal?.addEventListener("abort", () => stop("interrupted"), { once: true });

  const runOne = (r: FleetStackResult): Promise<void> =>
    new Promise((resolve) => {
      const report = path.join(reportsDir, `${r.stack.replace(/[^A-Za-z0-9._-]+/g, "_")}.md`);
      const args = ["upgrade", "--stack", r.stack, "--cwd", r.cwd, "--json", "--report", report, ...(r.windows ? withoutWindows(options.upgradeArgs) : options.upgradeArgs)];
      for (const w of r.windows ?? []) args.push("--window", w);
      if (r.release) args.push("--release", r.release);
      if (r.runbook) args.push("--runbook", r.runbook);
      args.push(...(r.flags ?? []));
      const child = spawn(process.execPath, [cliPath(), ...args], { env: { ...process.env, ...env, GITHUB_STEP_SUMMARY: "" }, stdio: ["ignore", "pipe", "pipe"] });
      running.set(r, child);
      const t0 = Date.now();
      let stderr = "";
      let summary: Record<string, unknown> | undefined;
      // The child speaks JSON lines; anything else on its stdout is shown, not dropped.
      const stdout = lineSplitter((line) => {
        if (!line.trim()) return;
        let event: Record<string, unknown> & { type: string };
        try {
          event = JSON.parse(line);
        } catch {
          emit({ type: "note", stack: r.stack, message: `${r.stack}: its run printed a line that is not a JSON event: ${line.slice(0, 300)}` });
          return;
        }
        if (event.type === "run-start") r.runId = event.runId as string;
        if (event.type === "step-end" && event.step === "verify-deployment") {
          r.verification = event.status === "done" ? String(event.note ?? "verified") : event.status === "failed" ? `FAILED: ${String(event.error ?? "").split("\n")[0]}` : `skipped: ${String(event.note ?? "")}`;
        }
        if (event.type === "summary") summary = event;
        emit({ ...event, stack: r.stack });
      });
      child.stdout!.on("data", (d: Buffer) => stdout.push(d));
      child.stdout!.on("end", () => stdout.end());
      child.stderr!.setEncoding("utf8"); // decodes across chunk boundaries
      child.stderr!.on("data", (d: string) => (stderr += d));
      // "close", not "exit": the child's last lines (its summary) are read by then
      child.on("close", (code, signal) => {
        running.delete(r);
        r.exitCode = code ?? (signal === "SIGKILL" ? 137 : 128);
        r.durationMs = Date.now() - t0;
        r.changes = summary?.changes as Record<string, number> | undefined;
        r.error = (summary?.error as string | undefined) ?? (r.exitCode !== 0 ? stderr.trim().split("\n").pop() || `exited with ${signal ?? code}` : undefined);
        r.report = fs.existsSync(report) ? report : undefined;
        const lockedByOther = r.exitCode === ExitCode.Refused && /lock the stack for this run: it is held by/.test(r.error ?? "");
        if (r.exitCode === 0) r.status = "succeeded";
        else if (lockedByOther && options.onLocked === "skip") r.status = "skipped";
        else if (r.exitCode === ExitCode.Interrupted && stopping) r.status = "stopped";
        else r.status = "failed";
        emit({ type: "fleet-stack-end", stack: r.stack, wave: r.wave, status: r.status, exitCode: r.exitCode, durationMs: r.durationMs, runId: r.runId, error: r.error, ...(r.status === "skipped" ? { note: `skipped: ${r.error}` } : {}) });
        if (r.status === "failed") {
          failures++;
          const limit = options.maxFailures;
          if (typeof limit === "number") {
            if (failures >= limit) stop(`${failures} stack(s) failed (limit ${limit}): ${r.stack}`);
          } else {
            const inWave = results.filter((x) => x.wave === r.wave);
            const failedInWave = inWave.filter((x) => x.status === "failed").length;
            const tolerated = Math.floor((limit.percent / 100) * inWave.length);
            if (failedInWave > tolerated) stop(`${failedInWave} of ${inWave.length} stack(s) of wave ${r.wave} failed (limit ${limit.percent}%: ${tolerated}): ${r.stack}`);
          }
        }
        resolve();
      });
    });

  let previous: FleetWave | undefined;
  for (const wave of options.plan.waves) {
    if (stopping) break;
    if (previous) {
      const failed = results.filter((r) => r.wave === previous!.name && r.status === "failed").map((r) => r.stack);
      if (failed.length > 0 && !options.keepGoing) {
        stop(`wave ${previous.name} did not succeed on every stack (failed: ${failed.join(", ")}); a wave starts only when the one before succeeded`);
        break;
      }
      if (options.waveDelayMs) {
        const until = Date.now() + options.waveDelayMs;
        emit({ type: "fleet-wave-delay", stack: null, wave: wave.name, delayMs: options.waveDelayMs, startsAt: new Date(until).toISOString() });
        await sleepUnlessAborted(options.waveDelayMs, options.signal);
        if (stopping) break;
      }
    }
    previous = wave;
    const queue = results.filter((r) => r.wave === wave.name);
    const width = wave.canary ? 1 : Math.max(1, options.concurrency);
    emit({ type: "fleet-wave-start", stack: null, wave: wave.name, canary: wave.canary, concurrency: width, stacks: queue.map((r) => r.stack) });
    const workers = Array.from({ length: Math.min(width, queue.length) }, async () => {
      for (let next = queue.shift(); next && !stopping; next = queue.shift()) await runOne(next);
    });
    await Promise.all(workers);
  }
  for (const r of results.filter((x) => x.status === "not-started")) emit({ type: "fleet-stack-end", stack: r.stack, wave: r.wave, status: "not-started", note: stopping ? `not started: the fleet stopped (${stopping})` : "not started" });

  const ran = results.filter((r) => r.exitCode !== undefined && r.status !== "skipped");
  const exitCode = options.signal?.aborted ? ExitCode.Interrupted : worstExitCode(ran.map((r) => r.exitCode!));
  const status = exitCode === 0 ? "succeeded" : "failed";
  const durationMs = Date.now() - started;
  if (webhooks.length) {
    const counts = countByStatus(results);
    const ended = await notify(
      webhooks,
      {
        event: status === "succeeded" ? "fleet-succeeded" : "fleet-failed",
        text: `fleet upgrade ${fleetId} ${status} (exit ${exitCode}): ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")}`,
        summary: { fleetId, status, exitCode, durationMs, stacks: results.map((r) => ({ stack: r.stack, wave: r.wave, status: r.status, exitCode: r.exitCode, error: r.error })) },
      },
      notifyOptions,
    );
    for (const message of [...undeliveredNotes(await startNotified, "start"), ...undeliveredNotes(ended, "outcome")]) emit({ type: "note", stack: null, message });
  }
  const markdown = renderFleetReport(fleetId, status, exitCode, durationMs, results, options.reportPath ? path.dirname(path.resolve(options.reportPath)) : fleetDir);
  const json = JSON.stringify({ fleetId, status, exitCode, durationMs, stacks: results }, null, 2);
  const markdownPath = options.reportPath ?? path.join(fleetDir, "fleet.md");
  const jsonPath = markdownPath.replace(/\.md$/, "") + ".json";
  fs.mkdirSync(path.dirname(path.resolve(markdownPath)), { recursive: true });
  fs.writeFileSync(markdownPath, redactor.text(markdown));
  fs.writeFileSync(jsonPath, redactor.text(json));
  if (env.GITHUB_STEP_SUMMARY) fs.appendFileSync(env.GITHUB_STEP_SUMMARY, redactor.text(markdown));
  emit({ type: "fleet-summary", stack: null, fleetId, status, exitCode, durationMs, counts: countByStatus(results), report: markdownPath, reportJson: jsonPath, stacks: results.map((r) => ({ stack: r.stack, wave: r.wave, status: r.status, exitCode: r.exitCode, durationMs: r.durationMs, error: r.error })) });
  return { fleetId, status, exitCode, durationMs, stacks: results, report: { markdown: markdownPath, json: jsonPath } };
}

function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

const countByStatus = (results: FleetStackResult[]) =>
  results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});

const ICON: Record<StackStatus, string> = { succeeded: "✅", failed: "❌", stopped: "⏹️", skipped: "⏭️", "not-started": "⬜" };
const cell = (s: string | undefined) => (s ?? "").replace(/\|/g, "\\|").replace(/\n/g, "<br>");

export function renderFleetReport(fleetId: string, status: string, exitCode: number, durationMs: number, results: FleetStackResult[], relativeTo: string): string {
  const counts = countByStatus(results);
  return [
    `## Fleet upgrade \`${fleetId}\`: ${status}`,
    "",
    `exit code ${exitCode} · ${formatDuration(durationMs)} · ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")}`,
    "",
    "| stack | wave | status | duration | changes | verification | error | report |",
    "|---|---|---|---|---|---|---|---|",
    ...results.map(
      (r) =>
        `| \`${r.stack}\` | ${r.wave} | ${ICON[r.status]} ${r.status} | ${r.durationMs === undefined ? "" : formatDuration(r.durationMs)} | ${r.changes ? cell(Object.entries(r.changes).filter(([op, n]) => n > 0 && op !== "same").map(([op, n]) => `${op} ${n}`).join(", ") || "none") : ""} | ${cell(r.verification)} | ${cell(r.error)} | ${r.report ? `[${path.basename(r.report)}](${path.relative(relativeTo, r.report)})` : ""} |`,
    ),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Terminal view: one row per stack with its current step

export function createFleetRenderer(mode: "json" | "tty" | "plain", out: NodeJS.WriteStream = process.stdout): { sink: (e: FleetEvent) => void; close(): void } {
  if (mode === "json") return { sink: (e) => void out.write(JSON.stringify(e) + "\n"), close() {} };
  const rows = new Map<string, { state: string; since: number }>();
  const order: string[] = [];
  let drawn = 0;
  const draw = () => {
    if (mode !== "tty") return;
    const width = Math.max(10, ...order.map((s) => s.length));
    const lines = order.map((s) => {
      const r = rows.get(s)!;
      return `${s.padEnd(width)}  ${r.state}`.slice(0, (out.columns ?? 120) - 1);
    });
    out.write((drawn ? `\x1b[${drawn}A` : "") + lines.map((l) => `\x1b[2K${l}\n`).join(""));
    drawn = lines.length;
  };
  const plain = (line: string) => mode === "plain" && out.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  return {
    sink(e) {
      if (e.type === "fleet-start") {
        for (const w of e.waves as Array<{ stacks: string[] }>) for (const s of w.stacks) if (!rows.has(s)) (order.push(s), rows.set(s, { state: "⬜ waiting", since: Date.now() }));
        plain(`fleet ${e.fleetId as string}: ${order.length} stack(s)`);
      } else if (e.stack && rows.has(e.stack)) {
        const row = rows.get(e.stack)!;
        if (e.type === "step-start") row.state = `▶ ${e.step as string}`;
        else if (e.type === "note") plain(`note: ${e.message as string}`);
        else if (e.type === "step-end" && e.status === "failed") plain(`${e.stack}: ${e.step as string} failed: ${e.error as string}`);
        else if (e.type === "fleet-stack-end") {
          row.state = `${ICON[e.status as StackStatus]} ${e.status as string}${e.durationMs !== undefined ? ` (${formatDuration(e.durationMs as number)})` : ""}${e.error ? `: ${String(e.error).split("\n")[0]}` : ""}`;
          plain(`${e.stack}: ${row.state}`);
        }
        if (e.type === "step-start") plain(`${e.stack}: ${e.step as string}`);
      } else if (e.type === "fleet-stopping") plain(`stopping the fleet: ${e.reason as string}`);
      else if (e.type === "fleet-wave-delay") plain(`waiting ${formatDuration(e.delayMs as number)} before wave ${e.wave as string} (--wave-delay; it starts at ${e.startsAt as string})`);
      else if (e.type === "fleet-summary") plain(`fleet ${e.status as string} (exit ${e.exitCode as number}); report ${e.report as string}`);
      else if (e.type === "note") plain(`note: ${e.message as string}`);
      draw();
    },
    close() {},
  };
}

