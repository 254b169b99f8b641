import * as fs from "node:fs";
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
  jobs: Record<string, { needs?: string | string[]; strategy?: { matrix?: string }; steps: Array<{ run?: string }> }>;
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

test("the scheduled workflow invokes the real CLI with commands and flags that exist", () => {
  const workflow = yaml.load(fs.readFileSync(path.join(EXAMPLES, "upgrade-fleet.yml"), "utf8")) as Workflow;
  expect(workflow.on.schedule?.[0]?.cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
  const calls = invocations(workflow);
  expect(calls.map((c) => c.slice(0, 2).join(" "))).toEqual(["fleet plan", "upgrade --stack", "upgrade --stack"]);
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
    // a run per stack: one stack, no prompt, JSON lines
    if (command.name() === "upgrade") expect(rest).toEqual(expect.arrayContaining(["--yes", "--json", "--stack"]));
  }
  // the waves run one after another: the production wave needs the canary
  expect(workflow.jobs.production?.needs).toEqual(["plan", "canary"]);
  expect(workflow.jobs.canary?.strategy?.matrix).toContain("waves[0].matrix");
  expect(workflow.jobs.production?.strategy?.matrix).toContain("waves[1].matrix");
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
