import { createRedactor } from "../../lib/redaction";
import { formatDuration, parseDuration, pollUntil } from "../../lib/wait";
import { identify } from "../sandbox/faultProxy";

test("parseDuration reads the CLI's durations and refuses the rest", () => {
  expect(parseDuration("30m")).toBe(1_800_000);
  expect(parseDuration("15s")).toBe(15_000);
  expect(parseDuration("1h30m")).toBe(5_400_000);
  expect(parseDuration("500ms")).toBe(500);
  expect(parseDuration("90")).toBe(90_000);
  for (const bad of ["", "soon", "10x", "m", "5m junk", "-5s"]) expect(parseDuration(bad)).toBeUndefined();
  expect(formatDuration(3_725_000)).toBe("1:02:05");
  expect(formatDuration(65_000)).toBe("1:05");
});

test("pollUntil reports progress each poll and fails at the deadline with the last value", async () => {
  let clock = 0;
  const seen: number[] = [];
  const failure = pollUntil<number>({
    intervalMs: 1,
    timeoutMs: 3,
    now: () => clock,
    poll: async (n) => {
      clock += 1;
      return { done: false, seen: n * 10 };
    },
    onProgress: ({ seen: s }) => seen.push(s),
    onTimeout: (last, elapsed) => new Error(`gave up after ${elapsed}ms at ${last}`),
  });
  await expect(failure).rejects.toThrow(/gave up after \d+ms at (20|30)/);
  expect(seen.length).toBeGreaterThanOrEqual(2);
  await expect(pollUntil({ intervalMs: 1, timeoutMs: 100, poll: async (n) => ({ done: n === 3, seen: n }), onTimeout: () => new Error("x") })).resolves.toBe(3);
});

test("the redactor hides secrets in text and nested values, PEM keys line by line", () => {
  const pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";
  const r = createRedactor(["hunter2-passphrase", undefined, "abc"]);
  r.add(pem);
  expect(r.text("passphrase is hunter2-passphrase.")).toBe("passphrase is [secret].");
  expect(r.text("abc stays (too short to redact safely)")).toContain("abc");
  expect(r.value({ a: ["x hunter2-passphrase"], n: 1, key: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW" }))
    .toEqual({ a: ["x [secret]"], n: 1, key: "[secret]" });
});

test("the fault proxy identifies service and action for query and JSON protocols", () => {
  const auth = { authorization: "AWS4-HMAC-SHA256 Credential=testing/20261124/us-east-1/autoscaling/aws4_request, SignedHeaders=host" };
  expect(identify({ headers: auth }, Buffer.from("Action=SetInstanceProtection&Version=2011-01-01&InstanceIds.member.1=i-1")))
    .toEqual({ service: "autoscaling", action: "SetInstanceProtection", params: expect.objectContaining({ "InstanceIds.member.1": "i-1" }) });
  const json = { authorization: auth.authorization.replace("autoscaling", "monitoring"), "x-amz-target": "GraniteServiceVersion20100801.GetMetricData" };
  expect(identify({ headers: json }, Buffer.from("{}"))).toEqual({ service: "monitoring", action: "GetMetricData", params: {} });
});

test("compareVersions orders Pulumi CLI versions numerically", async () => {
  const { compareVersions } = await import("../../lib/toolchain");
  expect(compareVersions("3.248.0", "3.248.0")).toBe(0);
  expect(compareVersions("3.260.1", "3.248.0")).toBeGreaterThan(0);
  expect(compareVersions("3.99.0", "3.248.0")).toBeLessThan(0);
  expect(compareVersions("4.0.0-alpha.1", "3.248.0")).toBeGreaterThan(0);
});

describe("release numbers (lib/versions.ts), the one comparator", () => {
  test("orders x.y.z releases as GNU sort -V does (an oracle we did not write), a v prefix no difference", () => {
    const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
    const { compareReleases } = require("../../lib/versions") as typeof import("../../lib/versions");
    const versions: string[] = [];
    for (const a of [0, 1, 2, 10]) for (const b of [0, 9, 10, 11]) for (const c of [0, 1, 100]) versions.push(`${a}.${b}.${c}`);
    // a fixed shuffle, so the input order is not already the answer
    const unique = versions.map((v, i) => [v, (i * 37) % versions.length] as const).sort((x, y) => x[1] - y[1]).map(([v]) => v);
    const bySort = execFileSync("sort", ["-V"], { input: unique.join("\n") + "\n", encoding: "utf8" }).trim().split("\n");
    const ours = [...unique].map((v, i) => (i % 2 ? `v${v}` : v)).sort(compareReleases).map((v) => v.replace(/^v/, ""));
    expect(unique.length).toBeGreaterThan(10);
    expect(ours).toEqual(bySort);
  });

  test("3.8 is 3.8.0; a pre-release or build suffix is not part of the order; anything else is refused", () => {
    const { compareReleases, releaseParts } = require("../../lib/versions") as typeof import("../../lib/versions");
    expect(compareReleases("3.8", "3.8.0")).toBe(0);
    expect(compareReleases("v3.191.0-alpha.1", "3.191.0")).toBe(0);
    expect(compareReleases("2.10.0", "2.9.9")).toBe(1);
    expect(releaseParts("latest")).toBeUndefined();
    expect(() => compareReleases("3.8.2", "main")).toThrow(/not a release number: "main"/);
  });
});
