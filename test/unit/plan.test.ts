import type { EngineEvent } from "@pulumi/pulumi/automation";
import { providerSettings, stepOutcome } from "../../lib/dynamicProvider";
import { changedOperations, operationsOf, staleDependencies, type PlanDependencies } from "../../stacks/plan";

// The pure parts of reviewed plans (stacks/plan.ts) and of the providers' shared helper.

const deps: PlanDependencies = {
  gitCommit: "a".repeat(40),
  gitDirty: false,
  release: "2.0.0",
  lockfileSha256: "l",
  projectConfigSha256: "p",
  stackConfigSha256: "s",
  lastUpdate: { version: 0, kind: "update", result: "succeeded", startTime: "2026-12-07T10:00:00.000Z" },
  pulumiCli: "3.274.1",
  pulumiSdk: "3.274.1",
  orchestrator: "0.1.0",
};

test("a plan's dependencies: each difference named, with both values; none when equal", () => {
  expect(staleDependencies(deps, { ...deps })).toEqual([]);
  const now = { ...deps, gitDirty: true, stackConfigSha256: "t", lastUpdate: { ...deps.lastUpdate!, kind: "refresh", startTime: "2026-12-07T11:00:00.000Z" } };
  const stale = staleDependencies(deps, now);
  expect(stale).toHaveLength(3);
  expect(stale[0]).toBe("uncommitted changes in the project: false when planned, true now");
  expect(stale[1]).toBe("the stack config (Pulumi.<stack>.yaml): s when planned, t now");
  expect(stale[2]).toMatch(/^the stack's last update \(another update ran since\): \{.*"kind":"update".*\} when planned, \{.*"kind":"refresh".*\} now$/);
});

const pre = (op: string, urn: string, diffs?: string[], keys?: string[]) =>
  ({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op, urn, type: urn.split("::")[2], diffs, keys, provider: "" } } }) as unknown as EngineEvent;

test("the preview's operations: not `same`, keys sorted and unique, no values; differences both ways", () => {
  const ops = operationsOf([
    pre("same", "urn:pulumi:p::proj::aws:s3:Bucket::logs"),
    pre("update", "urn:pulumi:p::proj::x:Lt::workers-lt", ["release", "name"], ["name"]),
    pre("replace", "urn:pulumi:p::proj::x:Asg::workers-asg", ["launchTemplateVersion"]),
    { sequence: 1, timestamp: 0, diagnosticEvent: { message: "hi", color: "never", severity: "info" } } as unknown as EngineEvent,
  ]);
  expect(ops).toEqual([
    { urn: "urn:pulumi:p::proj::x:Asg::workers-asg", type: "x:Asg", op: "replace", keys: ["launchTemplateVersion"] },
    { urn: "urn:pulumi:p::proj::x:Lt::workers-lt", type: "x:Lt", op: "update", keys: ["name", "release"] },
  ]);
  expect(changedOperations(ops, [...ops])).toEqual([]);
  const added = [...ops, { urn: "urn:pulumi:p::proj::x:Tag::extra", type: "x:Tag", op: "create", keys: [] }];
  expect(changedOperations(ops, added)).toEqual(["not in the plan: create urn:pulumi:p::proj::x:Tag::extra"]);
  expect(changedOperations(added, ops)).toEqual(["planned, no longer previewed: create urn:pulumi:p::proj::x:Tag::extra"]);
  // the same resource with other changed keys is a different operation
  expect(changedOperations(ops, [ops[0]!, { ...ops[1]!, keys: ["name"] }])).toEqual([
    "not in the plan: update urn:pulumi:p::proj::x:Lt::workers-lt [name]",
    "planned, no longer previewed: update urn:pulumi:p::proj::x:Lt::workers-lt [name, release]",
  ]);
});

test("providerSettings: computed keys and __provider stripped; check names each bad key; read refuses for good", () => {
  const parse = (raw: Record<string, unknown>) =>
    typeof raw.version === "string" ? { settings: raw as { version: string } } : { issues: [{ key: "hosts[0].ssh.port", message: "expected a number" }] };
  const s = providerSettings("test settings", parse, ["plannedPath"]);
  expect(s.strip({ version: "1", plannedPath: ["2"], __provider: "x" })).toEqual({ version: "1" });
  expect(s.check({ version: "1", plannedPath: [] })).toEqual({ settings: { version: "1" } });
  expect(s.check({ version: 1 })).toEqual({ failed: { inputs: { version: 1 }, failures: [{ property: "hosts", reason: "hosts[0].ssh.port: expected a number" }] } });
  expect(s.tryRead({ version: 1 })).toBeUndefined();
  expect(() => s.read({ version: 1 })).toThrow(/could not read the test settings: hosts\[0\]\.ssh\.port: expected a number/);
});

test("stepOutcome: one line per finished step, nothing for other events", () => {
  const end = (status: "done" | "skipped" | "failed", extra: Record<string, string>) => ({ type: "step-end", step: "s", title: "S", durationMs: 1, status, ...extra }) as const;
  expect(stepOutcome(end("done", { note: "two\n  lines" }))).toBe("done (two lines)");
  expect(stepOutcome(end("skipped", { note: "already" }))).toBe("skipped (already)");
  expect(stepOutcome(end("failed", { error: "boom" }))).toBe("failed: boom");
  expect(stepOutcome({ type: "note", message: "x" })).toBeUndefined();
});
