import type { UpgradeEvent } from "../../lib/events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expectedDisruption, lastRun, openJournal, parseRun, recentRuns, type RunState } from "../../stacks/journal";
import { renderReport } from "../../stacks/report";
import type { ResolvedOptions } from "../../stacks/context";
import { disruptionWindow, renderGantt, shortDuration, timedSteps } from "../../stacks/timeline";
import { codeOcean, runEvents, T0, type Spec } from "./runEvents";

describe("timed steps", () => {
  test("each step-start is paired with its step-end; engine events are ignored; waits are the wait-* steps and polls with a deadline", () => {
    const steps = timedSteps(runEvents(codeOcean));
    expect(steps.map((s) => s.step)).toEqual(codeOcean.map((c) => c[0]));
    expect(steps[5]).toMatchObject({ step: "wait-idle-workers", startMs: T0 + 17_000, durationMs: 120_000, wait: true, status: "done" });
    expect(steps.filter((s) => s.wait).map((s) => s.step)).toEqual(["wait-idle-workers", "verify-deployment"]);
  });

  test("a step that never ended (a crash) has no bar", () => {
    const events = runEvents(codeOcean.slice(0, 3));
    events.splice(-1, 0, { type: "step-start", step: "confirm-plan", title: "c", time: new Date(T0 + 13_000).toISOString() });
    expect(timedSteps(events).map((s) => s.step)).toEqual(["select-stack", "lock-stack", "plan-update"]);
  });
});

describe("the disruption window", () => {
  const window = (specs: Spec[]) => {
    const w = disruptionWindow(timedSteps(runEvents(specs)));
    return w && { from: w.from, to: w.to, startS: (w.startMs - T0) / 1000, durationS: w.durationMs / 1000 };
  };

  test("from the first disruptive step that ran to the alarms' restore", () => {
    expect(window(codeOcean)).toEqual({ from: "cancel-computations", to: "restore-alarms", startS: 14, durationS: 493 });
  });

  test("skipped disruptive steps do not open it (nothing to cancel: it opens at the drain)", () => {
    const specs = codeOcean.map((s): Spec => (s[0] === "cancel-computations" ? [s[0], "skipped", s[2], s[3]] : s));
    expect(window(specs)).toEqual({ from: "wait-idle-workers", to: "restore-alarms", startS: 17, durationS: 490 });
  });

  test("a drain refused at the window's end: from the cancel to the alarms' restore, nothing of `up`", () => {
    const specs: Spec[] = [...codeOcean.slice(0, 5), ["wait-idle-workers", "failed", 17, 40, true], ["restore-alarms", "done", 57, 1]];
    expect(window(specs)).toEqual({ from: "cancel-computations", to: "restore-alarms", startS: 14, durationS: 44 });
  });

  test("a runbook without steps before `up`: `up` alone", () => {
    expect(window([["select-stack", "done", 0, 2], ["plan-update", "done", 2, 5], ["preview", "done", 7, 1], ["up", "done", 8, 30]])).toEqual({ from: "up", to: "up", startS: 8, durationS: 30 });
  });

  test("none: a dry run, an up-to-date stack, a run refused before anything disruptive", () => {
    expect(window(codeOcean.map((s): Spec => (s[0].match(/select|lock|plan-update/) ? s : [s[0], "skipped", s[2], 0])))).toBeUndefined();
    expect(window([["check-window", "failed", 0, 0]])).toBeUndefined();
  });
});

