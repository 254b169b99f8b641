import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { SandboxExtra, SandboxStatus } from "./daemon";
import { delay } from "./processes";

/** `upgrade-orchestrator sandbox up|status|down`: the test bed in the background, for a shell. */
export interface SandboxControlOptions {
  /** State dir (env file, status, log); default .sandbox in the current directory. */
  dir?: string;
  /**
   * Also stand up a system to upgrade by hand: `codeocean`, the Code Ocean fixture at 1.0.0 with
   * computations running; `backendai`, a fixture Backend.AI cluster at 23.09.8 adopted by an own stack;
   * `openedx`, an Open edX fleet at redwood.3 (sumac.3 AMIs registered) adopted by an own stack.
   */
  with?: SandboxExtra;
  log?: (line: string) => void;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function readStatus(dir: string): SandboxStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8")) as SandboxStatus;
  } catch {
    return undefined;
  }
}

export async function sandboxUp({ dir = ".sandbox", log = console.log, with: extra }: SandboxControlOptions = {}): Promise<SandboxStatus> {
  dir = path.resolve(dir);
  const current = readStatus(dir);
  if (current && current.state !== "stopped" && current.state !== "failed" && alive(current.pid)) {
    log(`sandbox already running (pid ${current.pid}); env file: ${current.envFile}`);
    return current;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.rmSync(path.join(dir, "status.json"), { force: true });
  const logFile = path.join(dir, "daemon.log");
  const out = fs.openSync(logFile, "w");
  const daemon = spawn(process.execPath, [path.join(__dirname, "daemon.js"), dir, ...(extra ? [`--with=${extra}`] : [])], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  daemon.unref();
  // Utilitarian's first start on a machine builds its fixture images (debootstrap, PyPI): minutes.
  const waitMs = extra === "utilitarian" ? 1_200_000 : 180_000;
  const deadline = Date.now() + waitMs;
  const what = {
    codeocean: ", the Code Ocean deployment",
    backendai: ", PostgreSQL and a Backend.AI cluster",
    "codeocean-vpc": ", the Code Ocean VPC stacks",
    openedx: ", MariaDB and an Open edX fleet",
    utilitarian: ", podman, a registry, RabbitMQ, PostgreSQL and Utilitarian in Docker Compose",
  } as const;
  log(`starting the sandbox (moto, fault proxy, sshd, Pulumi file backend${extra ? what[extra] : ""}) in ${dir} ...`);
  while (Date.now() < deadline) {
    const status = readStatus(dir);
    if (status?.state === "ready") {
      log(`sandbox ready. Load its environment with:\n  source ${status.envFile}`);
      if (status.hint) log(status.hint);
      return status;
    }
    if (status?.state === "failed" || daemon.exitCode !== null) {
      throw new Error(`the sandbox failed to start: ${status?.error ?? fs.readFileSync(logFile, "utf8")}`);
    }
    await delay(200);
  }
  if (daemon.pid) process.kill(daemon.pid, "SIGTERM");
  throw new Error(`the sandbox did not become ready within ${waitMs / 1000}s; see ${logFile}`);
}

export function sandboxStatus({ dir = ".sandbox", log = console.log }: SandboxControlOptions = {}): SandboxStatus | undefined {
  dir = path.resolve(dir);
  const status = readStatus(dir);
  if (!status || status.state === "stopped" || !alive(status.pid)) {
    log(`sandbox: not running (${dir})`);
    return undefined;
  }
  log(`sandbox: ${status.state} since ${status.startedAt}; env file: ${status.envFile}`);
  if (status.hint) log(status.hint);
  for (const p of status.processes) log(`  ${p.name}: pid ${p.pid} ${alive(p.pid) ? "running" : "GONE"}`);
  return status;
}

export async function sandboxDown({ dir = ".sandbox", log = console.log }: SandboxControlOptions = {}): Promise<void> {
  dir = path.resolve(dir);
  const status = readStatus(dir);
  if (!status || !alive(status.pid)) {
    log("sandbox: not running; nothing to stop");
    return;
  }
  process.kill(status.pid, "SIGTERM");
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (alive(status.pid) || status.processes.some((p) => alive(p.pid)))) await delay(200);
  for (const p of status.processes.filter((q) => alive(q.pid))) {
    try {
      process.kill(-p.pid, "SIGKILL"); // the guard's process group: guard and server
    } catch {
      process.kill(p.pid, "SIGKILL");
    }
  }
  for (const sub of ["bed", "codeocean-deployment"]) fs.rmSync(path.join(dir, sub), { recursive: true, force: true });
  log(`sandbox stopped (${status.processes.length} processes)`);
}
