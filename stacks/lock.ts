import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { refused } from "../lib/errors";

/**
 * One run per stack, across operators and machines: a lock object stored beside the stack's state
 * in the Pulumi backend, which every operator of the stack shares. Pulumi's own lock covers only
 * `up`; this one covers the whole run (draining takes minutes to hours before `up`). The holder
 * refreshes a heartbeat; a lock whose holder is gone (its process on this host has exited, or its
 * heartbeat is older than STALE_AFTER_MS) is reported as stale and taken over with --force-unlock.
 * Backends supported: file:// (the local and shared-filesystem backends). Others are reported.
 */
export interface LockHolder {
  runId: string;
  user: string;
  host: string;
  pid: number;
  since: string;
  heartbeat: string;
}

export interface RunLock {
  readonly path: string;
  /** Set when an existing stale lock was taken over. */
  readonly tookOver?: LockHolder;
  release(): void;
}

export const STALE_AFTER_MS = 2 * 60_000;
const HEARTBEAT_MS = 20_000;

export function lockPath(backendUrl: string, project: string, stack: string): string | undefined {
  if (!backendUrl.startsWith("file://")) return undefined;
  const root = fileURLToPath(backendUrl.replace(/^file:\/\/~/, `file://${os.homedir()}`));
  return path.join(root, ".pulumi", "upgrade-orchestrator", "locks", project, `${stack.replace(/\//g, "_")}.json`);
}

export function readHolder(file: string): LockHolder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LockHolder;
  } catch {
    return undefined;
  }
}

/**
 * "gone": its process on this host has exited (certain: taken over with a warning);
 * "silent": its heartbeat stopped (it may be another machine cut off: --force-unlock decides).
 */
export function staleness(holder: LockHolder, now = Date.now()): "gone" | "silent" | undefined {
  if (holder.host === os.hostname() && !processAlive(holder.pid)) return "gone";
  return now - Date.parse(holder.heartbeat) > STALE_AFTER_MS ? "silent" : undefined;
}

export const isStale = (holder: LockHolder) => staleness(holder) !== undefined;

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

export function describeHolder(h: LockHolder): string {
  return `run ${h.runId} by ${h.user} on ${h.host} (pid ${h.pid}) since ${h.since}`;
}

export function acquireRunLock(file: string, runId: string, forceUnlock: boolean): RunLock {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const now = new Date().toISOString();
  const me: LockHolder = { runId, user: os.userInfo().username, host: os.hostname(), pid: process.pid, since: now, heartbeat: now };
  let tookOver: LockHolder | undefined;
  try {
    fs.writeFileSync(file, JSON.stringify(me), { flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = readHolder(file);
    const stale = holder && staleness(holder);
    if (holder && !stale) {
      throw refused("lock the stack for this run", `it is held by ${describeHolder(holder)}`, "wait for that run to finish; `upgrade-orchestrator status` shows its progress");
    }
    if (!forceUnlock && stale !== "gone") {
      throw refused(
        "lock the stack for this run",
        holder ? `a stale lock is left by ${describeHolder(holder)} (its process is gone or silent since ${holder.heartbeat})` : `the lock file ${file} is unreadable`,
        "make sure that run is really over, then re-run with --force-unlock",
      );
    }
    tookOver = holder;
    fs.writeFileSync(file, JSON.stringify(me));
  }
  const timer = setInterval(() => {
    const current = readHolder(file);
    if (current?.runId === runId) fs.writeFileSync(file, JSON.stringify({ ...current, heartbeat: new Date().toISOString() }));
  }, HEARTBEAT_MS);
  timer.unref();
  return {
    path: file,
    tookOver,
    release() {
      clearInterval(timer);
      if (readHolder(file)?.runId === runId) fs.rmSync(file, { force: true });
    },
  };
}

/** Pulumi's own update lock of a DIY (file://) backend: `.pulumi/locks/<org>/<project>/<stack>/<id>.json`. */
export interface EngineLock {
  file: string;
  pid: number;
  username: string;
  hostname: string;
  timestamp: string;
}

export function engineLocks(backendUrl: string, project: string, stack: string): EngineLock[] | undefined {
  if (!backendUrl.startsWith("file://")) return undefined;
  const root = path.join(fileURLToPath(backendUrl.replace(/^file:\/\/~/, `file://${os.homedir()}`)), ".pulumi", "locks");
  if (!fs.existsSync(root)) return [];
  const found: EngineLock[] = [];
  for (const org of fs.readdirSync(root)) {
    const dir = path.join(root, org, project, stack);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
      const file = path.join(dir, name);
      try {
        found.push({ file, ...(JSON.parse(fs.readFileSync(file, "utf8")) as Omit<EngineLock, "file">) });
      } catch {
        found.push({ file, pid: -1, username: "?", hostname: "?", timestamp: "?" });
      }
    }
  }
  return found;
}
