#!/usr/bin/env node
// `npm run sandbox -- up|status|down`: the local test bed in the background, for a person to try
// the runbooks by hand. A repository script, not part of the package: the installed CLI never
// loads the test bed.
import { Command } from "commander";
import { badInput } from "../lib/errors";
import { runProgram } from "../stacks/cli";
import { sandboxDown, sandboxStatus, sandboxUp } from "../test/sandbox/control";
import type { SandboxExtra } from "../test/sandbox/daemon";

/** What `sandbox up --with` can stand up (test/sandbox/daemon.ts). */
const SANDBOX_WITH: Array<[SandboxExtra, string]> = [
  ["codeocean", "the fixture deployment at 1.0.0 with computations running"],
  ["backendai", "a cluster at 23.09.8 adopted by an own stack"],
  ["codeocean-vpc", "CloudFormation stacks at 3.7.0 adopted by an own stack"],
  ["openedx", "a fleet at redwood.3 adopted by an own stack, sumac.3 AMIs registered"],
  ["utilitarian", "Docker Compose at 1.0.0 with messages flowing, adopted by an own stack"],
];

function buildSandboxProgram(): Command {
  const program = new Command("sandbox")
    .description("the local test bed: moto (AWS), a fault-injecting proxy, sshd and a Pulumi file backend")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  program
    .command("up")
    .description("start the bed in the background and write an env file to `source`")
    .option("--dir <dir>", "state dir (env file, status, log)", ".sandbox")
    .option("--with <what>", `also stand up: ${SANDBOX_WITH.map(([kind, what]) => `${kind} (${what})`).join(", ")}`)
    .action(async (opts: { dir: string; with?: string }) => {
      const extra = SANDBOX_WITH.find(([kind]) => kind === opts.with)?.[0];
      if (opts.with !== undefined && extra === undefined) {
        throw badInput("read --with", `unknown ${JSON.stringify(opts.with)}`, `use --with ${SANDBOX_WITH.map(([kind]) => kind).join(", --with ")}`);
      }
      await sandboxUp({ dir: opts.dir, with: extra });
    });
  program
    .command("status")
    .description("show whether the bed runs, and its processes")
    .option("--dir <dir>", "state dir", ".sandbox")
    .action((opts: { dir: string }) => {
      if (!sandboxStatus({ dir: opts.dir })) process.exitCode = 1;
    });
  program
    .command("down")
    .description("stop everything `sandbox up` started, and nothing else")
    .option("--dir <dir>", "state dir", ".sandbox")
    .action(async (opts: { dir: string }) => {
      await sandboxDown({ dir: opts.dir });
    });
  return program;
}

if (require.main === module) {
  runProgram(buildSandboxProgram(), process.argv.slice(2)).then((code) => process.exit(code));
}
