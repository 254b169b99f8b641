import { describeProbe, type Probe } from "../../lib/http";
import type { ProbeSettings } from "./settings";

/**
 * Whether an HTTP answer passes a check: its status (default 200), a text in the body, JSON fields
 * (dotted paths with the value each must have). `allChecksTrue` reads edx-platform's heartbeat
 * body, `{"<check>": {"status": true|false, "message": "…"}, …}` (openedx/core/djangoapps/heartbeat):
 * every check must be true, and a failing one is named with its message. Pure.
 */
export function probeFailure(probe: Probe, spec: Pick<ProbeSettings, "status" | "text" | "json">, options: { allChecksTrue?: boolean } = {}): string | undefined {
  const status = spec.status ?? 200;
  let body: unknown;
  const parsed = () => {
    if (body === undefined) {
      try {
        body = JSON.parse(probe.body);
      } catch {
        body = null;
      }
    }
    return body;
  };
  if (options.allChecksTrue && probe.status !== undefined) {
    const failed = failedChecks(parsed());
    if (failed.length > 0) return `${probe.url}: HTTP ${probe.status}, failing check(s) ${failed.join(", ")}`;
  }
  if (probe.status !== status) return `${describeProbe(probe)} (expected HTTP ${status})`;
  if (spec.text !== undefined && !probe.body.includes(spec.text)) return `${probe.url}: the body lacks ${JSON.stringify(spec.text)}`;
  for (const [path, want] of Object.entries(spec.json ?? {})) {
    const got = path.split(".").reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), parsed());
    if (got !== want) return `${probe.url}: ${path} is ${got === undefined ? "absent" : JSON.stringify(got)}, not ${JSON.stringify(want)}`;
  }
  return undefined;
}

/** The checks of an edx-platform heartbeat body whose status is not true, with their messages. */
export function failedChecks(body: unknown): string[] {
  if (body === null || typeof body !== "object") return [];
  return Object.entries(body as Record<string, unknown>).flatMap(([name, check]) => {
    if (check === null || typeof check !== "object" || !("status" in check)) return name === "error" ? [`error (${String(check)})`] : [];
    const c = check as { status: unknown; message?: unknown };
    return c.status === true ? [] : [`${name} (${String(c.message ?? "no message")})`];
  });
}
