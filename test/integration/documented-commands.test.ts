import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { documentedCommands, npmRunArgv, shellCommands } from "../docsMarkdown";
import { startSandbox, type Sandbox } from "../sandbox";
import { startBackendAiCluster, type BackendAiFixture } from "../sandbox/backendai";
import type { CliRun } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { copyFixture, REPO_ROOT } from "../sandbox/fixtures";
import { createFleetStacks, FLEET_PROJECT } from "../sandbox/fleetStacks";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { delay } from "../sandbox/processes";
import { startWebhook, type Webhook } from "../sandbox/webhook";

// Issue 21: every command in README.md and docs/ runs as shown. Each command of a fenced shell block
// is run by a test of this file, or listed in NOT_RUN with the reason; the first test fails on any
// other. A command runs as the process its npm script starts (node <entry> …, the dist build) with
// only what the bed must supply substituted: the project (`--cwd ../private-cloud`, or the working
// directory a command without --cwd reads: under `npm run` that is this checkout), the release tag,
// the report path, the webhook, and the flags pointing the driver at the bed's services machine.
jest.setTimeout(600_000); // one real Code Ocean upgrade and four fleet runs, on a busy 2-core machine

/** Documented commands this file does not run, each with why (reviewed: add one only with a reason). */
const NOT_RUN: Record<string, string> = {
  "npm ci && npm run demo":
    "npm ci reinstalls the checkout's node_modules and predemo rebuilds dist/, under the running suite; the demo is itself a whole Code Ocean upgrade on its own embedded bed",
  "npm ci && npm test": "is the suite this file belongs to (and npm ci, as above)",
  "npm run build": "rebuilds dist/, which the suite runs from while it runs (npm test's pretest builds it first)",
  "npm run upgrade -- --stack example --yes --json":
    "a second real upgrade (Backend.AI's hops with real pip, Alembic and PostgreSQL): this file performs one (Code Ocean's, applying the reviewed plan); backendai-cluster.test.ts performs these hops",
};

const covered = new Set<string>();
const unaccounted = (commands: Iterable<string>) => [...new Set(commands)].filter((c) => !covered.has(c) && !(c in NOT_RUN));

/** A test that runs a documented command, written as the docs show it. */
function documented(command: string, body: (command: string) => Promise<void>): void {
  covered.add(command);
  test(`as documented: ${command}`, () => body(command));
}

interface As {
  cwd?: string;
  env?: Record<string, string>;
  /** Whole words to substitute (what the bed supplies). */
  replace?: Record<string, string>;
  /** Flags the bed adds (how its services machine is reached). */
  extra?: string[];
}

/** A documented `npm run` line as the process its script starts, with the bed's substitutions. */
const argvOf = (command: string, as: As) => [...npmRunArgv(command).map((w) => as.replace?.[w] ?? w), ...(as.extra ?? [])];

function run(command: string, as: As = {}): Promise<CliRun> {
  const child = spawn(process.execPath, argvOf(command, as), { cwd: as.cwd ?? REPO_ROOT, env: { ...process.env, ...as.env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 540_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, events: () => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)) });
    });
  });
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);

async function until(ok: () => boolean, show: () => string, timeoutMs = 240_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !ok(); await delay(300)) if (Date.now() > end) throw new Error(`timed out; the screen:\n${show()}`);
}

test("every command of the fenced shell blocks of README.md and docs/ is run below or listed in NOT_RUN with its reason", () => {
  const commands = documentedCommands();
  expect(commands.size).toBeGreaterThan(15);
  expect(unaccounted(commands)).toEqual([]);
  // and no entry names a command the docs no longer show
  expect([...covered, ...Object.keys(NOT_RUN)].filter((c) => !commands.has(c))).toEqual([]);
});

test("that check fails on a documented command that is neither run nor listed", () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  expect(unaccounted(shellCommands(readme))).toEqual([]);
  const edited = `${readme}\n\`\`\`sh\nnpm run upgrade -- --stack prod --sideways   # new\n\`\`\`\n\`\`\`ts\nnpm run not-a-command\n\`\`\`\n`;
  expect(unaccounted(shellCommands(edited))).toEqual(["npm run upgrade -- --stack prod --sideways"]);
});

