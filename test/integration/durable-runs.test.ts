import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli, startCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { startSandbox, type Sandbox } from "../sandbox";

// Crashes, interrupts and concurrent runs against the real bed. Each scenario prints a row of the
// fault-suite table at the end.
let bed: Sandbox;
const scenarios: CodeOceanScenario[] = [];
const table: Array<{ scenario: string; outcome: string; seconds: number }> = [];

beforeAll(async () => {
  bed = await startSandbox();
});
afterAll(async () => {
  for (const s of scenarios) await s.stop();
  await bed?.stop();
  const width = Math.max(...table.map((r) => r.scenario.length), 8);
  process.stderr.write(
    ["", "fault suite", `${"scenario".padEnd(width)}  outcome                         time`, ...table.map((r) => `${r.scenario.padEnd(width)}  ${r.outcome.padEnd(30)}  ${r.seconds.toFixed(1)}s`), ""].join("\n"),
  );
});

async function scenario(name: string, body: () => Promise<string>): Promise<void> {
  const started = Date.now();
  let outcome = "FAILED";
  try {
    outcome = await body();
  } finally {
    table.push({ scenario: name, outcome, seconds: (Date.now() - started) / 1000 });
  }
}

const alarmsOf = async (stack: string) =>
  Object.fromEntries(Object.entries((await awsSnapshot(bed.env)).alarms).filter(([name]) => name.includes(stack)));

test("kill -9 during wait-idle-workers, then the same command: resumes without cancelling twice", () =>
  scenario("kill -9 in wait-idle-workers", async () => {
    const s = await startCodeOceanScenario(bed, { stackName: "crashwait", workers: 2, gpuWorkers: 1, drainMs: 15_000 });
    scenarios.push(s);
    const alarmsBefore = await alarmsOf("crashwait");
    const args = ["upgrade", ...s.upgradeArgs, "--release", "2.0.0", "--yes", "--json"];
    const first = startCli(args, bed.env, (e) => {
      if (e.type === "progress" && e.step === "wait-idle-workers") first.signal("SIGKILL", true);
    });
    expect(await first.exited).toBe(137);

    const status = await runCli(["status", "--stack", "crashwait", "--cwd", s.deployment.workDir, "--json"], bed.env);
    const last = JSON.parse(status.stdout).lastRun;
    expect(last).toMatchObject({ status: "running", unfinishedStep: "wait-idle-workers" });
    expect(last.steps.map((x: { step: string }) => x.step)).toContain("cancel-computations");
    const human = await runCli(["status", "--stack", "crashwait", "--cwd", s.deployment.workDir], bed.env);
    expect(human.stdout).toMatch(/unfinished .*stopped during wait-idle-workers/);

    const second = await runCli(args, bed.env);
    expect(second.code).toBe(0);
    const events = second.events();
    expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/took over \(its process has exited\)/) }));
    expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/resuming after run .* during wait-idle-workers/) }));
    expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "cancel-computations", status: "skipped", note: expect.stringMatching(/already requested/) }));
    expect(s.services.requests().filter((r) => r.path === "/cancel_computations")).toHaveLength(1);
    expect(await alarmsOf("crashwait")).toEqual(Object.fromEntries(Object.keys(alarmsBefore).filter((n) => !n.includes("-1-asg")).map((n) => [n, true]).concat([["workers-crashwait-2-asg-slots-scale-in", true]])));
    return "resumed, succeeded";
  }));

test("two concurrent runs on one stack: exactly one proceeds, the other is refused naming the holder", () =>
  scenario("two concurrent runs", async () => {
    const s = await startCodeOceanScenario(bed, { stackName: "twice", workers: 1, gpuWorkers: 0, drainMs: 4000 });
    scenarios.push(s);
    const args = ["upgrade", ...s.upgradeArgs, "--yes", "--json"];
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const first = startCli(args, bed.env, (e) => e.type === "step-end" && e.step === "lock-stack" && locked());
    await isLocked;
    const second = await runCli(args, bed.env);
    expect(second.code).toBe(3);
    const summary = second.events().at(-1);
    expect(summary).toMatchObject({ type: "summary", exitCode: 3, error: expect.stringMatching(/held by run \S+ by \S+ on \S+ \(pid \d+\) since /) });
    expect(await first.exited).toBe(0);
    return "one ran, one refused (exit 3)";
  }));

