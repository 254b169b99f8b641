#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { badInput, ExitCode, UpgradeError } from "../lib/errors";
import type { ErrorEvent } from "../lib/events";
import { isSingleStack } from "./stackPatterns";
import { createRenderer } from "./output";
import { DEFAULTS } from "./defaults";
import { NOTIFY_DEFAULTS } from "../lib/notify";
import type { UpgradeOptions } from "./upgrade";
import type { BackendAiPathFlags } from "./commands/backendaiPath";
import { checkStackFlags, fleetPlanFromFlags, runFleetFromFlags } from "./commands/fleet";
import { collect, duration, durationText, port, testClock, webhookUrls, type UpgradeFlags } from "./commands/flags";
import { heavy, runningAsCli } from "./commands/heavy";
import type { StatusFlags } from "./commands/status";

// The command line: the commands and their flags. What each command does is in commands/ (and the
// driver, upgrade.ts); this file turns flags into options and errors into exit codes.

const EXAMPLES = `
Examples:
  # at a terminal: preview, confirm, live progress
  npm run upgrade -- --stack prod --cwd ../private-cloud

  # deploy a given release of the deployment project
  npm run upgrade -- --stack prod --cwd ../private-cloud --release 3.4.1

  # in a pipeline: no prompt, JSON lines on stdout, a Markdown report
  npm run upgrade -- --stack prod --cwd ../private-cloud --yes --json --report upgrade-report.md

  # see what would happen, change nothing
  npm run upgrade -- --stack prod --cwd ../private-cloud --dry-run

  # a change board approves a plan; the pipeline applies exactly that plan (exit 5 if it went stale)
  npm run upgrade -- plan --stack prod --cwd ../private-cloud --out plan.json   # plan.json + plan.md
  npm run upgrade -- apply plan.json --cwd ../private-cloud --json

  # a fleet: staging first, then every prod-* stack, three at a time; tell a webhook
  npm run upgrade -- --stack staging --stack 'prod-*' --cwd ../private-cloud --concurrency 3 --yes --notify https://hooks.example/T0/B0/x
  npm run upgrade -- --stacks-file ../private-cloud/fleet.yaml --yes --json --report fleet.md

Exit codes: 0 succeeded, 1 a step failed, 2 bad input or usage, 3 refused by a safety check
(stack locked, not drained in time, dirty working tree, confirmation declined), 4 verification
failed and the run rolled back to the previous release (the rollback verified), 5 the approved
plan is stale (nothing done), 130 interrupted.
A fleet exits with the worst of its stacks' codes, worst first: 1, 130, 4, 5, 3, 2, 0.
Fleet file (YAML): cwd, concurrency, notify: [urls], waves: [{name, canary, window, stacks: [name |
glob | {stack, cwd, release, runbook, window}]}]; canary waves run first, one stack at a time; a
wave's or stack's window (a spec or a list) replaces --window for its stacks.
Maintenance windows: --window "<days> <HH:MM>-<HH:MM> <IANA zone>", e.g. "Sat 02:00-06:00 Europe/Berlin";
a run outside every window, or expected (--expected-duration, else the journal) to overrun its end,
is refused (exit 3) before anything disruptive; a drain still going at the end stops before \`up\`.
The SSH key's passphrase, if any, is read from $UPGRADE_SSH_KEY_PASSPHRASE.`;

