import { UpgradeError } from "../../lib/errors";
import type { StepRecord } from "../../lib/events";
import { runSteps, type Step } from "../../lib/steps";

// The step runner every runbook and workflow runs on: check before act, dry runs, failure and
// `always` steps, interruption, and the events it emits.
interface Ctx {
  log: string[];
  done: Set<string>;
}
const ctx = (): Ctx => ({ log: [], done: new Set() });

function step(id: string, extra: Partial<Step<Ctx>> = {}): Step<Ctx> {
  return {
    id,
    title: `Do ${id}`,
    check: async (c) => (c.done.has(id) ? `${id} already done` : undefined),
    run: async (c) => {
      c.log.push(id);
      return `${id} ran`;
    },
    ...extra,
  };
}

const run = async (steps: Array<Step<Ctx>>, c: Ctx, options: { dryRun?: boolean; signal?: AbortSignal } = {}) => {
  const events: Array<{ type: string; step?: string; status?: string }> = [];
  const outcome = await runSteps(steps, c, { dryRun: options.dryRun ?? false, emit: (e) => events.push(e as never), signal: options.signal });
  const statuses = outcome.records.map((r: StepRecord) => [r.step, r.status, r.note ?? r.error]);
  return { outcome, events, statuses };
};

test("runs steps in order, skips what check says is done, and records each with its note", async () => {
  const c = ctx();
  c.done.add("b");
  const { outcome, events, statuses } = await run([step("a"), step("b"), step("c")], c);
  expect(c.log).toEqual(["a", "c"]);
  expect(statuses).toEqual([["a", "done", "a ran"], ["b", "skipped", "b already done"], ["c", "done", "c ran"]]);
  expect(outcome.failure).toBeUndefined();
  expect(events.map((e) => `${e.type}:${e.step}`)).toEqual(["step-start:a", "step-end:a", "step-start:b", "step-end:b", "step-start:c", "step-end:c"]);
});

test("a step whose `when` does not hold is not run and not recorded", async () => {
  const c = ctx();
  const { statuses, events } = await run([step("a", { when: () => false }), step("b")], c);
  expect(statuses).toEqual([["b", "done", "b ran"]]);
  expect(events.some((e) => e.step === "a")).toBe(false);
});

test("a dry run runs read-only steps for real and describes the others by their plan", async () => {
  const c = ctx();
  const { statuses } = await run([step("read", { readOnly: true }), step("write", { plan: async () => "would write 3 things" }), step("bare")], c, { dryRun: true });
  expect(c.log).toEqual(["read"]);
  expect(statuses).toEqual([["read", "done", "read ran"], ["write", "skipped", "dry run: would write 3 things"], ["bare", "skipped", "dry run: would do bare"]]);
});

test("after a failure only `always` steps run; the first failure is the outcome's", async () => {
  const c = ctx();
  const boom = new UpgradeError({ what: "drain", why: "the deadline passed", hint: "raise --drain-timeout", exitCode: 3 });
  const { outcome, statuses } = await run(
    [
      step("a"),
      step("b", { run: async () => { throw boom; } }),
      step("c"),
      step("restore", { always: true }),
      step("restore-again", { always: true, run: async () => { throw new Error("second failure"); } }),
    ],
    c,
  );
  expect(c.log).toEqual(["a", "restore"]);
  expect(outcome.failure).toBe(boom);
  expect(statuses.map(([id, status]) => `${id}:${status}`)).toEqual(["a:done", "b:failed", "restore:done", "restore-again:failed"]);
  expect(statuses[1]![2]).toMatch(/drain.*the deadline passed/);
});

test("a failing verify fails its step even though run succeeded", async () => {
  const c = ctx();
  const { outcome, statuses } = await run([step("a", { verify: async () => { throw new Error("not applied"); } }), step("b")], c);
  expect(c.log).toEqual(["a"]);
  expect(statuses.map(([id, status]) => `${id}:${status}`)).toEqual(["a:failed"]);
  expect(String(outcome.failure)).toContain("not applied");
});

test("an interrupted run starts no further step but still runs the `always` ones, and fails with exit 130", async () => {
  const c = ctx();
  const controller = new AbortController();
  const { outcome, statuses } = await run(
    [step("a", { run: async (x) => { x.log.push("a"); controller.abort(); } }), step("b"), step("restore", { always: true })],
    c,
    { signal: controller.signal },
  );
  expect(c.log).toEqual(["a", "restore"]);
  expect(statuses.map(([id, status]) => `${id}:${status}`)).toEqual(["a:done", "restore:done"]);
  expect(outcome.failure).toBeInstanceOf(UpgradeError);
  expect((outcome.failure as UpgradeError).exitCode).toBe(130);
  expect((outcome.failure as UpgradeError).message).toMatch(/start step b.*interrupted/);
});

test("a check that throws fails the step without running it", async () => {
  const c = ctx();
  const { statuses } = await run([step("a", { check: async () => { throw new Error("could not read"); } })], c);
  expect(c.log).toEqual([]);
  expect(statuses).toEqual([["a", "failed", expect.stringContaining("could not read")]]);
});
