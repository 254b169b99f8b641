#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ExitCode, UpgradeError } from "../lib/errors";

/**
 * upgrade-orchestrator: the command line over the typed API in stacks/upgrade.ts.
 * Errors are printed for people (what, why, hint) and end with a stable exit code.
 */
export function buildProgram(): Command {
  const program = new Command("upgrade-orchestrator")
    .description("Safe, repeatable upgrades of self-hosted platforms, driven by the Pulumi Automation API.")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  const sandbox = program
    .command("sandbox")
    .description("the local test bed: moto (AWS), a fault-injecting proxy, sshd and a Pulumi file backend");
  sandbox
    .command("up")
    .description("start the bed in the background and write an env file to `source`")
    .option("--dir <dir>", "state dir (env file, status, log)", ".sandbox")
    .action(async (opts: { dir: string }) => {
      const { sandboxUp } = await import("../test/sandbox/control");
      await sandboxUp({ dir: opts.dir });
    });
  sandbox
    .command("status")
    .description("show whether the bed runs, and its processes")
    .option("--dir <dir>", "state dir", ".sandbox")
    .action(async (opts: { dir: string }) => {
      const { sandboxStatus } = await import("../test/sandbox/control");
      if (!sandboxStatus({ dir: opts.dir })) process.exitCode = 1;
    });
  sandbox
    .command("down")
    .description("stop everything `sandbox up` started, and nothing else")
    .option("--dir <dir>", "state dir", ".sandbox")
    .action(async (opts: { dir: string }) => {
      const { sandboxDown } = await import("../test/sandbox/control");
      await sandboxDown({ dir: opts.dir });
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes("--verbose");
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.Succeeded;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.Succeeded : ExitCode.BadInput;
    }
    if (err instanceof UpgradeError) {
      process.stderr.write(`error: ${err.message}\n`);
      if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    process.stderr.write(`error: ${verbose && err instanceof Error ? err.stack : (err as Error)?.message ?? String(err)}\n`);
    return ExitCode.StepFailed;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