documented("npm run upgrade -- --help", async (command) => {
  const help = await run(command);
  expect([help.code, help.stderr]).toEqual([0, ""]);
  expect(help.stdout).toMatch(/--dry-run\s+read everything, change nothing/);
  expect(help.stdout).toMatch(/\nExamples:\n/);
});

documented("npm run cli -- backendai path --from 23.09.8 --to 24.03.2 [--json]", async (command) => {
  const [plain, json] = await Promise.all([run(command.replace(" [--json]", "")), run(command.replace("[--json]", "--json"))]);
  expect([plain.code, plain.stdout.split("\n")[0]]).toEqual([0, "23.09.8 → 23.09.10 → 24.03.0 → 24.03.2"]);
  expect([json.code, JSON.parse(json.stdout)]).toEqual([0, expect.objectContaining({ allowed: true, path: ["23.09.10", "24.03.0", "24.03.2"] })]);
});

describe("docs/development/test-bed.md, in a scratch directory (`.sandbox` is made there)", () => {
  let here: string;
  let pids: number[] = [];
  beforeAll(() => {
    here = fs.mkdtempSync(path.join(os.tmpdir(), "uo-doc-sandbox-"));
  });
  afterAll(async () => {
    await run("npm run sandbox -- down", { cwd: here });
    fs.rmSync(here, { recursive: true, force: true });
  });

  documented("npm run sandbox -- up", async (command) => {
    const up = await run(command, { cwd: here });
    expect([up.code, up.stderr]).toEqual([0, ""]);
    expect(up.stdout).toContain(`source ${path.join(here, ".sandbox", "env")}`);
    pids = (JSON.parse(fs.readFileSync(path.join(here, ".sandbox", "status.json"), "utf8")) as { processes: Array<{ pid: number }> }).processes.map((p) => p.pid);
    expect(pids.length).toBeGreaterThan(1);
  });
  documented("source .sandbox/env", async (command) => {
    const probe = `${command} && curl -s -o /dev/null -w '%{http_code} ' "$AWS_ENDPOINT_URL/__fault-proxy/calls" && echo "$PULUMI_BACKEND_URL $UO_SSH_PORT"`;
    expect(execFileSync("bash", ["-c", probe], { cwd: here, encoding: "utf8" }).trim()).toMatch(/^200 file:\/\/\S+ \d+$/);
  });
  documented("npm run sandbox -- status", async (command) => {
    const status = await run(command, { cwd: here });
    expect([status.code, status.stdout]).toEqual([0, expect.stringMatching(/sshd: pid \d+ running/)]);
  });
  documented("npm run sandbox -- down", async (command) => {
    const down = await run(command, { cwd: here });
    expect([down.code, down.stdout]).toEqual([0, expect.stringMatching(/sandbox stopped/)]);
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe("on one bed: Code Ocean stack prod at 1.0.0, a fleet of cheap stacks, a Backend.AI cluster adopted by own stack example", () => {
  let bed: Sandbox;
  let scenario: CodeOceanScenario;
  let cluster: BackendAiFixture;
  let own: OwnStack;
  let hook: Webhook;
  let scratch: string; // examples/: the fleet project, beside it a copy of the repository's examples/fleet.yaml; reports
  let tmuxSocket: string;
  const fleetProject = () => path.join(scratch, "examples");
  /** The flags pointing the driver at the bed's services machine (SSH, services port, polls, bake time). */
  const bedFlags = () => {
    expect(scenario.upgradeArgs.slice(0, 4)).toEqual(["--stack", "prod", "--cwd", scenario.deployment.workDir]);
    return scenario.upgradeArgs.slice(4);
  };
  /** The documented project (`--cwd ../private-cloud`) is the bed's deployment; the fleet file sits beside the fleet's project. */
  const cloud = () => ({ "../private-cloud": scenario.deployment.workDir });
  const fleetFile = () => ({ "../private-cloud/fleet.yaml": path.join(fleetProject(), "fleet.yaml") });
  const deployed = async () => (await scenario.deployment.stack.outputs()).deployedRelease?.value;
  const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", ...args], { cwd, stdio: "pipe" });

  beforeAll(async () => {
    bed = await startSandbox();
    hook = await startWebhook({ status: 200 });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "uo-doc-commands-"));
    tmuxSocket = path.join(bed.dir, "tmux.sock");
    await Promise.all([
      startCodeOceanScenario(bed, { stackName: "prod", workers: 2, gpuWorkers: 0 }).then((s) => (scenario = s)),
      (async () => {
        // the fleet file's stacks; its `cwd: .` is its own directory, so the project is examples/, a git
        // repository with a tag 3.4.1 (the file pins prod-ap to it; no package-lock.json: no npm ci)
        copyFixture(FLEET_PROJECT, fleetProject());
        await createFleetStacks(bed, ["staging", "prod-eu", "prod-us", "prod-ap"], { workDir: fleetProject() });
        fs.copyFileSync(path.join(REPO_ROOT, "examples", "fleet.yaml"), path.join(fleetProject(), "fleet.yaml"));
        fs.writeFileSync(path.join(fleetProject(), ".gitignore"), "node_modules\nPulumi.*.yaml\n");
        git(fleetProject(), "init", "-q", "-b", "main");
        git(fleetProject(), "add", "-A");
        git(fleetProject(), "commit", "-q", "-m", "fleet");
        git(fleetProject(), "tag", "3.4.1");
      })(),
      (async () => {
        cluster = await startBackendAiCluster(bed, { version: "23.09.8" });
        own = await ownStack(bed, "example", { sshKey: { value: cluster.privateKey, secret: true } });
        await own.setSystems({ "gpu-cluster": cluster.systemConfig("23.09.8", "sshKey") });
        await own.stack.up(); // adopts the running cluster
        await own.setSystems({ "gpu-cluster": cluster.systemConfig("24.03.2", "sshKey") }); // the operator's edit
      })(),
    ]);
  }, 600_000);
  afterAll(async () => {
    const kill = () => fs.existsSync(tmuxSocket) && execFileSync("tmux", ["-S", tmuxSocket, "kill-server"], { stdio: "ignore" });
    const rm = () => fs.rmSync(scratch, { recursive: true, force: true });
    // each one, even when one before failed: what is left running would outlive the test
    for (const stop of [kill, () => own?.remove(), () => cluster?.stop(), () => scenario?.stop(), () => hook?.close(), () => bed?.stop(), rm] as Array<() => unknown>) {
      await (async () => stop())().catch(() => undefined);
    }
  }, 120_000);

  /** Runs a documented command at a terminal (a tmux pane) and answers its question; the exit code and the screen. */
  async function atTerminal(command: string, as: As, question: RegExp, answer: string): Promise<{ code: number; asked: string; screen: string }> {
    const name = `t${Date.now()}`;
    const script = path.join(bed.dir, `${name}.sh`);
    const exitFile = path.join(bed.dir, `${name}.exit`);
    const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    const exports = Object.entries(bed.env).map(([k, v]) => `export ${k}=${q(v)}`).join("\n");
    const line = [process.execPath, ...argvOf(command, as)].map(q).join(" ");
    fs.writeFileSync(script, `${exports}\ncd ${q(as.cwd ?? REPO_ROOT)}\n${line}\necho $? > ${q(exitFile)}\nsleep 600\n`, { mode: 0o700 });
    const tmux = (...args: string[]) => execFileSync("tmux", ["-S", tmuxSocket, ...args], { encoding: "utf8" });
    tmux("new-session", "-d", "-s", name, "-x", "220", "-y", "60", `bash ${q(script)}`);
    const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-300", "-t", name);
    await until(() => question.test(screen()), screen);
    const asked = screen();
    tmux("send-keys", "-t", name, answer, "Enter");
    await until(() => fs.existsSync(exitFile) && fs.readFileSync(exitFile, "utf8").trim() !== "", screen);
    const result = { code: Number(fs.readFileSync(exitFile, "utf8")), asked, screen: screen() };
    tmux("kill-session", "-t", name);
    return result;
  }
  const GO_AHEAD = /Go ahead with this upgrade of stack prod\? \[y\/N\]/;

  documented("npm run upgrade -- --stack prod --cwd ../private-cloud --release 3.4.1", async (command) => {
    const t = await atTerminal(command, { replace: { "../private-cloud": scenario.deployment.workDir, "3.4.1": "2.0.0" }, extra: bedFlags() }, GO_AHEAD, "n");
    expect(t.asked).toMatch(/CANCEL every running computation on the services machine: workers-prod-1-asg/);
    expect(t.code).toBe(3);
    expect(t.screen).toMatch(/nothing was changed: no computation was cancelled, .*the project is checked out at 2\.0\.0 \(it was at 1\.0\.0/);
    expect(scenario.services.requests()).toEqual([]);
    expect(await deployed()).toBe("1.0.0");
  });

  documented("npm run upgrade -- --stack prod --cwd ../private-cloud", async (command) => {
    // the checkout is at 2.0.0 now (the line above), the deployment at 1.0.0: a preview, a question, progress
    const t = await atTerminal(command, { replace: { "../private-cloud": scenario.deployment.workDir }, extra: bedFlags() }, GO_AHEAD, "n");
    expect(t.asked).toMatch(/then `pulumi up` will apply: .*replace/);
    expect(t.code).toBe(3);
    expect(t.screen).toMatch(/declined at the confirmation/);
    expect(scenario.services.requests()).toEqual([]);
    expect(await deployed()).toBe("1.0.0");
  });

  documented("npm run upgrade -- --stack prod --cwd ../private-cloud --dry-run", async (command) => {
    bed.aws!.clearCalls();
    const dry = await run(command, { env: bed.env, replace: cloud(), extra: bedFlags() });
    expect([dry.code, dry.stderr]).toEqual([0, ""]);
    expect(dry.stdout).toMatch(/dry run: would ask before any disruption/);
    expect(dry.stdout).toMatch(/\[cancel-computations\] skipped .*dry run: would POST \S+\/cancel_computations/);
    expect(bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action))).toEqual([]);
    expect(scenario.services.requests().filter((r) => r.method !== "GET")).toEqual([]);
    expect(await deployed()).toBe("1.0.0");
  });

  // a reviewed plan of the update (checkout 2.0.0, deployment 1.0.0), applied once: the one real upgrade of this file
  const files = () => ({ "plan.json": path.join(scratch, "plan.json"), "report.md": path.join(scratch, "report.md") });
  /** What `apply` takes from the applying machine: the SSH flags (the plan fixes the rest). */
  const sshFlags = () => bedFlags().flatMap((f, i, all) => (/^--(ssh-|known-hosts)/.test(f) ? [f, all[i + 1]!] : []));
  const posts = () => scenario.services.requests().filter((r) => r.method !== "GET");

  documented("npm run upgrade -- plan --stack prod --cwd ../private-cloud --out plan.json", async (command) => {
    const plan = await run(command, { env: bed.env, replace: { ...files(), ...cloud() }, extra: bedFlags() });
    expect([plan.code, plan.stderr]).toEqual([0, ""]);
    expect(JSON.parse(fs.readFileSync(files()["plan.json"], "utf8"))).toMatchObject({ format: "upgrade-orchestrator/plan@1", stack: "prod" });
    expect(fs.readFileSync(path.join(scratch, "plan.md"), "utf8")).toMatch(/replace/);
    expect([posts(), await deployed()]).toEqual([[], "1.0.0"]);
  });

  documented("npm run upgrade -- apply plan.json --cwd ../private-cloud --json --report report.md", async (command) => {
    const apply = await run(command, { env: bed.env, replace: { ...files(), ...cloud() }, extra: sshFlags() });
    expect([apply.code, apply.stderr]).toEqual([0, ""]);
    const events = apply.events();
    expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "check-plan", status: "done" }));
    expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "up", status: "done" }));
    expect(events.at(-1)).toMatchObject({ type: "summary", status: "succeeded", exitCode: 0 });
    expect(fs.readFileSync(files()["report.md"], "utf8")).toContain("Upgrade of stack `prod`: succeeded");
    expect([posts().length, await deployed()]).toEqual([1, "2.0.0"]);
  });

  documented("npm run upgrade -- apply plan.json --cwd ../private-cloud --json", async (command) => {
    // the same plan again: the stack has changed since (the apply above), so it is stale
    const stale = await run(command, { env: bed.env, replace: { ...files(), ...cloud() }, extra: sshFlags() });
    expect(stale.code).toBe(5);
    expect(stale.events()).toContainEqual(expect.objectContaining({ type: "step-end", step: "check-plan", status: "failed" }));
    expect([posts().length, await deployed()]).toEqual([1, "2.0.0"]);
  });

  documented("npm run upgrade -- --stack prod --cwd ../private-cloud --yes --json --report report.md", async (command) => {
    // run again after the upgrade: nothing to change, no disruption, a succeeded run and its report
    fs.rmSync(files()["report.md"], { force: true });
    const again = await run(command, { env: bed.env, replace: { ...files(), ...cloud() }, extra: bedFlags() });
    expect(again.code).toBe(0);
    const events = again.events();
    expect(events[0]).toMatchObject({ type: "run-start", stack: "prod" });
    expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "plan-update", note: "no changes: the stack already matches the code" }));
    expect(events.at(-1)).toMatchObject({ type: "summary", status: "succeeded", exitCode: 0 });
    expect(fs.readFileSync(files()["report.md"], "utf8")).toContain("Upgrade of stack `prod`: succeeded");
    expect(posts()).toHaveLength(1);
  });

  documented("npm run status -- --stack prod --cwd ../private-cloud", async (command) => {
    const status = await run(command, { env: bed.env, replace: cloud() });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^stack prod: last run \S+, started \S+: succeeded \(exit 0\)\n/);
    expect(status.stdout).toMatch(/\n {2}done {4}plan-update {2,}.*no changes/);
  });

  documented("npm run upgrade -- --stack example --dry-run", async (command) => {
    const dry = await run(command, { cwd: own.workDir, env: bed.env });
    expect(dry.code).toBe(0);
    const line = dry.stdout.split("\n").find((l) => /\[confirm-plan\] ~ \S+BackendAiCluster gpu-cluster \(/.test(l));
    expect(line).toMatch(/plannedPath: \(none\) → 23\.09\.10, 24\.03\.0, 24\.03\.2/); // the hops
    expect(line).toMatch(/version: 23\.09\.8 → 24\.03\.2/);
    expect(cluster.installedVersion("manager")).toBe("23.09.8");
  });

  /** Each stack's end event, by stack. */
  const ends = (r: CliRun) => Object.fromEntries(r.events().filter((e) => e.type === "fleet-stack-end").map((e) => [e.stack as string, e]));
  const FLEET = ["staging", "prod-ap", "prod-eu", "prod-us"];

  documented("npm run upgrade -- --stack staging --stack 'prod-*' --cwd ../private-cloud --yes --json", async (command) => {
    const fleet = await run(command, { env: bed.env, replace: { "../private-cloud": fleetProject() } });
    expect(fleet.code).toBe(0);
    const events = fleet.events();
    expect(Object.keys(ends(fleet)).sort()).toEqual([...FLEET].sort());
    for (const e of Object.values(ends(fleet))) expect(e).toMatchObject({ status: "succeeded", exitCode: 0 });
    expect(events.find((e) => e.type === "run-start")).toMatchObject({ stack: "staging" }); // in the order given
    expect(events.at(-1)).toMatchObject({ type: "fleet-summary", status: "succeeded", counts: { succeeded: 4 } });
  });

  documented("npm run upgrade -- --stack staging --stack 'prod-*' --cwd ../private-cloud --yes", async (command) => {
    const fleet = await run(command, { env: bed.env, replace: { "../private-cloud": fleetProject() } });
    expect(fleet.code).toBe(0);
    for (const stack of FLEET) expect(fleet.stdout).toContain(stack);
  });

  documented("npm run upgrade -- --stacks-file ../private-cloud/fleet.yaml --yes --json --notify https://hooks.example/upgrades", async (command) => {
    const fleet = await run(command, { env: bed.env, replace: { "https://hooks.example/upgrades": hook.url, ...fleetFile() } });
    expect(fleet.code).toBe(0);
    const events = fleet.events();
    const stagingEnd = events.findIndex((e) => e.type === "fleet-stack-end" && e.stack === "staging");
    expect(events.findIndex((e) => e.type === "run-start" && e.stack !== "staging")).toBeGreaterThan(stagingEnd); // the canary first
    expect(Object.values(ends(fleet)).map((e) => e.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(events).toContainEqual(expect.objectContaining({ stack: "prod-ap", type: "step-end", step: "checkout-release", note: expect.stringMatching(/^(already at|checked out) 3\.4\.1/) }));
    expect(hook.received.map((b) => b.event)).toEqual(["fleet-started", "fleet-succeeded"]);
  });

  documented("npm run upgrade -- --stacks-file ../private-cloud/fleet.yaml --yes", async (command) => {
    const fleet = await run(command, { env: bed.env, replace: fleetFile() });
    expect(fleet.code).toBe(0);
    for (const stack of FLEET) expect(fleet.stdout).toContain(stack);
  });
});