describe("the gantt", () => {
  test("a bar per step (done; crit when failed; active when it waited), the disruption window as a bar of its own, epoch ms", () => {
    const steps = timedSteps(runEvents([["select-stack", "done", 0, 2], ["cancel-computations", "done", 2, 0.5], ["wait-idle-workers", "failed", 2.5, 65, true], ["restore-point", "skipped", 67.5, 0], ["restore-alarms", "done", 67.5, 1]]));
    expect(renderGantt(steps, disruptionWindow(steps))).toBe(
      [
        "```mermaid",
        "gantt",
        "  dateFormat x",
        "  axisFormat %H:%M:%S",
        "  section Steps",
        `  select-stack 2.0 s :done, s0, ${T0}, ${T0 + 2000}`,
        `  cancel-computations 500 ms :done, s1, ${T0 + 2000}, ${T0 + 2500}`,
        `  wait-idle-workers (failed) wait 1 min 05 s :crit, active, s2, ${T0 + 2500}, ${T0 + 67_500}`,
        `  restore-point (skipped) 0 ms :s3, ${T0 + 67_500}, ${T0 + 67_500}`,
        `  restore-alarms 1.0 s :done, s4, ${T0 + 67_500}, ${T0 + 68_500}`,
        "  section Disruption",
        `  cancel-computations to restore-alarms 1 min 06 s :crit, disruption, ${T0 + 2000}, ${T0 + 68_500}`,
        "```",
      ].join("\n"),
    );
  });

  test("durations have no colon (it would end a task's name)", () => {
    expect([0, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, 7_384_000].map(shortDuration)).toEqual(["0 ms", "999 ms", "1.0 s", "59.9 s", "1 min 00 s", "59 min 59 s", "1 h 00 min", "2 h 03 min"]);
  });

  test("the report carries the timeline, its disruption window in words", () => {
    const options = { stack: "prod", cwd: "/p", dryRun: false } as ResolvedOptions;
    const report = renderReport({ runId: "r", options, status: "succeeded", exitCode: 0, steps: [], events: runEvents(codeOcean), durationMs: 507_000 });
    expect(report).toMatch(/### Timeline\n\n\*\*Disruption window:\*\* 8:13, from `cancel-computations` to the end of `restore-alarms` \(2026-12-12T01:00:14\.000Z → 2026-12-12T01:08:27\.000Z\)\.\n\n```mermaid\ngantt\n/);
    expect(report.match(/^ {2}\S.* :.*, s\d+, \d+, \d+$/gm)).toHaveLength(codeOcean.length);
  });
});

describe("the journal's figures", () => {
  const journalOf = (events: UpgradeEvent[], runId: string): RunState =>
    parseRun(events.filter((e) => e.type !== "engine").map((e) => JSON.stringify({ ...e, at: "x" }) + "\n").join(""), runId, `/j/${runId}.jsonl`);

  test("a run read back from its journal has the disruption window the report draws", () => {
    const events = runEvents(codeOcean);
    expect(journalOf(events, "r").disruption).toEqual(disruptionWindow(timedSteps(events)));
    expect(journalOf(events, "r").disruption?.durationMs).toBe(493_000);
  });

  test("the expected duration: the longest of the three most recent successful updates; failed and up-to-date runs do not count", () => {
    const stretched = (upS: number): Spec[] => codeOcean.map((s): Spec => (s[0] === "up" ? [s[0], s[1], s[2], upS] : s[0] === "verify-deployment" ? [s[0], s[1], s[2] + upS - 300, s[3]] : s[0] === "restore-alarms" ? [s[0], s[1], s[2] + upS - 300, s[3]] : s));
    const upToDate = journalOf(runEvents(codeOcean.map((s): Spec => (s[0] === "up" ? [s[0], "skipped", s[2], 0] : s))), "u");
    const failed = journalOf(runEvents(stretched(5000), "failed"), "f");
    const runs = [upToDate, failed, journalOf(runEvents(stretched(100)), "c"), journalOf(runEvents(stretched(400)), "b"), journalOf(runEvents(stretched(300)), "a"), journalOf(runEvents(stretched(9000)), "old")];
    // newest first: c (293 s), b (593 s), a (493 s); the old one is beyond the last three
    expect(expectedDisruption(runs)).toEqual({ ms: 593_000, runIds: ["c", "b", "a"], longest: expect.objectContaining({ runId: "b" }) });
    expect(expectedDisruption([upToDate, failed])).toBeUndefined();
    expect(expectedDisruption([])).toBeUndefined();
  });
});

test("runs refused at check-window (a schedule outside its window) hide neither the run to resume nor the expected duration", () => {
  const env = { UPGRADE_ORCHESTRATOR_STATE: fs.mkdtempSync(path.join(os.tmpdir(), "journal-windows-")) };
  const write = (runId: string, events: UpgradeEvent[]) => {
    const journal = openJournal(env, "/p", "prod", runId);
    for (const e of events) journal.record(e);
  };
  write("20261205T010000-a", runEvents(codeOcean));
  const crashed = runEvents(codeOcean.slice(0, 6)).slice(0, -2); // killed during wait-idle-workers: no step-end, no summary
  write("20261206T010000-b", crashed);
  for (let i = 10; i < 40; i++) write(`20261207T0${i}000-r`, runEvents([["check-window", "failed", 0, 0]], "failed"));
  expect(lastRun(env, "/p", "prod")?.runId).toBe("20261207T039000-r");
  expect(lastRun(env, "/p", "prod", undefined, true)).toMatchObject({ runId: "20261206T010000-b", status: "running", unfinishedStep: "wait-idle-workers" });
  expect(recentRuns(env, "/p", "prod", 20).map((r) => r.runId)).toEqual(["20261206T010000-b", "20261205T010000-a"]);
  expect(expectedDisruption(recentRuns(env, "/p", "prod", 20))).toEqual({ ms: 493_000, runIds: ["20261205T010000-a"], longest: expect.objectContaining({ runId: "20261205T010000-a" }) });
});
