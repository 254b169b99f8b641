import * as fs from "node:fs";
import * as os from "node:os";
import { refused } from "../lib/errors";
import { engineLocksPrefix, type BackendStore } from "./backend";

/**
 * One run per stack, across operators and machines: a lock object stored beside the stack's state
 * in the Pulumi backend (`.pulumi/upgrade-orchestrator/locks/<project>/<stack>.json`), which every
 * operator of the stack shares. Pulumi's own lock covers only `up`; this one covers the whole run
 * (draining takes minutes to hours before `up`). It is created with a conditional write (S3
 * `If-None-Match: *`; a file opened with O_EXCL), its heartbeat replaced only while it is still
 * ours (S3 `If-Match: <etag>`), and deleted the same way on exit. A lock whose holder is gone (its
 * process on this host has exited) is taken over with a note; one whose heartbeat is older than
 * STALE_AFTER_MS needs --force-unlock. An object that is not a lock of ours is never overwritten.
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
  /** Where the lock is, for messages: the backend and the key. */
  readonly location: string;
  /** Set when an existing stale lock was taken over. */
  readonly tookOver?: LockHolder;
  /** Set when a heartbeat found the lock replaced by someone else (a --force-unlock elsewhere). */
  lost(): LockHolder | "deleted" | undefined;
  release(): Promise<void>;
}

export const STALE_AFTER_MS = 2 * 60_000;
const HEARTBEAT_MS = 20_000;

/** A lock holder from a stored object, or why it is not one. */
export function parseHolder(body: string): LockHolder | { invalid: "malformed" | "not ours"; detail: string } {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    return { invalid: "malformed", detail: `not JSON (${(err as Error).message})` };
  }
  const v = value as Partial<Record<keyof LockHolder, unknown>>;
  const strings = ["runId", "user", "host", "since", "heartbeat"] as const;
  const missing = [...strings.filter((k) => typeof v?.[k] !== "string"), ...(typeof v?.pid === "number" ? [] : ["pid"])];
  if (typeof value !== "object" || value === null || missing.length > 0) {
    return { invalid: "not ours", detail: `JSON without a run lock's fields (${missing.join(", ") || "not an object"})` };
  }
  if (Number.isNaN(Date.parse(v.heartbeat as string))) return { invalid: "malformed", detail: `heartbeat ${JSON.stringify(v.heartbeat)} is not a time` };
  return v as LockHolder;
}

const isHolder = (h: ReturnType<typeof parseHolder>): h is LockHolder => !("invalid" in h);

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
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
  // A killed process whose parent has not reaped it yet (a zombie) still answers kill(pid, 0), but
  // it holds nothing: on Linux its state in /proc says so.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return true;
  }
}

export function describeHolder(h: LockHolder): string {
  return `run ${h.runId} by ${h.user} on ${h.host} (pid ${h.pid}) since ${h.since}`;
}

const WHAT = "lock the stack for this run";

function refuseForeign(location: string, problem: { invalid: string; detail: string }) {
  return refused(
    WHAT,
    `the lock object ${location} is ${problem.invalid === "malformed" ? "malformed" : "not a run lock of upgrade-orchestrator"}: ${problem.detail}; it was left as it is`,
    "find out what wrote it; if nothing uses it, delete that object and re-run (--force-unlock does not overwrite what is not a lock)",
  );
}

/** What the lock object says now, for a dry run: free, held, stale, or not a lock. */
export async function describeLock(store: BackendStore, key: string): Promise<string> {
  const current = await store.get(key);
  if (!current) return "free";
  const holder = parseHolder(current.body);
  if (!isHolder(holder)) return `not a run lock (${holder.invalid}: ${holder.detail})`;
  return `held by ${describeHolder(holder)}${isStale(holder) ? " (stale)" : ""}`;
}

