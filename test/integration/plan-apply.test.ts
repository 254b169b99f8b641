import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { startSandbox, type Sandbox } from "../sandbox";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli, type CliRun } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { parseMermaidBlocks } from "../oracle/mermaidGantt";
import { SANDBOX_PASSPHRASE } from "../sandbox/pulumi";

// A change board approves a plan on one machine; a pipeline applies exactly that plan on another
// (issue 27): runbook 1 on the S3 backend, two "machines" with their own HOME, PULUMI_HOME,
// journal dir and checkout. A plan that went stale (code, stack config, the stack's state, or the
// preview's operations) is refused with exit 5 before anything users feel: no cancel request
// reached the services machine and AWS is as it was.
let bed: Sandbox;
let scenario: CodeOceanScenario;
let machineA: Record<string, string>;
let machineB: Record<string, string>;
let checkoutB: string;
let sshArgs: string[];
const plans = () => path.join(bed.dir, "plans");

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "advice.detachedHead=false", ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

function machine(name: string): Record<string, string> {
  const home = fs.mkdtempSync(path.join(bed.dir, `${name}-`));
  return { ...bed.env, HOME: home, PULUMI_HOME: path.join(home, ".pulumi"), UPGRADE_ORCHESTRATOR_STATE: path.join(home, "state") };
}

beforeAll(async () => {
  bed = await startSandbox({ backend: "s3" });
  scenario = await startCodeOceanScenario(bed, { stackName: "approved", workers: 1, gpuWorkers: 0, drainMs: 2000 });
  fs.mkdirSync(plans());
  const a = scenario.deployment.workDir;
  // the pipeline checks the release out, then plans (a plan previews the checked-out code)
  git(a, "checkout", "-q", "2.0.0");
  // machine B: its own clone of the project at the same commit (the stack config is not in git in the fixture)
  checkoutB = path.join(bed.dir, "checkout-b");
  git(bed.dir, "clone", "-q", a, checkoutB);
  git(checkoutB, "checkout", "-q", "2.0.0");
  fs.symlinkSync(fs.realpathSync(path.join(a, "node_modules")), path.join(checkoutB, "node_modules"), "dir");
  for (const f of fs.readdirSync(a).filter((n) => /^Pulumi\..+\.yaml$/.test(n))) fs.copyFileSync(path.join(a, f), path.join(checkoutB, f));
  machineA = machine("machine-a");
  machineB = machine("machine-b");
  const args = scenario.upgradeArgs;
  sshArgs = args.slice(args.indexOf("--ssh-config"), args.indexOf("--services-port"));
}, 600_000);
afterAll(async () => {
  await scenario?.stop();
  await bed?.stop();
});

const events = (run: CliRun) => run.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown> & { type: string; step?: string; status?: string; note?: string });
const plan = (name: string, ...more: string[]) => runCli(["upgrade", "plan", ...scenario.upgradeArgs, "--json", "--out", path.join(plans(), `${name}.json`), ...more], machineA);
const apply = (name: string, ...more: string[]) => runCli(["upgrade", "apply", path.join(plans(), `${name}.json`), "--cwd", checkoutB, ...sshArgs, "--json", ...more], machineB);

/** Runs `refuse` and checks it was refused as stale (exit 5) with nothing disruptive done. */
async function expectStale(refuse: () => Promise<CliRun>): Promise<string> {
  const before = await awsSnapshot(bed.env);
  const cancels = scenario.services.requests().length;
  const run = await refuse();
  const error = events(run).find((e) => e.type === "summary") as { exitCode: number; error: string; hint: string } | undefined;
  expect({ exit: run.code, summary: error?.exitCode }).toEqual({ exit: 5, summary: 5 });
  expect(error!.hint).toMatch(/nothing was changed; make a new plan/);
  const ran = events(run).filter((e) => e.type === "step-end").map((e) => e.step);
  expect(ran).toContain("check-plan");
  expect(ran).not.toContain("cancel-computations");
  expect(scenario.services.requests().length).toBe(cancels);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  return error!.error;
}

