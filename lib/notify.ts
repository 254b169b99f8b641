import { describe } from "./errors";
import type { Redactor } from "./redaction";
import { withRetry } from "./retry";

/** A webhook POST's deadline and the first backoff before a retry (the CLI's --notify-timeout and --notify-backoff show these). */
export const NOTIFY_DEFAULTS = { timeoutMs: 5000, minBackoffMs: 500 };

/**
 * Webhook notifications (`--notify <url>`): one JSON POST per event of a run or fleet (started,
 * succeeded, failed) with a Slack-compatible `text` and the structured `summary`. A webhook that
 * fails or hangs is retried with backoff within a small budget and never fails the upgrade: the
 * caller gets a note that it was not delivered. Every payload passes the redaction layer, and the
 * URL (which often carries a token) is shown only by its host.
 */
export interface NotifyPayload {
  /** Slack's `text`: one line for people. */
  text: string;
  event: "run-started" | "run-succeeded" | "run-failed" | "fleet-started" | "fleet-succeeded" | "fleet-failed";
  summary: Record<string, unknown>;
}

export interface NotifyOptions {
  redactor: Redactor;
  /** Deadline of one POST (default 5 s): a hanging webhook counts as failed. */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  minBackoffMs?: number;
}

export interface Delivery {
  /** The webhook as shown to people: scheme and host only. */
  target: string;
  delivered: boolean;
  attempts: number;
  error?: string;
}

export const webhookLabel = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(unparseable webhook URL)";
  }
};

export async function notify(urls: string[], payload: NotifyPayload, options: NotifyOptions): Promise<Delivery[]> {
  const body = JSON.stringify(options.redactor.value(payload));
  return Promise.all(
    urls.map(async (url): Promise<Delivery> => {
      const target = webhookLabel(url);
      let attempts = 0;
      try {
        await withRetry(
          `notify ${target}`,
          async () => {
            attempts++;
            const res = await fetch(url, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body,
              signal: AbortSignal.timeout(options.timeoutMs ?? NOTIFY_DEFAULTS.timeoutMs),
            });
            await res.arrayBuffer().catch(() => undefined);
            if (!res.ok) throw new Error(`HTTP ${res.status}`);
          },
          { retries: options.retries ?? 3, minTimeoutMs: options.minBackoffMs ?? NOTIFY_DEFAULTS.minBackoffMs, maxTimeoutMs: 5000 },
        );
        return { target, delivered: true, attempts };
      } catch (err) {
        const why = options.redactor.text(describe(err).split(url).join(target));
        return { target, delivered: false, attempts, error: why.replace(/^could not notify \S+: /, "") };
      }
    }),
  );
}

/** The notes a run reports about webhooks that were not delivered. */
export const undeliveredNotes = (deliveries: Delivery[], what: string): string[] =>
  deliveries.filter((d) => !d.delivered).map((d) => `the ${what} notification to ${d.target} was not delivered after ${d.attempts} attempt(s): ${d.error}; the upgrade is not affected`);
