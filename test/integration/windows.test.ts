import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { formatDuration } from "../../lib/wait";
import { readRun } from "../../stacks/journal";
import { upgrade, type UpgradeOptions } from "../../stacks/upgrade";
import { startSandbox, type Sandbox } from "../sandbox";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { copyFixture } from "../sandbox/fixtures";
import { parseMermaidBlocks } from "../oracle/mermaidGantt";

// Maintenance windows on the bed. The clock is the test's (UpgradeOptions.now, or
// UPGRADE_ORCHESTRATOR_TEST_NOW for the CLI): it starts where the test puts it and moves on in real
// time, and a test can move it mid-run; nothing sleeps until a window opens or ends.
let bed: Sandbox;
let workDir: string;
let stack: Stack;
const SAT = "Sat 02:00-06:00 Europe/Berlin"; // 2026-12-12: 01:00Z to 05:00Z

/** A clock starting at `iso`, moving on in real time; `jump` sets it again. */
function testClock(iso: string) {
  let base = Date.parse(iso);
  let since = Date.now();
  return {
    now: () => base + (Date.now() - since),
    jump: (to: string) => {
      base = Date.parse(to);
      since = Date.now();
    },
  };
}

beforeAll(async () => {
  bed = await startSandbox();
  workDir = copyFixture("echo-project");
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  stack = await LocalWorkspace.createStack({ stackName: "windowed", workDir }, { pulumiCommand, envVars: bed.env });
  await stack.setConfig("message", { value: "first" });
  await stack.up();
}, 180_000);
afterAll(async () => {
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

const echo = (extra: Partial<UpgradeOptions>): UpgradeOptions => ({ stack: "windowed", cwd: workDir, runbook: "none", yes: true, env: bed.env, windows: [SAT], ...extra });

test("outside the window: refused (exit 3) before anything else, nothing changed; inside it, the update runs", async () => {
  await stack.setConfig("message", { value: "second" });
  const history = (await stack.history()).length;
  const outside = await upgrade(echo({ now: testClock("2026-12-07T12:00:00Z").now }));
  expect(outside.exitCode).toBe(3);
  expect(outside.error?.message).toMatch(/^could not start the upgrade in a maintenance window: it is Mon 2026-12-07 13:00 Europe\/Berlin, outside the maintenance window "Sat 02:00-06:00 Europe\/Berlin"\n {2}hint: the next window opens Sat 2026-12-12 02:00 Europe\/Berlin, in 4d 1[23]h \d\dm; run it then \(nothing was changed\)$/);
  expect(outside.steps.map((s) => [s.step, s.status])).toEqual([["check-window", "failed"]]);
  expect((await stack.history()).length).toBe(history);
  expect((await stack.outputs()).message?.value).toBe("first");

  // a bad spec is bad input
  const bad = await upgrade(echo({ windows: ["Sat 02:00-06:00 Europe/Berlim"] }));
  expect(bad.exitCode).toBe(2);
  expect(bad.error?.message).toMatch(/"Europe\/Berlim" is not a time zone/);

  // a dry run says what a real run would meet, and goes on
  const dry = await upgrade(echo({ dryRun: true, now: testClock("2026-12-07T12:00:00Z").now }));
  expect(dry.exitCode).toBe(0);
  expect(dry.steps[0]).toMatchObject({ step: "check-window", status: "done", note: expect.stringMatching(/^dry run: a run now would be refused: it is Mon 2026-12-07 13:00 Europe\/Berlin, outside/) });

  // a person takes so long to confirm that the window has closed: refused after the confirmation, before `up`
  const slow = testClock("2026-12-12T04:59:00Z");
  const asked = await upgrade(
    echo({
      yes: false,
      now: slow.now,
      confirm: async () => {
        slow.jump("2026-12-12T05:01:00Z");
        return true;
      },
    }),
  );
  expect(asked.exitCode).toBe(3);
  expect(asked.steps.slice(-2).map((s) => [s.step, s.status])).toEqual([["confirm-plan", "done"], ["check-window-again", "failed"]]);
  expect(asked.error?.message).toMatch(/it is Sat 2026-12-12 06:01 Europe\/Berlin, outside/);
  expect((await stack.history()).length).toBe(history);

  const inside = await upgrade(echo({ now: testClock("2026-12-12T01:30:00Z").now }));
  expect(inside.exitCode).toBe(0);
  expect(inside.steps[0]).toMatchObject({ step: "check-window", status: "done", note: expect.stringMatching(/^in the window "Sat 02:00-06:00 Europe\/Berlin" until Sat 2026-12-12 06:00 Europe\/Berlin \(3:(29|30):\d\d left\); (expected|no expected duration)/) });
  expect(inside.outputs?.message).toBe("second");
  expect(readRun(inside.journal).disruption).toMatchObject({ from: "up", to: "up" });
});

test("an expected duration that overruns the window's end is refused: from the journal's earlier update, or --expected-duration", async () => {
  await stack.setConfig("message", { value: "third" });
  const history = (await stack.history()).length;
  const earlier = readRun((await upgradeJournalOfLastSuccess())!);
  const took = earlier.disruption!.durationMs;
  // the window ends sooner than the last update took
  const end = Date.parse("2026-12-12T05:00:00Z");
  const late = await upgrade(echo({ now: testClock(new Date(end - took + 50).toISOString()).now }));
  expect(late.exitCode).toBe(3);
  expect(late.error?.message).toMatch(new RegExp(`the run is expected to take \\d:\\d\\d \\(the longest disruption of this stack's last successful update in the journal: ${earlier.runId}\\), but the window "Sat 02:00-06:00 Europe/Berlin" ends Sat 2026-12-12 06:00 Europe/Berlin`));
  expect(late.steps.map((s) => s.step)).toEqual(["check-window"]);

  // another machine (a pipeline's fresh one): no local journal; the backend's has the update
  // (the clock is set again as check-window-again starts: how long select, lock and the preview take on a busy machine is no part of the test)
  const elsewhereClock = testClock(new Date(end - took + 50).toISOString());
  const elsewhere = await upgrade(echo({
    env: { ...bed.env, UPGRADE_ORCHESTRATOR_STATE: fs.mkdtempSync(path.join(bed.dir, "machine-b-")) },
    now: elsewhereClock.now,
    onEvent: (e) => e.type === "step-start" && e.step === "check-window-again" && elsewhereClock.jump(new Date(end - took + 50).toISOString()),
  }));
  expect(elsewhere.exitCode).toBe(3);
  expect(elsewhere.steps[0]).toMatchObject({ step: "check-window", status: "done", note: expect.stringMatching(/no expected duration/) });
  expect(elsewhere.steps.at(-1)).toMatchObject({ step: "check-window-again", status: "failed" });
  expect(elsewhere.error?.message).toContain(`in the journal: ${earlier.runId})`);
  expect(elsewhere.steps.map((s) => s.step)).not.toContain("up");

  const told = await upgrade(echo({ now: testClock("2026-12-12T03:00:00Z").now, expectedDurationMs: 2.5 * 3_600_000 }));
  expect(told.exitCode).toBe(3);
  expect(told.error?.message).toMatch(/expected to take 2:30:00 \(--expected-duration\), but .* in (1:59:5\d|2:00:00)\n  hint: the next window opens Sat 2026-12-19 02:00 Europe\/Berlin, in 6d 2[12]h \d\dm; start it then \(nothing was changed\)$/);
  expect((await stack.history()).length).toBe(history);

  // the CLI: the same refusals, its clock from UPGRADE_ORCHESTRATOR_TEST_NOW
  const args = ["upgrade", "--stack", "windowed", "--cwd", workDir, "--runbook", "none", "--yes", "--json", "--window", SAT];
  const cli = await runCli([...args, "--expected-duration", "2h30m"], { ...bed.env, UPGRADE_ORCHESTRATOR_TEST_NOW: "2026-12-12T03:00:00Z" });
  expect(cli.code).toBe(3);
  const events = cli.events();
  expect(events.filter((e) => e.type === "step-start").map((e) => e.step)).toEqual(["check-window"]);
  expect(events.at(-1)).toMatchObject({ type: "summary", exitCode: 3, error: expect.stringMatching(/expected to take 2:30:00 \(--expected-duration\)/) });
  const badCli = await runCli([...args.slice(0, -2), "--window", "Sat 2-6 UTC"], bed.env);
  expect(badCli.code).toBe(2);
  expect(badCli.stdout + badCli.stderr).toMatch(/2-6.{0,3} is not a time range HH:MM-HH:MM/);
  expect((await stack.history()).length).toBe(history);
});

async function upgradeJournalOfLastSuccess(): Promise<string | undefined> {
  const { recentRuns } = await import("../../stacks/journal");
  return recentRuns(bed.env, workDir, "windowed", 20).find((r) => r.status === "succeeded")?.journal;
}

describe("Code Ocean", () => {
  let scenario: CodeOceanScenario;
  beforeAll(async () => {
    scenario = await startCodeOceanScenario(bed, { stackName: "window", workers: 1, gpuWorkers: 1 });
  }, 240_000);
  afterAll(async () => scenario?.stop());

  const options = (extra: Partial<UpgradeOptions>): UpgradeOptions =>
    scenario.upgradeOptions({ windows: ["daily 01:00-06:00 UTC"], ...extra, codeOcean: { drainTimeoutMs: 90_000, ...extra.codeOcean } });

  test("a drain that reaches the window's end stops before `up`, alarms restored; the report's gantt is Mermaid's and its disruption bar the journal's", async () => {
    scenario.services.setMode({ kind: "never-drains" });
    const clock = testClock("2026-12-12T02:00:00Z");
    const before = await awsSnapshot(bed.env);
    const history = (await scenario.deployment.stack.history()).length;
    const result = await upgrade(
      options({
        expectedDurationMs: 30 * 60_000,
        now: clock.now,
        // the drain starts 6 s before the window ends
        onEvent: (e) => e.type === "step-start" && e.step === "wait-idle-workers" && clock.jump("2026-12-12T05:59:54Z"),
      }),
    );
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/^could not wait for the workers to become idle within the maintenance window: the window "daily 01:00-06:00 UTC" ends Sat 2026-12-12 06:00 UTC and the workers were not idle by then; last seen: workers-window-1-asg: /);
    expect(result.error?.hint).toMatch(/stopped before `up` and restored what it suspended/);
    const steps = result.steps.map((s) => [s.step, s.status]);
    expect(steps).toContainEqual(["wait-idle-workers", "failed"]);
    expect(steps.map((s) => s[0])).not.toContain("up");
    expect(result.steps.at(-1)).toMatchObject({ step: "restore-alarms", status: "done" });
    // the drain's deadline was the window's end, not --drain-timeout's 90 s
    expect(result.steps.find((s) => s.step === "wait-idle-workers")!.durationMs).toBeLessThan(15_000);
    expect(scenario.services.requests().filter((r) => r.status === 200)).toHaveLength(1); // the cancel
    const after = await awsSnapshot(bed.env);
    expect(after.alarms).toEqual(before.alarms);
    expect(after).toEqual(before);
    expect((await scenario.deployment.stack.history()).length).toBe(history);

    // the report's timeline, as Mermaid reads it
    const blocks = await parseMermaidBlocks(result.report);
    expect(blocks).toHaveLength(1);
    const gantt = blocks[0]!;
    if ("error" in gantt) throw new Error(`Mermaid rejected the report's gantt: ${gantt.error}`);
    expect(gantt.tasks.filter((t) => t.section === "Steps").map((t) => t.task.split(" ")[0])).toEqual(result.steps.map((s) => s.step));
    const bar = gantt.tasks.find((t) => t.id === "disruption")!;
    const journaled = readRun(result.journal).disruption!;
    expect([journaled.from, journaled.to]).toEqual(["cancel-computations", "restore-alarms"]);
    expect(bar.endMs - bar.startMs).toBe(journaled.durationMs);
    expect(bar.startMs).toBe(journaled.startMs);
  }, 240_000);

  test("an update inside the window: the gantt has every step, the disruption bar the journal's; the next run expects that long", async () => {
    // the operator's state again: the code at 1.0.0, computations running
    execFileSync("git", ["-c", "advice.detachedHead=false", "checkout", "-q", "1.0.0"], { cwd: scenario.deployment.workDir });
    await scenario.services.reset();
    const done = await upgrade(options({ now: testClock("2026-12-12T02:00:00Z").now }));
    expect(done.error).toBeUndefined();
    expect(done.exitCode).toBe(0);
    const blocks = await parseMermaidBlocks(done.report);
    const gantt = blocks[0]!;
    if ("error" in gantt) throw new Error(`Mermaid rejected the report's gantt: ${gantt.error}`);
    const bars = gantt.tasks.filter((t) => t.section === "Steps");
    expect(bars.map((t) => t.task.split(" ")[0])).toEqual(done.steps.map((s) => s.step));
    expect(bars.map((t) => t.endMs - t.startMs)).toEqual(done.steps.map((s) => s.durationMs));
    expect(bars.find((t) => t.task.startsWith("wait-idle-workers"))).toMatchObject({ active: true });
    const journaled = readRun(done.journal).disruption!;
    expect([journaled.from, journaled.to]).toEqual(["cancel-computations", "restore-alarms"]);
    const bar = gantt.tasks.find((t) => t.id === "disruption")!;
    expect(bar.endMs - bar.startMs).toBe(journaled.durationMs);
    expect(done.report).toContain(`**Disruption window:** ${formatDuration(journaled.durationMs)}, from \`cancel-computations\` to the end of \`restore-alarms\``);

    // with less of the window left than that update disrupted: refused, the figure from the journal
    const end = Date.parse("2026-12-12T06:00:00Z");
    const next = await upgrade(options({ now: testClock(new Date(end - journaled.durationMs + 500).toISOString()).now }));
    expect(next.exitCode).toBe(3);
    expect(next.error?.message).toContain(`expected to take ${formatDuration(journaled.durationMs)} (the longest disruption of this stack's last successful update in the journal: ${done.runId})`);
    expect(next.steps.map((s) => s.step)).toEqual(["check-window"]);
  }, 240_000);
});
