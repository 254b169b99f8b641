import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./fixtures";

/** Runs the built CLI (dist/stacks/cli.js) as a pipeline would: no TTY, stdout and stderr captured. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (throws if a line is not JSON). */
  events(): Array<Record<string, unknown> & { type: string }>;
}

export const CLI = path.join(REPO_ROOT, "dist", "stacks", "cli.js");
/** `npm run sandbox`: a repository script, outside the package. */
export const SANDBOX_CLI = path.join(REPO_ROOT, "dist", "scripts", "sandbox.js");

export function runCli(args: string[], env: Record<string, string | undefined>, options: { timeoutMs?: number; onStdout?: (chunk: string) => void; script?: string } = {}): Promise<CliRun> {
  const script = options.script ?? CLI;
  if (!fs.existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      options.onStdout?.(d.toString());
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`CLI did not finish within ${(options.timeoutMs ?? 240_000) / 1000}s\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 240_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        events: () => stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown> & { type: string }),
      });
    });
  });
}

/**
 * Starts the CLI in its own process group and calls `onEvent` for each JSON line, so a test can
 * kill it (kill -9 of the whole group, as a cancelled CI job does) or interrupt it at a chosen moment.
 */
export interface LiveCli {
  pid: number;
  /** Resolves with the exit code (or 128+signal number) once the process is gone. */
  exited: Promise<number>;
  stdout(): string;
  stderr(): string;
  /**
   * Sends a signal to the CLI process itself, or with `group` to its whole process group and every
   * descendant (the engine starts provider plugins that may leave the group; a crash or a
   * cancelled CI job takes them all).
   */
  signal(signal: NodeJS.Signals, group?: boolean): void;
}

export function startCli(args: string[], env: Record<string, string | undefined>, onEvent: (event: Record<string, unknown> & { type: string }) => void = () => {}): LiveCli {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d;
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) onEvent(JSON.parse(line) as Record<string, unknown> & { type: string });
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const signals: Record<string, number> = { SIGKILL: 9, SIGINT: 2, SIGTERM: 15 };
  const exited = new Promise<number>((resolve) => child.on("exit", (code, sig) => resolve(code ?? 128 + (signals[sig ?? ""] ?? 0))));
  return {
    pid: child.pid!,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    signal(sig, group = false) {
      const targets = group ? [-child.pid!, ...descendants(child.pid!)] : [child.pid!];
      for (const target of targets) {
        try {
          process.kill(target, sig);
        } catch {
          /* gone */
        }
      }
    },
  };
}

/** Every live descendant of `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // the ppid is the 2nd field after the parenthesised command name
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* exited meanwhile */
    }
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}