async function runUpgrade(flags: UpgradeFlags, planned: Pick<UpgradeOptions, "writePlan" | "applyPlan"> = {}): Promise<void> {
  if (flags.window.length > 0) (await import("./windows")).parseWindows(flags.window); // bad input before anything starts
  const { RUNBOOKS, isRunbookModule } = await heavy(() => import("./runbooks/index"));
  const runbooks = ["auto", ...Object.keys(RUNBOOKS), "none"];
  if (!runbooks.includes(flags.runbook) && !isRunbookModule(flags.runbook)) {
    throw badInput("read --runbook", `unknown runbook ${JSON.stringify(flags.runbook)}`, `use one of ${runbooks.join(", ")}, or the path of a module exporting your own (./my-runbook.js)`);
  }
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true && !flags.json;
  if (!flags.yes && !flags.dryRun && !planned.writePlan && !planned.applyPlan && !interactive) {
    throw badInput(
      "ask for confirmation at the preview",
      flags.json ? "--json output cannot prompt" : "stdin/stdout is not a terminal",
      "pass --yes to apply without asking (pipelines), or --dry-run to only preview",
    );
  }
  const renderer = createRenderer(flags.json ? "json" : process.stdout.isTTY ? "tty" : "plain", process.stdout, flags.verbose);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(`\n${signal}: stopping after the current step and restoring what the run suspended (again to exit at once)\n`);
      controller.abort(new Error(`interrupted by ${signal}`));
    } else {
      process.stderr.write(`${signal} again: exiting now. Alarm actions this run disabled may still be disabled; they are tagged, and the next run restores them.\n`);
      process.exit(ExitCode.Interrupted);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const options: UpgradeOptions = {
    stack: flags.stack[0]!,
    notify: webhookUrls(flags.notify),
    notifyTimeoutMs: duration("--notify-timeout", flags.notifyTimeout),
    notifyBackoffMs: duration("--notify-backoff", flags.notifyBackoff),
    cwd: flags.cwd,
    runbook: flags.runbook as UpgradeOptions["runbook"],
    yes: flags.yes,
    dryRun: flags.dryRun,
    message: flags.message,
    release: flags.release,
    onFailure: flags.onFailure as UpgradeOptions["onFailure"],
    codeOcean: {
      drainTimeoutMs: duration("--drain-timeout", flags.drainTimeout),
      pollIntervalMs: duration("--poll-interval", flags.pollInterval),
      metricPeriodSeconds: Math.round(duration("--metric-period", flags.metricPeriod) / 1000),
      bakeTimeMs: duration("--bake-time", flags.bakeTime),
      verifyTimeoutMs: duration("--verify-timeout", flags.verifyTimeout),
      restorePoint: flags.restorePoint,
      ssh: {
        user: flags.sshUser,
        keyPath: flags.sshKey,
        port: flags.sshPort === undefined ? undefined : port("--ssh-port", flags.sshPort),
        host: flags.sshHost,
        knownHostsPath: flags.knownHosts,
        configPath: flags.sshConfig === "none" ? null : flags.sshConfig,
        passphrase: process.env.UPGRADE_SSH_KEY_PASSPHRASE,
      },
      servicesPort: port("--services-port", flags.servicesPort),
      servicesTimeoutMs: duration("--services-timeout", flags.servicesTimeout),
      waitDedicated: flags.waitDedicated,
    },
    reportPath: flags.report,
    forceUnlock: flags.forceUnlock,
    repair: flags.repair,
    windows: flags.window,
    expectedDurationMs: flags.expectedDuration === undefined ? undefined : duration("--expected-duration", flags.expectedDuration),
    now: testClock(process.env.UPGRADE_ORCHESTRATOR_TEST_NOW),
    ...planned,
    onEvent: renderer.sink,
    signal: controller.signal,
    // the question's text (what will be disrupted, what `up` changes) is on screen above, as the
    // confirm-plan (or preview) note
    confirm: async ({ again }) => {
      renderer.pause();
      const readline = await import("node:readline/promises");
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
      try {
        const question = again ? `Apply the changed plan to stack ${flags.stack[0]}? [y/N] ` : `Go ahead with this upgrade of stack ${flags.stack[0]}? [y/N] `;
        const answer = await rl.question(`\n${question}`);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
        renderer.resume();
      }
    },
  };
  try {
    // The driver (Pulumi's Automation API, the AWS SDK) is loaded only by the command that runs it.
    const { upgrade } = await heavy(() => import("./upgrade"));
    const result = await upgrade(options);
    process.exitCode = result.exitCode;
  } finally {
    renderer.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * upgrade-orchestrator: the command line over the typed API in stacks/upgrade.ts.
 * Errors are printed for people (what, why, hint) and end with a stable exit code.
 */
export function buildProgram(): Command {
  const program = new Command("upgrade-orchestrator")
    .description("Safe, repeatable upgrades of self-hosted platforms, driven by the Pulumi Automation API.")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  // With --json, stdout carries JSON only: commander's own usage errors become one error event (main).
  if (jsonRequested) program.configureOutput({ writeErr: () => undefined, outputError: () => undefined });

  program
    .command("upgrade")
    .description("upgrade a stack (or a fleet of stacks): the runbook's steps around preview and `pulumi up`")
    .option("--stack <name>", "the Pulumi stack to upgrade; repeat it, or use globs over the backend's stacks ('prod-*'), for a fleet", collect, [])
    .option("--stacks-file <file>", "a fleet file (YAML): waves of stacks, a canary wave first, per-stack cwd and release")
    .addOption(new Option("--concurrency <n>", "fleet: stacks upgraded at once within a wave (canary waves: 1)"))
    .option("--keep-going", "fleet: go on past failed stacks (the exit code is still the worst)")
    .option("--max-failures <n|p%>", "fleet: stop after this many failed stacks (default 1), or once more than this share of a wave failed (e.g. 50%: a wave of 4 goes on past 2, stops at the 3rd); a wave with a failed stack starts no further wave")
    .option("--wave-delay <duration>", "fleet: wait this long between two waves (e.g. 10m to watch the canary)")
    .addOption(new Option("--on-locked <what>", "fleet: a stack another run holds is counted as failed, or skipped").choices(["fail", "skip"]).default("fail"))
    .option("--notify <url>", "POST JSON (Slack-compatible text + summary) to this webhook when the run or fleet starts, succeeds or fails (repeatable)", collect, [])
    .addOption(new Option("--notify-timeout <duration>", "deadline of one webhook POST").default(durationText(NOTIFY_DEFAULTS.timeoutMs)).hideHelp())
    .addOption(new Option("--notify-backoff <duration>", "first wait before retrying a webhook").default(durationText(NOTIFY_DEFAULTS.minBackoffMs)).hideHelp())
    .option("--cwd <dir>", "the Pulumi project directory", process.cwd())
    .option("--runbook <name|path>", "codeocean-private-cloud | none | auto (detect from config upgrade:runbook, then the outputs) | ./my-runbook.js (a module exporting your own runbook as default or runbook)", "auto")
    .option("--yes", "apply without asking at the preview (required without a terminal)")
    .option("--dry-run", "read everything, change nothing; print the plan and the Pulumi preview")
    .option("--json", "JSON lines on stdout, one event each, nothing else")
    .option("--message <text>", "message recorded with the Pulumi update")
    .option("--release <tag>", "git tag of the project to check out (then npm ci) before the update")
    .option("--drain-timeout <duration>", "deadline for the workers to become idle", durationText(DEFAULTS.drainTimeoutMs))
    .option("--poll-interval <duration>", "interval between SlotsUtilization polls", durationText(DEFAULTS.pollIntervalMs))
    .option("--wait-dedicated", "also wait until no dedicated worker (outside the ASGs; the update does not replace them) is running; default: report them only")
    .option("--bake-time <duration>", "after `up`: how long the deployment must stay healthy (targets, health checks, services API, no alarm in ALARM)", durationText(DEFAULTS.bakeTimeMs))
    .option("--verify-timeout <duration>", "after `up`: how long to wait for the deployment to become healthy before the bake time starts", durationText(DEFAULTS.verifyTimeoutMs))
    .addOption(new Option("--on-failure <what>", "when verification fails after `up`: roll back to the release checked out before the run (needs --release; exit 4 once the rollback verified), or stop with the new release in place").choices(["stop", "rollback"]).default("stop"))
    .option("--no-restore-point", "do not snapshot the services machine's data volumes before `up` (default: a restore point, reported with the command that restores from it)")
    .addOption(new Option("--metric-period <duration>", "CloudWatch period of SlotsUtilization").default(durationText(DEFAULTS.metricPeriodSeconds * 1000)).hideHelp())
    .option(
      "--ssh-config <file>",
      "OpenSSH client config for the services machine, resolved by OpenSSH itself (`ssh -G`: HostName, User, Port, IdentityFile, UserKnownHostsFile, HostKeyAlias, ProxyCommand, ProxyJump); " +
        "default ~/.ssh/config when it exists, `none` for no config. The --ssh-* and --known-hosts flags win over it",
    )
    .option("--ssh-user <user>", `SSH user on the services machine (default: the config's User, else ${DEFAULTS.sshUser})`)
    .option("--ssh-key <file>", "SSH private key file, the only key offered (default: as OpenSSH offers them, ssh-agent's keys, then the config's IdentityFile or ~/.ssh/id_*)")
    .option("--ssh-port <port>", `SSH port (default: the config's Port, else ${DEFAULTS.sshPort})`)
    .option(
      "--ssh-host <host>",
      "SSH host (default: the services instance id when the SSH config has a Host/Match for it with HostName, ProxyCommand or ProxyJump, as for SSH through Session Manager; else its private IP from EC2)",
    )
    .option("--known-hosts <file>", "known_hosts file for strict host-key checking (default: the config's UserKnownHostsFile, else ~/.ssh/known_hosts)")
    .addOption(new Option("--services-port <port>", "port of the services API on the services machine").default(String(DEFAULTS.servicesPort)).hideHelp())
    .addOption(new Option("--services-timeout <duration>", "deadline of one cancel request").default(durationText(DEFAULTS.servicesTimeoutMs)).hideHelp())
    .option("--window <spec>", 'maintenance window, e.g. "Sat 02:00-06:00 Europe/Berlin" or "Mon-Fri 22:00-02:00 UTC" (repeatable): refuse to start outside one, or when the expected duration would overrun its end; the drain before `up` ends by then', collect, [])
    .option("--expected-duration <duration>", "with --window: how long the disruptive part of the run takes (default: the longest of this stack's last three successful updates in the journal)")
    .option("--report <file>", "write the Markdown run report there ($GITHUB_STEP_SUMMARY is also honoured)")
    .option("--force-unlock", "take over the run lock of a run that is gone (reported as stale)")
    .option("--repair", "clear what an interrupted `pulumi up` left (its lock, pending operations) when the driver cannot be sure it is gone")
    .option("--verbose", "engine events and stack traces")
    .option("--out <file>", "upgrade plan: where to write the plan (JSON; Markdown for review beside it)", "plan.json")
    .option("--plan <file>", "apply this approved plan (the same as `upgrade apply <file>`)")
    .argument("[action]", "plan: read everything, change nothing, write the plan (--out) for review · apply: run an approved plan exactly (refused, exit 5, when it went stale)")
    .argument("[plan]", "apply: the plan file")
    .addHelpText("after", EXAMPLES)
    .action(async (action: string | undefined, planFile: string | undefined, flags: UpgradeFlags & { out: string; plan?: string }, cmd: Command) => {
      const { planAction } = await import("./commands/plan");
      const planned = await planAction(action, planFile, flags, cmd);
      if (planned.writePlan || planned.applyPlan) return runUpgrade(flags, planned);
      for (const key of ["knownHosts", "sshConfig"] as const) {
        const given = flags[key];
        if (!given?.startsWith("~/")) continue;
        flags[key] = `${process.env.HOME}/${given.slice(2)}`;
        cmd.setOptionValueWithSource(key, flags[key], "cli"); // what a fleet passes on to its stacks
      }
      // zod and the fleet code load only for a fleet
      if (isSingleStack(flags.stack, flags.stacksFile)) await runUpgrade(flags);
      else await runFleetFromFlags(flags, cmd);
    });

  program
    .command("fleet")
    .description("fleets across machines")
    .command("plan")
    .description("print a fleet's waves as CI matrices (one job per stack, one wave after another); each job runs `upgrade --stack <one>`")
    .option("--stack <name>", "stack name or glob (repeatable)", collect, [])
    .option("--stacks-file <file>", "a fleet file (YAML)")
    .option("--cwd <dir>", "the Pulumi project directory", process.cwd())
    .option("--json", "print one JSON object: {waves: [{name, canary, matrix: {include: [{stack, cwd, release?, runbook?, windows?, flags?}]}}]}")
    .action(async (flags: { stack: string[]; stacksFile?: string; cwd: string; json?: boolean }) => {
      const { planMatrix } = await heavy(() => import("./fleetPlan"));
      const plan = await fleetPlanFromFlags({ ...flags, notify: [] });
      // each job runs `upgrade` with the stack's flags: a bad one fails here, not in the job
      const upgrade = program.commands.find((c) => c.name() === "upgrade")!;
      for (const s of plan.waves.flatMap((w) => w.stacks)) if (s.flags) checkStackFlags(upgrade, s.stack, s.flags);
      const matrix = planMatrix(plan);
      if (flags.json) {
        process.stdout.write(JSON.stringify(matrix) + "\n");
        return;
      }
      for (const w of matrix.waves) process.stdout.write(`${w.name}${w.canary ? " (canary)" : ""}: ${w.matrix.include.map((s) => s.stack).join(", ")}\n`);
    });

  program
    .command("status")
    .description("the last run of a stack from its journal (in the backend, or on this machine): steps, outcomes, times, what is still suspended")
    .requiredOption("--stack <name>", "the Pulumi stack")
    .option("--cwd <dir>", "the Pulumi project directory", process.cwd())
    .option("--json", "print it as one JSON object")
    .action(async (flags: StatusFlags) => (await import("./commands/status")).runStatus(flags));

  const backendai = program.command("backendai").description("Backend.AI (runbook 3): upgrade paths");
  backendai
    .command("path")
    .description("plan the upgrade path between two Backend.AI releases over the release catalog")
    .requiredOption("--from <version>", "the version running now, e.g. 23.09.8")
    .requiredOption("--to <version>", "the version wanted, e.g. 24.03.2")
    .option("--direct", "check one direct hop instead of planning a path")
    .option("--catalog <file|url|bundled>", "where the releases come from: a package index URL (default: PIP_INDEX_URL, else https://pypi.org/simple), \"bundled\" (the catalog shipped with the package), or a JSON file {releases:[{version,date}]}")
    .option("--json", "print one JSON object")
    .addHelpText("after", "\nExit codes: 0 allowed, 2 malformed input, 3 refused by the upgrade rules (the reason is printed).")
    .action(async (flags: BackendAiPathFlags) => (await import("./commands/backendaiPath")).runBackendAiPath(flags));

  return program;
}

/** Set from argv before the program is built: --json asks for JSON on stdout, errors included. */
let jsonRequested = false;

export async function main(argv: string[]): Promise<number> {
  jsonRequested = argv.includes("--json");
  return runProgram(buildProgram(), argv);
}

/**
 * Runs a command line of `program` as the CLI does: errors printed for people (what, why, hint;
 * the stack trace with --verbose), or as one JSON error event with --json; resolves with the exit code.
 */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  const verbose = argv.includes("--verbose");
  const jsonError = (exitCode: number, error: string, hint?: string) => {
    const event: ErrorEvent = { type: "error", exitCode, error, ...(hint ? { hint } : {}) };
    process.stdout.write(JSON.stringify(event) + "\n");
    return exitCode;
  };
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.Succeeded;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.Succeeded;
      if (jsonRequested) return jsonError(ExitCode.BadInput, err.message.replace(/^error: /, ""), "run with --help for usage");
      return ExitCode.BadInput;
    }
    if (jsonRequested) {
      const hint = err instanceof UpgradeError ? err.hint : undefined;
      const message = err instanceof UpgradeError ? `could not ${err.what}: ${err.why}` : (err as Error)?.message ?? String(err);
      return jsonError(err instanceof UpgradeError ? err.exitCode : ExitCode.StepFailed, message, hint);
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
  runningAsCli();
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
