import type { Command } from "commander";
import { badInput } from "../../lib/errors";
import { hasGlob } from "../stackPatterns";
import { duration, failureLimit, positiveInt, webhookUrls, type UpgradeFlags } from "./flags";
import { heavy } from "./heavy";

// `upgrade` over several stacks (--stack globs, repeated --stack, --stacks-file) and `fleet plan`.

/**
 * `upgrade` flags that belong to the fleet as a whole, or that the fleet sets for each stack itself
 * (its cwd, release and report, --json). Every other flag the operator gave goes to each stack's run.
 */
export const FLEET_LEVEL_FLAGS: ReadonlySet<string> = new Set([
  "--stack", "--stacks-file", "--concurrency", "--keep-going", "--max-failures", "--wave-delay", "--on-locked",
  "--notify", "--notify-timeout", "--notify-backoff", "--cwd", "--release", "--json", "--report",
  // a plan is of one stack (upgrade plan/apply refuse a fleet)
  "--out", "--plan",
]);

/**
 * The `upgrade` flags every stack of a fleet gets: each one the operator gave on the command line
 * (commander records where a value came from), as given, less the fleet-level ones. Defaults are
 * not passed: each stack's run has the same.
 */
export function perStackArgs(cmd: Command): string[] {
  const args: string[] = [];
  for (const option of cmd.options) {
    const flag = option.long;
    if (!flag || FLEET_LEVEL_FLAGS.has(flag)) continue;
    const key = option.attributeName();
    if (cmd.getOptionValueSource(key) !== "cli") continue;
    const value: unknown = cmd.getOptionValue(key);
    if (typeof value === "boolean") args.push(flag);
    else if (Array.isArray(value)) for (const v of value) args.push(flag, String(v));
    else if (value !== undefined) args.push(flag, String(value));
  }
  return args;
}

/**
 * A fleet file's per-stack `flags`, checked against `upgrade`'s own options before any stack runs:
 * each a known flag that is not fleet-level, with its value where it takes one.
 */
export function checkStackFlags(cmd: Command, stack: string, flags: readonly string[]): void {
  const bad = (why: string) => badInput(`read the flags of stack ${stack} in the fleet file`, why, "give `upgrade` flags of one stack, e.g. [--services-port, \"8400\"]; fleet-level ones (--concurrency, --release…) have their own keys");
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    const option = cmd.options.find((o) => o.long === flag);
    if (!flag.startsWith("--") || !option) throw bad(`${JSON.stringify(flag)} is not an upgrade flag`);
    if (FLEET_LEVEL_FLAGS.has(flag)) throw bad(`${flag} is for the whole fleet, not one stack`);
    if (option.required || option.optional) {
      const value = flags[i + 1];
      if (value === undefined || (option.required && value.startsWith("--"))) throw bad(`${flag} needs a value`);
      i++;
    }
  }
}

/** The fleet's plan: from --stacks-file, or from repeated --stack (names and globs) as one wave. */
export async function fleetPlanFromFlags(flags: { stack: string[]; stacksFile?: string; cwd: string; release?: string; notify: string[] }): Promise<import("../fleetPlan").FleetPlan> {
  const { expandStackPatterns, listBackendStacks, readFleetFile } = await heavy(() => import("../fleetPlan"));
  if (flags.stacksFile) {
    if (flags.stack.length > 0) throw badInput("choose the stacks", "both --stack and --stacks-file were given", "use one of them");
    const plan = await readFleetFile(flags.stacksFile, process.env, flags.cwd);
    // --release is every stack's release unless the file gives a stack its own
    const waves = plan.waves.map((w) => ({ ...w, stacks: w.stacks.map((s) => ({ ...s, release: s.release ?? flags.release })) }));
    return { ...plan, waves, notify: [...plan.notify, ...flags.notify] };
  }
  if (flags.stack.length === 0) throw badInput("choose the stacks", "no --stack and no --stacks-file", "pass --stack <name> (repeatable, globs allowed) or --stacks-file fleet.yaml");
  const known = hasGlob(flags.stack) ? await listBackendStacks(flags.cwd, process.env) : undefined;
  const stacks = expandStackPatterns(flags.stack, known).map((stack) => ({ stack, cwd: flags.cwd, release: flags.release }));
  return { waves: [{ name: "stacks", canary: false, stacks }], notify: flags.notify };
}

export async function runFleetFromFlags(flags: UpgradeFlags, cmd: Command): Promise<void> {
  if (flags.window.length > 0) (await import("../windows")).parseWindows(flags.window);
  const { createFleetRenderer, runFleet } = await heavy(() => import("../fleet"));
  const plan = await fleetPlanFromFlags(flags);
  for (const s of plan.waves.flatMap((w) => w.stacks)) if (s.flags) checkStackFlags(cmd, s.stack, s.flags);
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true && !flags.json;
  if (!flags.yes && !flags.dryRun) {
    throw badInput("upgrade a fleet", interactive ? "a fleet does not stop at each stack's preview" : "--json output cannot prompt", "pass --yes to apply, or --dry-run to preview every stack");
  }
  const renderer = createFleetRenderer(flags.json ? "json" : process.stdout.isTTY ? "tty" : "plain", process.stdout);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the fleet; running stacks stop after their current step\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const concurrency = positiveInt("--concurrency", flags.concurrency ?? String(plan.concurrency ?? 1));
    const maxFailures = flags.keepGoing ? Infinity : flags.maxFailures ? failureLimit(flags.maxFailures) : 1;
    if (flags.onLocked !== "fail" && flags.onLocked !== "skip") throw badInput("read --on-locked", `unknown ${JSON.stringify(flags.onLocked)}`, "use fail or skip");
    const result = await runFleet({
      plan: { ...plan, notify: webhookUrls(plan.notify) },
      concurrency,
      maxFailures,
      keepGoing: flags.keepGoing,
      waveDelayMs: flags.waveDelay === undefined ? undefined : duration("--wave-delay", flags.waveDelay),
      onLocked: flags.onLocked,
      upgradeArgs: perStackArgs(cmd),
      env: process.env,
      onEvent: renderer.sink,
      reportPath: flags.report,
      signal: controller.signal,
      notifyTimeoutMs: duration("--notify-timeout", flags.notifyTimeout),
      notifyBackoffMs: duration("--notify-backoff", flags.notifyBackoff),
    });
    process.exitCode = result.exitCode;
  } finally {
    renderer.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
