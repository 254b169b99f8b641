import pRetry, { AbortError } from "p-retry";
import { describe, UpgradeError } from "./errors";

/**
 * The retry policy: transient failures are retried with exponential backoff and jitter within a
 * budget; permanent ones (UpgradeError.permanent, or `isPermanent`) stop at once. The last error
 * is what the caller sees, with the attempt count.
 */
export interface RetryPolicy {
  /** Retries after the first attempt (default 4). */
  retries?: number;
  minTimeoutMs?: number;
  maxTimeoutMs?: number;
  /** Extra classification on top of UpgradeError.permanent. */
  isPermanent?: (err: unknown) => boolean;
  /** Called before each retry, e.g. to show progress. */
  onRetry?: (info: { attempt: number; retriesLeft: number; error: unknown }) => void;
  signal?: AbortSignal;
}

export async function withRetry<T>(what: string, attempt: (n: number) => Promise<T>, policy: RetryPolicy = {}): Promise<T> {
  const isPermanent = (err: unknown) =>
    (err instanceof UpgradeError && err.permanent) || (policy.isPermanent?.(err) ?? false);
  let attempts = 0;
  try {
    return await pRetry(
      async (n) => {
        attempts = n;
        try {
          return await attempt(n);
        } catch (err) {
          if (isPermanent(err)) throw new AbortError(err instanceof Error ? err : new Error(String(err)));
          throw err;
        }
      },
      {
        retries: policy.retries ?? 4,
        minTimeout: policy.minTimeoutMs ?? 500,
        maxTimeout: policy.maxTimeoutMs ?? 10_000,
        randomize: true,
        signal: policy.signal,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft > 0 && !isPermanent(error)) policy.onRetry?.({ attempt: attemptNumber, retriesLeft, error });
        },
      },
    );
  } catch (err) {
    if (err instanceof UpgradeError) throw err;
    throw new UpgradeError({
      what,
      why: `${describe(err)} (after ${attempts} attempt${attempts === 1 ? "" : "s"})`,
      cause: err,
    });
  }
}