test("a plan with --release refuses while the release is not checked out: the plan would preview other code", async () => {
  const b = machine("elsewhere");
  git(checkoutB, "checkout", "-q", "1.0.0");
  try {
    const run = await runCli(["upgrade", "plan", "--stack", "approved", "--cwd", checkoutB, ...sshArgs, "--release", "2.0.0", "--json", "--out", path.join(plans(), "release.json")], b);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/a plan previews the checked-out code.*git checkout 2\.0\.0 && npm ci/);
    expect(fs.existsSync(path.join(plans(), "release.json"))).toBe(false);
  } finally {
    git(checkoutB, "checkout", "-q", "2.0.0");
  }
}, 300_000);

test("upgrade plan writes a redacted, versioned plan and its Markdown, and disrupts nothing", async () => {
  const before = await awsSnapshot(bed.env);
  const run = await plan("main");
  expect(run.code).toBe(0);
  expect(scenario.services.requests()).toEqual([]);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  const file = path.join(plans(), "main.json");
  const written = JSON.parse(fs.readFileSync(file, "utf8"));
  expect(written).toMatchObject({ format: "upgrade-orchestrator/plan@1", stack: "approved", runbook: "codeocean-private-cloud" });
  expect(written.dependsOn).toMatchObject({ gitCommit: git(checkoutB, "rev-parse", "HEAD"), gitDirty: false, release: "2.0.0", lastUpdate: { kind: "update", result: "succeeded", startTime: expect.any(String) } });
  expect(written.operations.map((o: { op: string; urn: string }) => `${o.op} ${o.urn.split("::").pop()}`)).toEqual(expect.arrayContaining(["replace workers-asg", "update workers-lt"]));
  expect(written.disruption.join("\n")).toMatch(/CANCEL every running computation/);
  expect(written.expectedDisruption).toBeNull(); // no earlier run of this stack, no --expected-duration
  expect(written.steps.map((s: { step: string }) => s.step)).toEqual(expect.arrayContaining(["refresh-config", "plan-update", "cancel-computations", "up"]));
  expect(JSON.stringify(written)).not.toMatch(/"\/tmp|"\/root|checkout-b/); // no machine path
  const markdown = fs.readFileSync(path.join(plans(), "main.md"), "utf8");
  expect(markdown).toMatch(/## Upgrade plan: stack `approved`/);
  expect(markdown).toMatch(/\| replace \| `workers-asg` \(/);
  expect(markdown).toMatch(/Expected disruption: no figure yet/);
  // no secret: the backend passphrase, the stack's secret config, the SSH key
  const key = fs.readFileSync(scenario.upgradeArgs[scenario.upgradeArgs.indexOf("--ssh-key") + 1]!, "utf8").split("\n").filter((l) => l.length > 20)[1]!;
  for (const text of [fs.readFileSync(file, "utf8"), markdown]) {
    for (const secret of [SANDBOX_PASSPHRASE, "fixture-db-password", key]) expect(text).not.toContain(secret);
  }
}, 300_000);

test("apply refuses a plan whose code changed since, naming the commit, before anything disruptive", async () => {
  fs.writeFileSync(path.join(checkoutB, "release.json"), JSON.stringify({ version: "2.0.1" }) + "\n");
  git(checkoutB, "commit", "-q", "-am", "a fix after the plan was approved");
  try {
    expect(await expectStale(() => apply("main"))).toMatch(/the project's commit: \w+ when planned, \w+ now/);
  } finally {
    git(checkoutB, "checkout", "-q", "2.0.0");
  }
}, 300_000);

test("apply refuses a plan whose preview now adds a resource, before cancel-computations", async () => {
  const index = path.join(checkoutB, "index.ts");
  const original = fs.readFileSync(index, "utf8");
  fs.appendFileSync(index, '\nnew ReleaseTag("extra-release", { instanceId: services.instanceId, release });\n');
  try {
    expect(await expectStale(() => apply("main"))).toMatch(/not in the plan: create urn:pulumi:approved::codeocean-deployment::[^ ]*extra-release/);
  } finally {
    fs.writeFileSync(index, original);
  }
}, 300_000);

test("apply refuses a plan of runbook none whose stack config changed since", async () => {
  expect((await plan("none", "--runbook", "none")).code).toBe(0);
  const config = path.join(checkoutB, "Pulumi.approved.yaml");
  const original = fs.readFileSync(config, "utf8");
  fs.writeFileSync(config, original.replace(/(codeocean-deployment:workers: ")1(")/, "$12$2"));
  expect(fs.readFileSync(config, "utf8")).not.toBe(original);
  try {
    expect(await expectStale(() => apply("none"))).toMatch(/the stack config \(Pulumi.<stack>.yaml\): \w+ when planned, \w+ now/);
  } finally {
    fs.writeFileSync(config, original);
  }
}, 300_000);

test("apply refuses a plan after another update of the stack (its state moved on)", async () => {
  expect((await plan("before-refresh")).code).toBe(0);
  await scenario.deployment.stack.refresh();
  expect(await expectStale(() => apply("before-refresh"))).toMatch(/the stack's last update \(another update ran since\): \{[^}]*"kind":"update"[^}]*\} when planned, \{[^}]*"kind":"refresh"[^}]*\} now/);
}, 300_000);

test("apply of a fresh plan on the other machine runs it exactly: no prompt, the runbook's steps, up, verified", async () => {
  expect((await plan("fresh", "--expected-duration", "20m")).code).toBe(0);
  const fresh = JSON.parse(fs.readFileSync(path.join(plans(), "fresh.json"), "utf8"));
  expect(fresh.expectedDisruption).toEqual({ ms: 20 * 60_000, source: "--expected-duration" });
  expect(fs.readFileSync(path.join(plans(), "fresh.md"), "utf8")).toMatch(/Expected disruption \(first disruptive step → alarms restored\): \*\*20:00\*\*/);
  // the run-affecting flags are the plan's: giving one to apply is refused
  const bad = await apply("fresh", "--drain-timeout", "1m");
  expect(bad.code).toBe(2);
  expect(bad.stdout).toMatch(/--drain-timeout: the plan fixes what the run does/);
  // `--plan plan.json` is the other spelling of `apply plan.json`
  const run = await runCli(["upgrade", "--plan", path.join(plans(), "fresh.json"), "--cwd", checkoutB, ...sshArgs, "--json"], machineB);
  const all = events(run);
  const summary = all.find((e) => e.type === "summary") as { exitCode: number; error?: string } | undefined;
  expect({ exit: run.code, error: summary?.error }).toEqual({ exit: 0, error: undefined });
  const steps = all.filter((e) => e.type === "step-end");
  expect(steps.find((e) => e.step === "check-plan")!.note).toMatch(/holds/);
  expect(steps.find((e) => e.step === "confirm-plan")!.note).toMatch(/approved as the plan of run/);
  expect(steps.map((e) => e.step)).toEqual(expect.arrayContaining(["cancel-computations", "up", "verify-deployment", "restore-alarms"]));
  expect(scenario.services.requests().some((r) => r.method === "POST")).toBe(true);

  // the next plan, on the first machine, expects the disruption this run had (the backend's journal), and draws it
  const applied = all.find((e) => e.type === "run-start") as unknown as { runId: string };
  expect((await plan("next")).code).toBe(0);
  const next = JSON.parse(fs.readFileSync(path.join(plans(), "next.json"), "utf8"));
  expect(next.expectedDisruption.timeline.runId).toBe(applied.runId);
  expect(next.expectedDisruption.source).toMatch(/the longest disruption of this stack's last successful update in the journal/);
  const blocks = await parseMermaidBlocks(fs.readFileSync(path.join(plans(), "next.md"), "utf8"));
  expect(blocks).toHaveLength(1);
  const gantt = blocks[0]!;
  if ("error" in gantt) throw new Error(`Mermaid rejected the plan's gantt: ${gantt.error}`);
  expect(gantt.tasks.filter((t) => t.section === "Steps").map((t) => t.task.split(" ")[0])).toEqual(next.expectedDisruption.timeline.steps.map((s: { step: string }) => s.step));
  expect(gantt.tasks.find((t) => t.id === "disruption")).toBeDefined();
}, 600_000);
