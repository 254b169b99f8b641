import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";

/**
 * Every server of the test bed runs under a small bash guard in its own process group. The guard
 * forwards SIGTERM to the server and also stops it when the process that started it is gone
 * (a killed jest worker, a crashed sandbox daemon), so no server outlives its owner.
 */
const GUARD = `
owner=$1; shift
"$@" & server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; exit 0' TERM INT HUP
while kill -0 "$owner" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
kill -TERM $server 2>/dev/null; wait $server
`;

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** The last lines the server wrote (stdout and stderr), for error messages. */
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

const running = new Set<ManagedProcess>();

/** Stops every server this process started, synchronously: for exit paths that cannot wait. */
export function killAllNow(): void {
  for (const proc of running) {
    try {
      process.kill(-proc.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }
  running.clear();
}

let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once("exit", killAllNow);
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startGuarded({ name, command, args, env, cwd }: StartOptions): ManagedProcess {
  installExitHooks();
  const child: ChildProcess = spawn("bash", ["-c", GUARD, "guard", String(process.pid), command, ...args], {
    cwd,
    env: env ?? process.env,
    detached: true, // own process group: stop() reaches the guard and the server together
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  let tail = "";
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let hasExited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once("exit", () => {
    hasExited = true;
    resolve();
  }));
  child.unref();
  (child.stdout as net.Socket | null)?.unref?.();
  (child.stderr as net.Socket | null)?.unref?.();

  const proc: ManagedProcess = {
    name,
    pid,
    output: () => tail,
    exited: () => hasExited,
    async stop() {
      running.delete(proc);
      if (hasExited) return;
      signalGroup(pid, "SIGTERM");
      if (!(await exitsWithin(exitedPromise, 5000))) {
        signalGroup(pid, "SIGKILL");
        await exitsWithin(exitedPromise, 2000);
      }
    },
  };
  running.add(proc);
  return proc;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** Whether `exited` settles within `ms`; the timer does not outlive the answer. */
function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Waits until something accepts TCP connections on 127.0.0.1:port, or the process dies, or the deadline passes. */
export async function waitForPort(proc: ManagedProcess, port: number, timeoutMs = 30_000, host = "127.0.0.1"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exited()) {
      throw new Error(`${proc.name} exited before listening on ${host}:${port}:\n${proc.output()}`);
    }
    if (await canConnect(port, host)) return;
    await delay(100);
  }
  await proc.stop();
  throw new Error(`${proc.name} did not listen on ${host}:${port} within ${timeoutMs / 1000}s:\n${proc.output()}`);
}

function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
