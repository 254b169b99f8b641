import { UpgradeError } from "../../lib/errors";
import { withRetry } from "../../lib/retry";

// p-retry is ESM-only; this runs the real module under jest (compiled by ts-jest), not a mock.
const fast = { minTimeoutMs: 1, maxTimeoutMs: 5 };

test("transient failures are retried until one attempt succeeds", async () => {
  const seen: number[] = [];
  const retried: number[] = [];
  const value = await withRetry(
    "read the thing",
    async (n) => {
      seen.push(n);
      if (n < 3) throw new Error("ECONNRESET");
      return "ok";
    },
    { ...fast, onRetry: ({ attempt }) => retried.push(attempt) },
  );
  expect(value).toBe("ok");
  expect(seen).toEqual([1, 2, 3]);
  expect(retried).toEqual([1, 2]);
});

test("a permanent failure is not retried and keeps its message", async () => {
  let attempts = 0;
  const permanent = new UpgradeError({ what: "cancel", why: "HTTP 403", permanent: true });
  await expect(
    withRetry("cancel", async () => {
      attempts++;
      throw permanent;
    }, fast),
  ).rejects.toBe(permanent);
  expect(attempts).toBe(1);
});

test("the budget ends with an error naming the attempts", async () => {
  let attempts = 0;
  await expect(
    withRetry("reach the services API", async () => {
      attempts++;
      throw new Error("HTTP 503");
    }, { ...fast, retries: 2 }),
  ).rejects.toThrow("could not reach the services API: HTTP 503 (after 3 attempts)");
  expect(attempts).toBe(3);
});

test("isPermanent classifies foreign errors", async () => {
  let attempts = 0;
  await expect(
    withRetry("x", async () => {
      attempts++;
      throw Object.assign(new Error("not found"), { status: 404 });
    }, { ...fast, isPermanent: (e) => (e as { status?: number }).status === 404 }),
  ).rejects.toThrow(/not found \(after 1 attempt\)/);
  expect(attempts).toBe(1);
});
