import { decideRestore, parseSuspensionTag, settleInFlight } from "../../stacks/runbooks/codeocean/alarmActions";
import { parseRun } from "../../stacks/journal";

// The restore decision of the alarm protocol, at every state a crash can leave (README: alarm actions).
describe("decideRestore", () => {
  const R = "20261203T120000-abcd1234";
  const journal = (applied: boolean, restored: boolean, intended = applied) => ({ intended, applied, restored });

  test("tag of a suspending run", () => {
    // the run disabled it and nothing re-enabled it: restore
    expect(decideRestore(R, false, journal(true, false))).toEqual({ enable: true });
    // killed between the tag and the disable: enabled, nothing to do but clear the tag
    expect(decideRestore(R, true, journal(false, false))).toEqual({ enable: false, why: `run ${R} stopped before disabling it` });
    // ... and then a person disabled it by hand: theirs, left disabled
    expect(decideRestore(R, false, journal(false, false))).toMatchObject({ enable: false, why: expect.stringMatching(/^disabled by someone, not by run .*: left disabled$/) });
    // recorded as about to be disabled, killed while the call was in flight: counts as the run's
    expect(decideRestore(R, false, journal(false, false, true))).toEqual({ enable: true });
    // the run disabled it, a person re-enabled it during the window: left enabled
    expect(decideRestore(R, true, journal(true, false))).toMatchObject({ enable: false, why: expect.stringMatching(/^re-enabled by someone/) });
  });

  test("tag of a restoring run", () => {
    const tag = `restoring:${R}`;
    // killed between the re-tag and the enable: restore
    expect(decideRestore(tag, false, journal(true, false))).toEqual({ enable: true });
    // killed between the enable and the untag: only the tag is left
    expect(decideRestore(tag, true, journal(true, true))).toEqual({ enable: false, why: `already re-enabled by run ${R}` });
    // ... and then a person silenced it: left as the person left it (the re-enabled alarm)
    expect(decideRestore(tag, false, journal(true, true))).toEqual({ enable: false, why: `disabled by someone after run ${R} re-enabled it: left disabled` });
  });

  test("without the run's journal (another machine), the tag alone decides, towards alerting", () => {
    expect(decideRestore(R, false, undefined)).toEqual({ enable: true });
    expect(decideRestore(`restoring:${R}`, false, undefined)).toEqual({ enable: true });
    expect(decideRestore(R, true, undefined).enable).toBe(false);
  });

  test("tag values", () => {
    expect(parseSuspensionTag(R)).toEqual({ phase: "suspended", runId: R });
    expect(parseSuspensionTag(`restoring:${R}`)).toEqual({ phase: "restoring", runId: R });
  });
});

test("the journal tells a suspension recorded from one applied, and what was restored", () => {
  const lines = [
    { type: "suspend", step: "suspend-alarms", what: "alarm-actions", items: ["a", "b"] },
    { type: "suspend", step: "suspend-alarms", what: "alarm-actions", items: ["a"], applied: true },
    { type: "restore", step: "restore-alarms", what: "alarm-actions", items: ["a"] },
  ].map((e) => JSON.stringify(e)).join("\n") + "\n{\"type\":\"sus"; // a line cut short by a kill
  const run = parseRun(lines, "r1", "/j");
  expect(run.suspendApplied).toEqual({ "alarm-actions": ["a"] });
  expect(run.suspendIntended).toEqual({ "alarm-actions": ["a", "b"] });
  expect(run.restored).toEqual({ "alarm-actions": ["a"] });
  expect(run.stillSuspended).toEqual({ "alarm-actions": ["b"] });
});

describe("settleInFlight: a run killed with DisableAlarmActions sent and no answer recorded", () => {
  const names = (n: number, prefix = "a") => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, "0")}`);
  const state = (enabled: string[], disabled: string[]) => new Map([...enabled.map((n) => [n, true] as const), ...disabled.map((n) => [n, false] as const)]);

  test("nothing in flight when every batch is recorded as applied", () => {
    const all = names(3);
    expect(settleInFlight(all, new Set(all), state([], all))).toEqual({ applied: new Set(all), neverSent: new Set() });
  });

  test("the batch did not land: most of it still enabled, so the disabled one is a person's", () => {
    const all = names(13);
    const settled = settleInFlight(all, new Set(), state(all.slice(1), all.slice(0, 1)));
    expect(settled.applied).toEqual(new Set());
    expect(settled.neverSent).toEqual(new Set(all));
    // and the decision for the person's alarm: left disabled
    expect(decideRestore("R", false, { intended: !settled.neverSent.has(all[0]!), applied: settled.applied.has(all[0]!), restored: false })).toMatchObject({ enable: false });
  });

  test("the batch landed (its answer lost): all disabled, or most of it with one re-enabled by a person", () => {
    const all = names(13);
    expect(settleInFlight(all, new Set(), state([], all)).applied).toEqual(new Set(all));
    const oneBack = settleInFlight(all, new Set(), state(all.slice(0, 1), all.slice(1)));
    expect(oneBack.applied).toEqual(new Set(all));
    expect(decideRestore("R", true, { intended: true, applied: true, restored: false })).toMatchObject({ enable: false, why: expect.stringMatching(/^re-enabled by someone/) });
  });

  test("batches of 100 go one at a time: after the applied ones, the first is the one in flight, the later ones were never sent", () => {
    const all = names(250);
    const [first, second, third] = [all.slice(0, 100), all.slice(100, 200), all.slice(200)];
    // first applied; second landed (all disabled); third never sent, one of it disabled by a person
    const settled = settleInFlight(all, new Set(first), state(third.slice(1), [...first, ...second, third[0]!]));
    expect(settled.applied).toEqual(new Set([...first, ...second]));
    expect(settled.neverSent).toEqual(new Set(third));
  });

  test("a batch of one, or a tie, is decided towards alerting (counted as landed); alarms the update deleted are not counted", () => {
    expect(settleInFlight(["only"], new Set(), state([], ["only"])).applied).toEqual(new Set(["only"]));
    expect(settleInFlight(["a", "b"], new Set(), state(["a"], ["b"])).applied).toEqual(new Set(["a", "b"]));
    // "gone" no longer exists: 2 enabled against 1 disabled among those left
    expect(settleInFlight(["a", "b", "c", "gone"], new Set(), state(["a", "b"], ["c"])).neverSent).toEqual(new Set(["a", "b", "c", "gone"]));
  });
});