test("Ctrl-C during up: the update is cancelled, alarms restored, exit 130, the next run succeeds", () =>
  scenario("SIGINT in up", async () => {
    const s = await startCodeOceanScenario(bed, { stackName: "sigint", workers: 1, gpuWorkers: 1, drainMs: 3000 });
    scenarios.push(s);
    const alarmsBefore = await alarmsOf("sigint");
    const args = ["upgrade", ...s.upgradeArgs, "--release", "2.0.0", "--yes", "--json"];
    let sent = false;
    const first = startCli(args, bed.env, (e) => {
      if (!sent && e.type === "step-start" && e.step === "up") {
        sent = true;
        setTimeout(() => first.signal("SIGINT"), 300);
      }
    });
    expect(await first.exited).toBe(130);
    expect(first.stderr()).toMatch(/SIGINT: stopping after the current step/);
    const summary = first.stdout().trim().split("\n").map((l) => JSON.parse(l)).at(-1);
    expect(summary).toMatchObject({ type: "summary", status: "failed", exitCode: 130 });
    const restore = first.stdout().trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.type === "step-end" && e.step === "restore-alarms");
    expect(restore).toMatchObject({ status: "done" });
    // every alarm that still exists has its actions back
    const after = await alarmsOf("sigint");
    for (const [name, enabled] of Object.entries(after)) expect([name, enabled]).toEqual([name, alarmsBefore[name] ?? true]);

    const second = await runCli(args, bed.env);
    expect(second.stderr).toBe("");
    expect(second.code).toBe(0);
    expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
    return "exit 130, restored; rerun succeeded";
  }));

test("kill -9 of the whole run during up (driver and engine), then the same command: repaired, succeeds", () =>
  scenario("kill -9 in up", async () => {
    const s = await startCodeOceanScenario(bed, { stackName: "crashup", workers: 1, gpuWorkers: 1, drainMs: 3000 });
    scenarios.push(s);
    const args = ["upgrade", ...s.upgradeArgs, "--release", "2.0.0", "--yes", "--json"];
    let killed = false;
    const first = startCli(args, bed.env, (e) => {
      const op = (e as { event?: { resourcePreEvent?: { metadata?: { op?: string } } } }).event?.resourcePreEvent?.metadata?.op;
      if (!killed && e.type === "engine" && e.step === "up" && op === "create-replacement") {
        killed = true;
        first.signal("SIGKILL", true);
      }
    });
    expect(await first.exited).toBe(137);
    // the killed engine left its lock (and, depending on the moment, pending operations)
    const { url } = await s.deployment.stack.workspace.whoAmI();
    const lockDir = path.join(fileURLToPath(url!), ".pulumi", "locks", "organization", "codeocean-deployment", "crashup");
    const lockFiles = () => fs.readdirSync(lockDir).filter((f) => f.endsWith(".json"));
    expect(lockFiles()).toHaveLength(1);

    const second = await runCli(args, bed.env);
    expect(second.code).toBe(0);
    const events = second.events();
    expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/interrupted and left: Pulumi's lock from pid \d+ .*process gone/) }));
    expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "repair-interrupted-update", status: "done", note: expect.stringMatching(/^repaired: pulumi cancel/) }));
    expect(s.services.requests().filter((r) => r.path === "/cancel_computations")).toHaveLength(1);
    expect(lockFiles()).toEqual([]);
    expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
    const alarms = await alarmsOf("crashup");
    expect(Object.values(alarms).every((enabled) => enabled)).toBe(true);
    return "repaired, succeeded";
  }));

test("an engine lock from another host is not cleared without --repair", () =>
  scenario("foreign engine lock", async () => {
    const s = await startCodeOceanScenario(bed, { stackName: "foreign", workers: 1, gpuWorkers: 0 });
    scenarios.push(s);
    const { url } = await s.deployment.stack.workspace.whoAmI();
    const dir = path.join(fileURLToPath(url!), ".pulumi", "locks", "organization", "codeocean-deployment", "foreign");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "e0d1.json"), JSON.stringify({ pid: 4242, username: "ci", hostname: "runner-7", timestamp: new Date().toISOString() }));
    const refusedRun = await runCli(["upgrade", ...s.upgradeArgs, "--yes", "--json"], bed.env);
    expect(refusedRun.code).toBe(3);
    expect(refusedRun.events().at(-1)).toMatchObject({ error: expect.stringMatching(/pid 4242 on runner-7.*another host/), hint: expect.stringMatching(/--repair/) });
    expect(s.services.requests()).toEqual([]);
    const repaired = await runCli(["upgrade", ...s.upgradeArgs, "--yes", "--json", "--repair"], bed.env);
    expect(repaired.code).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".json"))).toEqual([]);
    return "refused, then --repair succeeded";
  }));
