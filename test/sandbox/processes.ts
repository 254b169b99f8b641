import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { pollUntil } from "../../lib/wait";

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

/**
 * A port on 127.0.0.1 that was free a moment ago, for a server the bed starts as another process.
 * It is taken below the kernel's ephemeral range (ip_local_port_range): a port the kernel handed
 * out for `listen(0)` is one it also hands to outgoing connections, and on a busy machine one of
 * those could take it before the server binds it (RabbitMQ failed so with eaddrinuse).
 */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralStart() - 1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (!usedPorts.has(port) && (await canBind(port))) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error(`no free port on 127.0.0.1 between ${low} and ${high} after 50 tries`);
}

/** Ports this process handed out: never handed out twice, even after their server stopped. */
const usedPorts = new Set<number>();

function ephemeralStart(): number {
  try {
    const first = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > 11_000) return first;
  } catch {
    /* not Linux: IANA's dynamic range starts at 49152 */
  }
  return 32_768;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Waits until the server is ready by its own test (`probe`: a query it answers, a banner it sends),
 * never by an open port alone: PostgreSQL, for one, listens before it accepts connections. The
 * probe answers `true` when ready, else what it saw (for the error). Fails when the process dies
 * or the deadline passes; a start that takes long says so on stderr every 10 s.
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<true | string>,
  { timeoutMs = 60_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  let lastReport = 0;
  try {
    await pollUntil<string>({
      intervalMs,
      timeoutMs,
      poll: async () => {
        if (proc.exited()) throw new Error(`${proc.name} exited while starting:\n${proc.output()}`);
        const seen = await probe().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
        return seen === true ? { done: true, seen: "ready" } : { done: false, seen };
      },
      onProgress: ({ seen, elapsedMs }) => {
        if (seen === "ready" || elapsedMs - lastReport < 10_000) return;
        lastReport = elapsedMs;
        process.stderr.write(`[bed] still waiting for ${proc.name} after ${Math.round(elapsedMs / 1000)}s: ${seen}\n`);
      },
      onTimeout: (seen) => new Error(`${proc.name} was not ready within ${timeoutMs / 1000}s (last seen: ${seen ?? "nothing"}):\n${proc.output()}`),
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Readiness by HTTP: `url` answers with a status `ok` accepts (default 2xx). */
export function httpProbe(url: string, ok: (status: number) => boolean = (s) => s >= 200 && s < 300): () => Promise<true | string> {
  return async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return ok(res.status) || `${url} answered ${res.status}`;
  };
}

/** Readiness of a command: exit 0 is ready; otherwise its output says why not. */
export function commandProbe(command: string, args: string[], env?: NodeJS.ProcessEnv): () => Promise<true | string> {
  return () =>
    new Promise((resolve) => {
      execFile(command, args, { env: env ?? process.env, timeout: 10_000, encoding: "utf8" }, (err, stdout, stderr) =>
        resolve(err ? `${command}: ${(stderr || stdout || err.message).trim().split("\n").at(-1)}` : true),
      );
    });
}

/** Readiness of an SSH server: it sends its identification string (RFC 4253 4.2) on a new connection. */
export function sshBannerProbe(port: number, host = "127.0.0.1"): () => Promise<true | string> {
  return () =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      let text = "";
      const done = (answer: true | string) => {
        socket.destroy();
        resolve(answer);
      };
      socket.setTimeout(5000, () => done(`no SSH banner on ${host}:${port} within 5s`));
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("\n")) done(text.startsWith("SSH-2.0-") || `${host}:${port} sent ${JSON.stringify(text.slice(0, 40))}`);
      });
      socket.once("error", (err) => done(err.message));
      socket.once("end", () => done(`${host}:${port} closed the connection before its banner`));
    });
}

/** Readiness of a Docker-API engine on a unix socket (podman system service): `GET /_ping` answers OK. */
export function dockerPingProbe(socketPath: string): () => Promise<true | string> {
  return () =>
    new Promise((resolve) => {
      const req = http.get({ socketPath, path: "/_ping", timeout: 5000 }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve((res.statusCode === 200 && body.trim() === "OK") || `${socketPath} /_ping answered ${res.statusCode} ${body.slice(0, 80)}`));
      });
      req.once("timeout", () => req.destroy(new Error(`${socketPath} /_ping did not answer within 5s`)));
      req.once("error", (err) => resolve(err.message));
    });
}
