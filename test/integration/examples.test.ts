import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import yaml from "js-yaml";
import type { Command } from "commander";
import { buildProgram } from "../../stacks/cli";
import { runCli } from "../sandbox/cli";
import { REPO_ROOT } from "../sandbox/fixtures";

// The shipped GitHub Actions example calls the real CLI: every invocation names a command that
// exists with flags that exist, and what it reads from `fleet plan --json` is what the CLI prints.
const EXAMPLES = path.join(REPO_ROOT, "examples");

interface Workflow {
  on: { schedule?: Array<{ cron: string }> };
  jobs: Record<string, { needs?: string | string[]; environment?: string; strategy?: { matrix?: string }; steps: Array<{ run?: string }> }>;
}

/** Shell words of a command line, quotes removed. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3] ?? m[0]);
  return out;
}

function invocations(workflow: Workflow): string[][] {
  const runs = Object.values(workflow.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ""));
  return runs.flatMap((run) => {
    // GitHub expressions become a placeholder value; the command ends at a `)` of `$(…)`
    const line = run.replace(/\$\{\{.*?\}\}/g, "EXPR").replace(/\s+/g, " ");
    const at = line.indexOf("upgrade-orchestrator ");
    if (at < 0) return [];
    const command = line.slice(at + "upgrade-orchestrator ".length).split(")")[0]!;
    return [words(command)];
  });
}

function commandFor(program: Command, args: string[]): { command: Command; rest: string[] } {
  let command = program;
  let rest = args;
  for (;;) {
    const sub = command.commands.find((c) => c.name() === rest[0]);
    if (!sub) return { command, rest };
    command = sub;
    rest = rest.slice(1);
  }
}

const load = (file: string) => yaml.load(fs.readFileSync(path.join(EXAMPLES, file), "utf8")) as Workflow;

/** Every invocation of the CLI names a command that exists with flags that exist, each with its value. */
function expectRealCommands(calls: string[][]): void {
  for (const call of calls) {
    const { command, rest } = commandFor(buildProgram(), call);
    expect(command.name()).not.toBe("upgrade-orchestrator");
    const known = new Map(command.options.map((o) => [o.long!, o]));
    for (let i = 0; i < rest.length; i++) {
      const flag = rest[i]!.split("=")[0]!;
      if (!flag.startsWith("--")) continue;
      expect({ command: command.name(), flag, exists: known.has(flag) }).toEqual({ command: command.name(), flag, exists: true });
      // a flag that takes a value has one
      if (known.get(flag)!.required) expect(rest[i + 1]).toBeDefined();
    }
    // a run per stack, no prompt, JSON lines: a plan (one stack) or the apply of one
    if (command.name() === "upgrade") {
      expect(["plan", "apply"]).toContain(rest[0]);
      expect(rest).toContain("--json");
      if (rest[0] === "plan") expect(rest).toEqual(expect.arrayContaining(["--stack", "--out"]));
    }
  }
}

test("the one-stack workflow plans, waits for the environment's reviewers, and applies that plan", () => {
  const workflow = load("upgrade-stack.yml");
  const calls = invocations(workflow);
  expect(calls.map((c) => c.slice(0, 2).join(" "))).toEqual(["upgrade plan", "upgrade apply"]);
  expectRealCommands(calls);
  expect(workflow.jobs.apply).toMatchObject({ needs: "plan", environment: "production" });
  expect(workflow.jobs.plan?.environment).toBeUndefined();
});

test("the scheduled fleet workflow plans each wave's stacks, and applies them after approval, one wave after another", () => {
  const workflow = load("upgrade-fleet.yml");
  expect(workflow.on.schedule?.[0]?.cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
  const calls = invocations(workflow);
  expect(calls.map((c) => c.slice(0, 2).join(" "))).toEqual(["fleet plan", "upgrade plan", "upgrade apply", "upgrade plan", "upgrade apply"]);
  expectRealCommands(calls);
  // a wave is planned once the one before applied; its applies wait for the reviewers
  expect(workflow.jobs["plan-production"]?.needs).toEqual(["waves", "canary"]);
  expect(workflow.jobs.production?.needs).toEqual(["waves", "plan-production"]);
  for (const [job, wave] of [["plan-canary", 0], ["canary", 0], ["plan-production", 1], ["production", 1]] as const) {
    expect(workflow.jobs[job]?.strategy?.matrix).toContain(`waves[${wave}].matrix`);
    expect(workflow.jobs[job]?.environment).toBe(job.startsWith("plan-") ? undefined : "production");
  }
});

/** actionlint as provisioned (scripts/provision-actionlint.sh names the version). */
function actionlint(): string {
  const version = /ACTIONLINT_VERSION="\$\{UO_ACTIONLINT_VERSION:-([^}]+)\}"/.exec(fs.readFileSync(path.join(REPO_ROOT, "scripts", "provision-actionlint.sh"), "utf8"))![1]!;
  const cache = process.env.UPGRADE_ORCHESTRATOR_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "upgrade-orchestrator");
  return path.join(cache, "actionlint", process.env.UO_ACTIONLINT_VERSION ?? version, "actionlint");
}
const lint = (file: string) => spawnSync(actionlint(), ["-no-color", "-shellcheck=", "-pyflakes=", file], { encoding: "utf8" });

test("the example workflows are valid GitHub Actions workflows, as actionlint reads them", () => {
  for (const file of ["upgrade-stack.yml", "upgrade-fleet.yml"]) {
    const run = lint(path.join(EXAMPLES, file));
    expect({ file, status: run.status, out: run.stdout + run.stderr }).toEqual({ file, status: 0, out: "" });
  }
  // the oracle bites: the same workflow with a job needing one that does not exist is refused
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "uo-actionlint-")), "broken.yml");
  fs.writeFileSync(broken, fs.readFileSync(path.join(EXAMPLES, "upgrade-stack.yml"), "utf8").replace("needs: plan", "needs: planning"));
  const refused = lint(broken);
  expect(refused.status).toBe(1);
  expect(refused.stdout).toMatch(/job "apply" needs job "planning" which does not exist/);
});

test("fleet plan --json of the example fleet file is the matrix the workflow reads", async () => {
  const run = await runCli(["fleet", "plan", "--stacks-file", path.join(EXAMPLES, "fleet.yaml"), "--json"], { PULUMI_BACKEND_URL: "file:///nonexistent" }, {});
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  const plan = JSON.parse(run.stdout);
  expect(plan.waves.map((w: { name: string; canary: boolean }) => [w.name, w.canary])).toEqual([["canary", true], ["production", false]]);
  expect(plan.waves[0].matrix.include).toEqual([{ stack: "staging", cwd: expect.any(String) }]);
  expect(plan.waves[1].matrix.include.map((s: { stack: string }) => s.stack)).toEqual(["prod-eu", "prod-us", "prod-ap"]);
  expect(plan.waves[1].matrix.include[2]).toMatchObject({ stack: "prod-ap", release: "3.4.1" });
});
