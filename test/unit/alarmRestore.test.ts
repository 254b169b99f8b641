import { decideRestore, parseSuspensionTag } from "../../stacks/runbooks/codeocean/alarmActions";
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
