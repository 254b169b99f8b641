import * as fs from "node:fs";
import * as path from "node:path";
import { lockKey, openBackendStore, type BackendStore } from "../../stacks/backend";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli, startCli, type CliRun } from "../sandbox/cli";
import { createFleetStacks } from "../sandbox/fleetStacks";
import { startWebhook, type Webhook } from "../sandbox/webhook";

// Fleets of cheap fixture stacks (fleet-project) on a file backend: waves, concurrency, stopping on failure,
// globs, overlapping fleets, and a kill -9 of one stack's run. Every stack's run is the real CLI.
let bed: Sandbox;
let store: BackendStore;
let workDir: string;
const hooks: Webhook[] = [];
// each stack's run is a real CLI process running its Pulumi program three times (two previews,
// one up); a fleet test takes a few minutes on a busy 2-core machine
jest.setTimeout(600_000);

const OK = ["ok-canary", "ok-1", "ok-2", "ok-3", "ok-4", "ok-5"];
const FAIL = ["f-canary", "f-1", "f-2", "f-3", "f-4", "f-5"];
const OVERLAP = ["o-1", "o-2", "o-3"];
const KILL = ["k-1", "k-2", "k-3", "k-4"];
const GATE = ["g-canary", "g-1", "g-2", "g-3", "g-4", "g-5"];
const SHARE = ["p-canary", "p-1", "p-2", "p-3", "p-4"];

