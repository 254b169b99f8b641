/**
 * One HTTP GET with a deadline: the status and body, or why there was none. Used by workflows'
 * verification checks (an expected text in the answer).
 */
export interface HttpAnswer {
  ok: boolean;
  status?: number;
  body?: string;
  /** Why there is no answer (refused, timed out, …). */
  error?: string;
}

export async function httpGet(url: string, timeoutMs = 5000): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return { ok: res.ok, status: res.status, body };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/** Whether an answer passes a check: a 2xx status and, when given, the expected text in the body. */
export const answerPasses = (answer: HttpAnswer, expect?: string) => answer.ok && (expect === undefined || (answer.body ?? "").includes(expect));

export const describeAnswer = (answer: HttpAnswer) =>
  answer.error ? `no answer (${answer.error})` : `HTTP ${answer.status}: ${(answer.body ?? "").slice(0, 120).replace(/\s+/g, " ")}`;
