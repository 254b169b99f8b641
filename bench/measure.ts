import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli, CLI } from "../test/sandbox/cli";
import { REPO_ROOT } from "../test/sandbox/fixtures";

// How the bench measures and prints (see run.ts): alternating pairs, medians and spreads, the
// figures table, and a CLI run timed per step.

export const RUNS = Number(process.env.BENCH_RUNS ?? 5);
export const DIST = path.resolve(process.env.BENCH_DIST ?? path.dirname(path.dirname(CLI)));
export const CLI_JS = path.join(DIST, "stacks", "cli.js");
export const PROBE = path.join(REPO_ROOT, "dist", "test", "sandbox", "processProbe.js");
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "uo-bench-"));

export interface Sample {
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
}

/** Runs a command to completion; its CPU time and peak RSS from the probe (node) or /usr/bin/time -f. */
export async function measure(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string; node?: boolean }): Promise<Sample> {
  const probe = path.join(TMP, `probe-${process.hrtime.bigint()}.json`);
  const [file, argv] = options.node
    ? [process.execPath, ["--require", PROBE, ...args]]
    : ["/usr/bin/time", ["-f", '{"cpuS":"%U+%S","maxRssKb":%M}', "-o", probe, command, ...args]];
  const started = process.hrtime.bigint();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(file, argv, { cwd: options.cwd, env: { ...process.env, ...options.env, UO_PROBE_FILE: probe }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stderr }));
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${code}:\n${stderr.slice(-2000)}`);
  const raw = JSON.parse(fs.readFileSync(probe, "utf8")) as { cpuMs?: number; cpuS?: string; maxRssKb: number };
  fs.rmSync(probe, { force: true });
  const cpuMs = raw.cpuMs ?? raw.cpuS!.split("+").reduce((n, s) => n + Number(s) * 1000, 0);
  return { wallMs, cpuMs, maxRssKb: raw.maxRssKb };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const spread = (xs: number[], unit: (n: number) => string) => `${unit(median(xs))} (${unit(Math.min(...xs))}–${unit(Math.max(...xs))})`;
export const ms = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(0)} ms`);
export const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
export const ratio = (a: number[], b: number[]) => `${(median(a) / median(b)).toFixed(2)}×`;

/** A and B alternately, `RUNS` times each; `before` runs untimed before each sample (e.g. a config change). */
export async function pair(a: () => Promise<Sample>, b: () => Promise<Sample>, before?: () => Promise<void>): Promise<[Sample[], Sample[]]> {
  const as: Sample[] = [];
  const bs: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const which of i % 2 === 0 ? ["a", "b"] : ["b", "a"]) {
      await before?.();
      (which === "a" ? as : bs).push(await (which === "a" ? a : b)());
    }
  }
  return [as, bs];
}

export const rows: string[][] = [];
export function row(figure: string, a: Sample[], b: Sample[], metric: "cpuMs" | "wallMs"): void {
  const pick = (s: Sample[]) => s.map((x) => x[metric]);
  rows.push([figure, ratio(pick(a), pick(b)), spread(pick(a), ms), spread(pick(b), ms), `${spread(a.map((x) => x.maxRssKb), mb)} vs ${spread(b.map((x) => x.maxRssKb), mb)}`]);
  printRow(rows.at(-1)!);
}
export function printRow(r: string[]): void {
  process.stdout.write(`${r.join(" | ")}\n`);
}

export type Row = [string, number];

export async function timeRun(args: string[], env: Record<string, string>, hopTimes?: Row[], onMessage?: (message: string) => void): Promise<{ total: number; steps: Row[] }> {
  const started = Date.now();
  const hopStart = new Map<string, number>();
  let partial = "";
  const result = await runCli(args, env, {
    timeoutMs: 900_000,
    onStdout: (chunk) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const message = (JSON.parse(line) as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message ?? "";
        onMessage?.(message.trim());
        const hop = /hop (\S+ → \S+)(?: \(major\))?: (starting|done)$/.exec(message.trim());
        if (hop?.[2] === "starting") hopStart.set(hop[1]!, Date.now());
        if (hop?.[2] === "done") hopTimes?.push([hop[1]!, Date.now() - (hopStart.get(hop[1]!) ?? Date.now())]);
      }
    },
  });
  const total = Date.now() - started;
  if (result.code !== 0) throw new Error(`the run failed (exit ${result.code}):\n${result.stderr}\n${result.stdout.slice(-2000)}`);
  const steps = result.events().flatMap((e) => (e.type === "step-end" ? [[`${e.step} (${e.status})`, e.durationMs as number] as Row] : []));
  return { total, steps };
}

export function print(title: string, total: number, rows: Row[]): void {
  const width = Math.max(...rows.map(([name]) => name.length), 10);
  process.stdout.write(`\n${title}: ${(total / 1000).toFixed(1)}s wall\n`);
  for (const [name, ms] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${(ms / 1000).toFixed(1).padStart(6)}s\n`);
}