export async function acquireRunLock(store: BackendStore, key: string, runId: string, forceUnlock: boolean): Promise<RunLock> {
  const location = `${store.description}/${key}`;
  const now = new Date().toISOString();
  const me: LockHolder = { runId, user: os.userInfo().username, host: os.hostname(), pid: process.pid, since: now, heartbeat: now };
  let tookOver: LockHolder | undefined;
  let etag: string | undefined;
  for (let attempt = 0; etag === undefined; attempt++) {
    const created = await store.createIfAbsent(key, JSON.stringify(me));
    if (created.created) {
      etag = created.etag;
      break;
    }
    const current = await store.get(key);
    if (!current) {
      if (attempt < 3) continue; // released between our write and our read
      throw refused(WHAT, `the lock object ${location} keeps changing`, "another run is starting; retry in a moment");
    }
    const holder = parseHolder(current.body);
    if (!isHolder(holder)) throw refuseForeign(location, holder);
    const stale = staleness(holder);
    if (!stale) {
      throw refused(WHAT, `it is held by ${describeHolder(holder)}`, "wait for that run to finish; `upgrade-orchestrator status` shows its progress");
    }
    if (!forceUnlock && stale !== "gone") {
      throw refused(
        WHAT,
        `a stale lock is left by ${describeHolder(holder)} (its process is gone or silent since ${holder.heartbeat})`,
        "make sure that run is really over, then re-run with --force-unlock",
      );
    }
    const replaced = await store.replaceIf(key, JSON.stringify(me), current.etag);
    if (!replaced.replaced) throw refused(WHAT, `another run took over the stale lock of ${describeHolder(holder)} at the same moment`, "see `upgrade-orchestrator status`");
    tookOver = holder;
    etag = replaced.etag;
  }
  let lost: LockHolder | "deleted" | undefined;
  let beating: Promise<void> = Promise.resolve();
  const beat = async () => {
    if (lost || etag === undefined) return;
    const next = await store.replaceIf(key, JSON.stringify({ ...me, heartbeat: new Date().toISOString() }), etag);
    if (next.replaced) {
      etag = next.etag;
      return;
    }
    const current = await store.get(key);
    const holder = current && parseHolder(current.body);
    lost = holder && isHolder(holder) ? holder : "deleted";
  };
  const timer = setInterval(() => {
    beating = beating.then(beat).catch(() => undefined); // a failed heartbeat is retried at the next tick
  }, HEARTBEAT_MS);
  timer.unref();
  return {
    location,
    tookOver,
    lost: () => lost,
    async release() {
      clearInterval(timer);
      await beating;
      if (!lost && etag !== undefined) await store.deleteIf(key, etag).catch(() => false);
    },
  };
}

/** Pulumi's own update lock of a DIY backend: `.pulumi/locks/<org>/<project>/<stack>/<id>.json`. */
export interface EngineLock {
  /** The backend and key, for messages. */
  file: string;
  key: string;
  pid: number;
  username: string;
  hostname: string;
  timestamp: string;
}

export async function engineLocks(store: BackendStore, project: string, stack: string): Promise<EngineLock[]> {
  const keys = (await store.list(engineLocksPrefix)).filter((k) => {
    const parts = k.slice(engineLocksPrefix.length).split("/");
    // project-scoped: <org>/<project>/<stack>/<id>.json; legacy non-project layout: <stack>/<id>.json
    return k.endsWith(".json") && ((parts.length === 4 && parts[1] === project && parts[2] === stack) || (parts.length === 2 && parts[0] === stack));
  });
  const found: EngineLock[] = [];
  for (const key of keys) {
    const object = await store.get(key);
    if (!object) continue; // released meanwhile
    const file = `${store.description}/${key}`;
    try {
      found.push({ file, key, ...(JSON.parse(object.body) as Omit<EngineLock, "file" | "key">) });
    } catch {
      found.push({ file, key, pid: -1, username: "?", hostname: "?", timestamp: "?" });
    }
  }
  return found;
}
