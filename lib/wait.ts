/**
 * Polling with a deadline, an interval and progress: nothing waits forever. `poll` returns
 * `done: true` to stop, with whatever it last saw; at the deadline `onTimeout` builds the error
 * from the last observation.
 */
export interface PollOptions<T> {
  intervalMs: number;
  timeoutMs: number;
  poll: (attempt: number) => Promise<{ done: boolean; seen: T }>;
  onProgress?: (info: { seen: T; elapsedMs: number; timeoutMs: number; attempt: number }) => void;
  onTimeout: (lastSeen: T | undefined, elapsedMs: number) => Error;
  signal?: AbortSignal;
  /** For tests and benchmarks: the clock. */
  now?: () => number;
}

export async function pollUntil<T>(options: PollOptions<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const started = now();
  let last: T | undefined;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const { done, seen } = await options.poll(attempt);
    last = seen;
    const elapsedMs = now() - started;
    options.onProgress?.({ seen, elapsedMs, timeoutMs: options.timeoutMs, attempt });
    if (done) return seen;
    if (elapsedMs + options.intervalMs > options.timeoutMs) throw options.onTimeout(last, elapsedMs);
    await sleep(options.intervalMs, options.signal);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** "30m", "15s", "1h30m", "500ms", or a bare number of seconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * units[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === trimmed.length && matched > 0 ? total : undefined;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}
