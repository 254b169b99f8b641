import * as http from "node:http";
import * as https from "node:https";

/**
 * One HTTP GET with a deadline, for health and smoke checks: the status and the start of the body,
 * or the network error as text (never throws). `hostHeader` sends a virtual host's name to an
 * address (a load balancer's, say) that DNS does not yet point at.
 */
export interface Probe {
  url: string;
  status?: number;
  body: string;
  contentType?: string;
  error?: string;
  /** The answer's headers (lower-case names). */
  headers?: Record<string, string | string[] | undefined>;
}

export function probeHttp(url: string, options: { timeoutMs?: number; hostHeader?: string; headers?: Record<string, string>; maxBodyBytes?: number } = {}): Promise<Probe> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBody = options.maxBodyBytes ?? 64_000;
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ url, body: "", error: "not a URL" });
      return;
    }
    const get = target.protocol === "https:" ? https.get : http.get;
    const headers = { ...options.headers, ...(options.hostHeader ? { host: options.hostHeader } : {}) };
    const req = get(target, { headers, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < maxBody) body += chunk;
      });
      res.on("end", () => resolve({ url, status: res.statusCode, body, contentType: res.headers["content-type"], headers: res.headers }));
      res.on("error", (err) => resolve({ url, status: res.statusCode, body, error: err.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ url, body: "", error: err.message }));
  });
}

/** "200", "503: {…}", "connection refused…": a probe's outcome for people. */
export function describeProbe(probe: Probe): string {
  if (probe.error) return `${probe.url}: ${probe.error}`;
  const body = probe.body.replace(/\s+/g, " ").trim().slice(0, 120);
  return `${probe.url}: HTTP ${probe.status}${body ? ` ${body}` : ""}`;
}

/** A GET's answer for a check: `ok` is a 2xx status. */
export interface HttpAnswer {
  ok: boolean;
  status?: number;
  body?: string;
  /** Why there is no answer (refused, timed out, …). */
  error?: string;
}

/** `probeHttp` as a check's answer (workflows' verification checks: an expected text in the answer). */
export async function httpGet(url: string, timeoutMs = 5000): Promise<HttpAnswer> {
  const probe = await probeHttp(url, { timeoutMs });
  return { ok: !probe.error && probe.status !== undefined && probe.status >= 200 && probe.status < 300, status: probe.status, body: probe.body, error: probe.error };
}

/** Whether an answer passes a check: a 2xx status and, when given, the expected text in the body. */
export const answerPasses = (answer: HttpAnswer, expect?: string) => answer.ok && (expect === undefined || (answer.body ?? "").includes(expect));

export const describeAnswer = (answer: HttpAnswer) =>
  answer.error ? `no answer (${answer.error})` : `HTTP ${answer.status}: ${(answer.body ?? "").slice(0, 120).replace(/\s+/g, " ")}`;