beforeAll(async () => {
  bed = await startSandbox({ aws: false, ssh: false });
  store = openBackendStore(bed.pulumi!.backendUrl, bed.env)!;
  workDir = await createFleetStacks(bed, [...OK, ...FAIL, ...OVERLAP, ...KILL, ...GATE, ...SHARE]);
});
afterAll(async () => {
  store?.close();
  for (const h of hooks) await h.close();
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

function fleetFile(name: string, canary: string, rest: string[], later: string[] = []): string {
  const file = path.join(bed.dir, `${name}.yaml`);
  const laterWave = later.length > 0 ? ["  - name: later", `    stacks: [${later.join(", ")}]`] : [];
  fs.writeFileSync(file, [`cwd: ${workDir}`, "waves:", "  - name: canary", "    canary: true", `    stacks: [${canary}]`, "  - name: rest", `    stacks: [${rest.join(", ")}]`, ...laterWave, ""].join("\n"));
  return file;
}
/** A stack of the fleet file made to fail: its release cannot be checked out. */
const failing = (stack: string) => `{stack: ${stack}, release: 9.9.9}`;

type Event = Record<string, unknown> & { type: string };
const stackEnds = (run: CliRun) => Object.fromEntries(run.events().filter((e) => e.type === "fleet-stack-end").map((e) => [e.stack as string, e]));

test("a fleet of 6 (1 canary + 5) with concurrency 3 succeeds: canary first and alone, at most 3 at once, one report row per stack", async () => {
  const hook = await startWebhook({ status: 200 });
  hooks.push(hook);
  const report = path.join(bed.dir, "ok", "fleet.md");
  const run = await runCli(["upgrade", "--stacks-file", fleetFile("ok", "ok-canary", OK.slice(1)), "--concurrency", "3", "--yes", "--json", "--report", report, "--notify", hook.url], bed.env);
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  const events = run.events();
  expect(events.every((e) => "stack" in e)).toBe(true);
  expect(events.filter((e) => e.type === "step-end").every((e) => OK.includes(e.stack as string))).toBe(true);
  // order and width: the canary ends before any other stack starts; never more than 3 running
  const canaryEnd = events.findIndex((e) => e.type === "fleet-stack-end" && e.stack === "ok-canary");
  const firstOther = events.findIndex((e) => e.type === "run-start" && e.stack !== "ok-canary");
  expect(canaryEnd).toBeGreaterThan(-1);
  expect(firstOther).toBeGreaterThan(canaryEnd);
  let runningNow = 0;
  let widest = 0;
  for (const e of events) {
    if (e.type === "run-start") widest = Math.max(widest, ++runningNow);
    if (e.type === "fleet-stack-end") runningNow--;
  }
  expect(widest).toBe(3);
  const ends = stackEnds(run);
  for (const s of OK) expect(ends[s]).toMatchObject({ status: "succeeded", exitCode: 0 });
  expect(events.at(-1)).toMatchObject({ type: "fleet-summary", stack: null, status: "succeeded", exitCode: 0, counts: { succeeded: 6 } });
  // the fleet report: Markdown and JSON, a row per stack, linking each stack's own report
  const markdown = fs.readFileSync(report, "utf8");
  for (const s of OK) expect(markdown).toMatch(new RegExp(`\\| \`${s}\` \\| (canary|rest) \\| ✅ succeeded \\| .* \\| create 1 \\|  \\|  \\| \\[${s}\\.md\\]\\(fleet\\.stacks/${s}\\.md\\) \\|`));
  const json = JSON.parse(fs.readFileSync(path.join(bed.dir, "ok", "fleet.json"), "utf8"));
  expect(json.stacks.map((s: { stack: string; status: string }) => [s.stack, s.status])).toEqual(OK.map((s) => [s, "succeeded"]));
  for (const s of OK) expect(fs.readFileSync(path.join(bed.dir, "ok", "fleet.stacks", `${s}.md`), "utf8")).toContain(`Upgrade of stack \`${s}\`: succeeded`);
  // the webhook heard the fleet start and end, Slack-compatible, and nothing secret
  expect(hook.received.map((b) => b.event)).toEqual(["fleet-started", "fleet-succeeded"]);
  expect(hook.received[1]).toMatchObject({ text: expect.stringMatching(/^fleet upgrade \S+ succeeded \(exit 0\): 6 succeeded$/), summary: { status: "succeeded", stacks: expect.any(Array) } });
  expect(JSON.stringify(hook.received)).not.toContain(bed.pulumi!.passphrase);
});

test("one stack made to fail stops the fleet: the report shows who ran, who failed, who did not start", async () => {
  const report = path.join(bed.dir, "fail", "fleet.md");
  const run = await runCli(["upgrade", "--stacks-file", fleetFile("fail", "f-canary", ["{stack: f-1, release: 9.9.9}", ...FAIL.slice(2)]), "--concurrency", "2", "--yes", "--json", "--report", report], bed.env);
  expect(run.code).toBe(1);
  const ends = stackEnds(run);
  expect(ends["f-canary"]).toMatchObject({ status: "succeeded" });
  expect(ends["f-1"]).toMatchObject({ status: "failed", exitCode: 1, error: expect.stringContaining("git rev-parse HEAD") }); // made to fail: release 9.9.9 cannot be checked out
  expect(["succeeded", "stopped"]).toContain(ends["f-2"]!.status); // running beside f-1: finished its step, then stopped
  for (const s of ["f-3", "f-4", "f-5"]) expect(ends[s]).toMatchObject({ status: "not-started", note: expect.stringMatching(/the fleet stopped \(1 stack\(s\) failed \(limit 1\): f-1\)/) });
  expect(run.events().at(-1)).toMatchObject({ type: "fleet-summary", status: "failed", exitCode: 1 });
  const markdown = fs.readFileSync(report, "utf8");
  expect(markdown).toMatch(/\| `f-canary` \| canary \| ✅ succeeded \|/);
  expect(markdown).toMatch(/\| `f-1` \| rest \| ❌ failed \| .*git rev-parse HEAD/);
  for (const s of ["f-3", "f-4", "f-5"]) expect(markdown).toContain(`| \`${s}\` | rest | ⬜ not-started |`);
  // not-started stacks were never touched: no journal of theirs in the backend
  for (const s of ["f-3", "f-4", "f-5"]) expect(await store.list(`.pulumi/upgrade-orchestrator/journal/fleet-project/${s}/`)).toEqual([]);
});

test("--max-failures 50%: a wave of 4 goes on past its first failure, stops at the third; the stack after it never starts", async () => {
  const report = path.join(bed.dir, "share", "fleet.md");
  const run = await runCli(["upgrade", "--stacks-file", fleetFile("share", "p-canary", ["p-1", "p-2", "p-3", "p-4"].map((s, i) => (i < 3 ? failing(s) : s))), "--concurrency", "1", "--max-failures", "50%", "--yes", "--json", "--report", report], bed.env);
  expect(run.code).toBe(1);
  const ends = stackEnds(run);
  expect(ends["p-canary"]).toMatchObject({ status: "succeeded" });
  for (const s of ["p-1", "p-2", "p-3"]) expect(ends[s]).toMatchObject({ status: "failed", exitCode: 1 });
  expect(ends["p-4"]).toMatchObject({ status: "not-started", note: expect.stringContaining("3 of 4 stack(s) of wave rest failed (limit 50%: 2): p-3") });
  expect(run.events().at(-1)).toMatchObject({ type: "fleet-summary", status: "failed", exitCode: 1, counts: { succeeded: 1, failed: 3, "not-started": 1 } });
});

test("a wave with a failed stack (tolerated by --max-failures) finishes, and starts no further wave; --wave-delay waits between waves", async () => {
  const report = path.join(bed.dir, "gate", "fleet.md");
  const run = await runCli(
    ["upgrade", "--stacks-file", fleetFile("gate", "g-canary", [failing("g-1"), "g-2", "g-3", "g-4"], ["g-5"]), "--concurrency", "2", "--max-failures", "50%", "--wave-delay", "2s", "--yes", "--json", "--report", report],
    bed.env,
  );
  expect(run.code).toBe(1);
  const events = run.events();
  const ends = stackEnds(run);
  expect(ends["g-1"]).toMatchObject({ status: "failed" });
  for (const s of ["g-canary", "g-2", "g-3", "g-4"]) expect(ends[s]).toMatchObject({ status: "succeeded" });
  expect(ends["g-5"]).toMatchObject({ status: "not-started", note: expect.stringContaining("wave rest did not succeed on every stack (failed: g-1)") });
  // the canary wave succeeded: the delay came before wave rest, and rest began only after it
  const delay = events.findIndex((e) => e.type === "fleet-wave-delay" && e.wave === "rest");
  expect(delay).toBeGreaterThan(events.findIndex((e) => e.type === "fleet-stack-end" && e.stack === "g-canary"));
  expect(events.findIndex((e) => e.type === "fleet-wave-start" && e.wave === "rest")).toBeGreaterThan(delay);
  expect(events.filter((e) => e.type === "fleet-wave-delay")).toHaveLength(1);
  expect(fs.readFileSync(report, "utf8")).toMatch(/\| stack \| wave \| status \| duration \| changes \| verification \| error \| report \|/);
});

test("a glob that matches no stack of the backend exits 2 and runs nothing", async () => {
  const run = await runCli(["upgrade", "--stack", "ok-canary", "--stack", "staging-*", "--cwd", workDir, "--yes", "--json"], bed.env);
  expect(run.code).toBe(2);
  // with --json the refusal is the one JSON error event on stdout, nothing on stderr
  expect(run.stderr).toBe("");
  const events = run.events();
  expect(events).toEqual([expect.objectContaining({ type: "error", exitCode: 2, error: expect.stringMatching(/could not expand --stack "staging-\*": it matches no stack of the backend \(stacks: .*ok-canary/) })]);
});

test("fleet plan --json prints the waves as CI matrices, globs expanded over the backend's stacks", async () => {
  const run = await runCli(["fleet", "plan", "--stack", "ok-canary", "--stack", "ok-[1-3]", "--cwd", workDir, "--json"], bed.env);
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual({
    waves: [{ name: "stacks", canary: false, matrix: { include: ["ok-canary", "ok-1", "ok-2", "ok-3"].map((stack) => ({ stack, cwd: expect.any(String) })) } }],
  });
});

test("two fleets overlapping on one stack: the second skips it (--on-locked skip) or fails it, and says so", async () => {
  let held!: () => void;
  const isHeld = new Promise<void>((resolve) => (held = resolve));
  const first = startCli(["upgrade", "--stack", "o-2", "--stack", "o-1", "--cwd", workDir, "--yes", "--json"], bed.env, (e) => {
    if (e.type === "step-end" && e.step === "lock-stack" && e.stack === "o-2") {
      first.signal("SIGSTOP", true); // fleet A holds o-2 and is busy (paused)
      held();
    }
  });
  try {
    await isHeld;
    const holder = JSON.parse((await store.get(lockKey("fleet-project", "o-2")))!.body);
    const skip = await runCli(["upgrade", "--stack", "o-2", "--stack", "o-3", "--cwd", workDir, "--yes", "--json", "--on-locked", "skip"], bed.env);
    expect(skip.code).toBe(0);
    const ends = stackEnds(skip);
    expect(ends["o-2"]).toMatchObject({ status: "skipped", note: expect.stringContaining(`held by run ${holder.runId}`) });
    expect(ends["o-3"]).toMatchObject({ status: "succeeded" });
    const fail = await runCli(["upgrade", "--stack", "o-2", "--stack", "o-3", "--cwd", workDir, "--yes", "--json"], bed.env);
    expect(fail.code).toBe(3);
    expect(stackEnds(fail)["o-2"]).toMatchObject({ status: "failed", exitCode: 3, error: expect.stringContaining(`held by run ${holder.runId}`) });
    expect(stackEnds(fail)["o-3"]).toMatchObject({ status: "not-started" });
  } finally {
    first.signal("SIGCONT", true);
  }
  expect(await first.exited).toBe(0);
});

test("kill -9 of one stack's run in a fleet of 4 (concurrency 2, --keep-going): the others finish; the rerun resumes it and leaves them as they are", async () => {
  let killedPid: number | undefined;
  const args = ["upgrade", ...KILL.flatMap((s) => ["--stack", s]), "--cwd", workDir, "--concurrency", "2", "--keep-going", "--yes", "--json"];
  const events: Event[] = [];
  const first = startCli(args, bed.env, (e) => {
    events.push(e);
    if (!killedPid && e.type === "step-end" && e.step === "lock-stack" && e.stack === "k-2") {
      void store.get(lockKey("fleet-project", "k-2")).then((o) => {
        killedPid = JSON.parse(o!.body).pid as number;
        process.kill(killedPid, "SIGKILL");
      });
    }
  });
  expect(await first.exited).toBe(1);
  const ends = Object.fromEntries(events.filter((e) => e.type === "fleet-stack-end").map((e) => [e.stack as string, e]));
  expect(ends["k-2"]).toMatchObject({ status: "failed", exitCode: 137 });
  for (const s of ["k-1", "k-3", "k-4"]) expect(ends[s]).toMatchObject({ status: "succeeded" });

  const rerun = await runCli(args, bed.env);
  expect(rerun.code).toBe(0);
  const again = rerun.events();
  expect(again).toContainEqual(expect.objectContaining({ stack: "k-2", type: "note", message: expect.stringMatching(/took over \(its process has exited\) the stale run lock of run \S+ .*\(pid \d+\)/) }));
  expect(again).toContainEqual(expect.objectContaining({ stack: "k-2", type: "note", message: expect.stringMatching(/resuming after run \S+, which stopped/) }));
  expect(again).toContainEqual(expect.objectContaining({ stack: "k-2", type: "step-end", step: "up", status: "done" }));
  for (const s of ["k-1", "k-3", "k-4"]) {
    expect(again).toContainEqual(expect.objectContaining({ stack: s, type: "step-end", step: "up", status: "skipped", note: "nothing to update" }));
  }
});
