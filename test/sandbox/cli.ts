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

export function runCli(args: string[], env: Record<string, string | undefined>, options: { timeoutMs?: number; onStdout?: (chunk: string) => void } = {}): Promise<CliRun> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
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
