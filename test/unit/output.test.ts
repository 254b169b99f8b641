import type { EngineEvent } from "@pulumi/pulumi/automation";
import { createRenderer, engineLine } from "../../stacks/output";

// What the terminal shows of engine events: the preview's plan with the changed plain inputs.
const urn = "urn:pulumi:prod::upgrade-orchestrator::pulumi-nodejs:dynamic/backendai:BackendAiCluster::gpu";
const type = "pulumi-nodejs:dynamic/backendai:BackendAiCluster";
const state = (inputs: Record<string, unknown>) => ({ type, urn, inputs, outputs: {} }) as never;

test("a planned update shows its changed plain inputs; secrets and objects stay out", () => {
  const event = {
    sequence: 1,
    timestamp: 0,
    resOutputsEvent: {
      metadata: {
        op: "update", urn, type, provider: "",
        diffs: ["version", "plannedPath", "hosts", "token"],
        old: state({ version: "23.09.8", plannedPath: [], hosts: [{ component: "manager" }], token: "[secret]" }),
        new: state({ version: "24.03.2", plannedPath: ["23.09.10", "24.03.0", "24.03.2"], hosts: [{ component: "agent" }], token: "[secret]" }),
      },
    },
  } as EngineEvent;
  expect(engineLine(event)).toBe(`~ ${type} gpu (version: 23.09.8 → 24.03.2; plannedPath: (none) → 23.09.10, 24.03.0, 24.03.2)`);
  // without the engine's list of changed keys (dynamic providers), the inputs are compared
  delete (event.resOutputsEvent!.metadata as { diffs?: string[] }).diffs;
  expect(engineLine(event)).toBe(`~ ${type} gpu (version: 23.09.8 → 24.03.2; plannedPath: (none) → 23.09.10, 24.03.0, 24.03.2)`);
});

test("the engine's provider resources are not listed", () => {
  const meta = { op: "update", urn: "urn:pulumi:prod::p::pulumi:providers:pulumi-nodejs::default", type: "pulumi:providers:pulumi-nodejs", provider: "" };
  expect(engineLine({ sequence: 1, timestamp: 0, resOutputsEvent: { metadata: meta } } as EngineEvent)).toBeUndefined();
});

test("a resource's own progress (info with a urn) and a workflow provider's (without) are shown; debug is not", () => {
  const diag = (severity: string, withUrn: boolean) =>
    engineLine({ sequence: 1, timestamp: 0, diagnosticEvent: { message: "hop 23.09.8 → 23.09.10: done\n", severity, color: "never", ...(withUrn ? { urn } : {}) } } as EngineEvent);
  expect(diag("info", true)).toBe("gpu: hop 23.09.8 → 23.09.10: done");
  expect(diag("info", false)).toBe("hop 23.09.8 → 23.09.10: done");
  expect(diag("debug", true)).toBeUndefined();
  expect(diag("warning", false)).toBe("warning: hop 23.09.8 → 23.09.10: done");
});

test("what was planned or done; unchanged resources are not listed", () => {
  const meta = { op: "same", urn, type, provider: "" };
  expect(engineLine({ sequence: 1, timestamp: 0, resOutputsEvent: { metadata: meta } } as EngineEvent)).toBeUndefined();
  expect(engineLine({ sequence: 1, timestamp: 0, resOutputsEvent: { metadata: { ...meta, op: "update" } } } as EngineEvent)).toBe(`~ ${type} gpu`);
  expect(engineLine({ sequence: 1, timestamp: 0, resOpFailedEvent: { metadata: { ...meta, op: "update" }, status: 1, steps: 0 } } as EngineEvent)).toBe(`~ ${type} gpu FAILED`);
  // the step's start is not a line of its own: its outcome is
  expect(engineLine({ sequence: 1, timestamp: 0, resourcePreEvent: { metadata: { ...meta, op: "update" } } } as EngineEvent)).toBeUndefined();
});

test("values only known after the update say so; deletes and creates list no changes", () => {
  const meta = (op: string) => ({
    op, urn, type, provider: "", diffs: ["name"],
    old: state({ name: "workers-prod-1-asg" }),
    new: state({ name: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" }),
  });
  const line = (op: string) => engineLine({ sequence: 1, timestamp: 0, resOutputsEvent: { metadata: meta(op) } } as unknown as EngineEvent);
  expect(line("replace")).toBe(`+- ${type} gpu (name: workers-prod-1-asg → (known after the update))`);
  expect(line("delete-replaced")).toBe(`-- ${type} gpu`);
  expect(line("create")).toBe(`+ ${type} gpu`);
});

test("the live task list never wraps a row (the redraw counts one terminal line per row)", () => {
  const written: string[] = [];
  const out = { columns: 80, write: (s: string) => (written.push(s), true) } as unknown as NodeJS.WriteStream;
  const renderer = createRenderer("tty", out);
  renderer.sink({ type: "step-start", step: "lock-stack", title: "Lock the stack for this run", time: new Date().toISOString() });
  renderer.sink({ type: "step-end", step: "lock-stack", title: "Lock the stack for this run", status: "done", durationMs: 120, note: "locked (/work/main/.sandbox/bed/pulumi/state/.pulumi/locks/prod.json) ✔✔✔" });
  renderer.close();
  const rows = written.join("").replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split("\n").filter(Boolean);
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) expect([row, [...row].length <= 80]).toEqual([row, true]);
  expect(rows.some((r) => r.includes("Lock the stack for this run (0:00) — locked (/work") && r.endsWith("…"))).toBe(true);
});

test("a workflow's ACTION NEEDED line stays on screen during `up`, above the live task list", () => {
  const written: string[] = [];
  const out = { columns: 120, write: (s: string) => (written.push(s), true) } as unknown as NodeJS.WriteStream;
  const renderer = createRenderer("tty", out);
  const say = (message: string) =>
    renderer.sink({ type: "engine", step: "up", event: { sequence: 1, timestamp: 0, diagnosticEvent: { message: `${message}\n`, severity: "info", color: "never" } } as EngineEvent });
  renderer.sink({ type: "step-start", step: "up", title: "Apply the update (pulumi up)", time: new Date().toISOString() });
  say("codeocean-vpc prod-vpc → 3.8.2: maintenance: ACTION NEEDED: enable maintenance mode in the Code Ocean admin panel");
  say("codeocean-vpc prod-vpc → 3.8.2: maintenance: waiting: 3 Batch job(s) active");
  renderer.close();
  const printed = written.join("").replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split("\n");
  // printed as a line of its own (two leading spaces), not only as the step row's latest detail
  expect(printed).toContain("  codeocean-vpc prod-vpc → 3.8.2: maintenance: ACTION NEEDED: enable maintenance mode in the Code Ocean admin panel");
  expect(printed).not.toContain("  codeocean-vpc prod-vpc → 3.8.2: maintenance: waiting: 3 Batch job(s) active");
  expect(printed.some((l) => l.includes("Apply the update (pulumi up)") && l.includes("waiting: 3 Batch job(s) active"))).toBe(true);
});

test("the plain log shows a workflow's progress during `up`", () => {
  const written: string[] = [];
  const out = { write: (s: string) => (written.push(s), true) } as unknown as NodeJS.WriteStream;
  const renderer = createRenderer("plain", out);
  renderer.sink({ type: "engine", step: "up", event: { sequence: 1, timestamp: 0, diagnosticEvent: { message: "utilitarian 2.0.0: backup: verified\n", severity: "info", color: "never" } } as EngineEvent });
  renderer.close();
  expect(written.join("")).toContain("[up] utilitarian 2.0.0: backup: verified");
});
