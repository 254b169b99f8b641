import type { Command } from "commander";
import { badInput } from "../../lib/errors";
import { isSingleStack } from "../stackPatterns";
import type { UpgradeFlags } from "./flags";

// `upgrade plan` and `upgrade apply <plan.json>`: a reviewed plan, applied exactly (stacks/plan.ts).

/** The flags whose values a plan fixes: given to `apply`, they would run something other than what was approved. */
const FIXED_BY_PLAN = [
  "--release", "--runbook", "--drain-timeout", "--poll-interval", "--metric-period", "--bake-time", "--verify-timeout", "--on-failure",
  "--no-restore-point", "--services-port", "--services-timeout", "--wait-dedicated", "--window", "--expected-duration", "--message", "--dry-run",
];

/** What `upgrade <action>` asks of the run: nothing (a plain upgrade), a plan to write, or a plan to apply. */
export async function planAction(action: string | undefined, file: string | undefined, flags: UpgradeFlags & { out: string; plan?: string }, cmd: Command): Promise<{ writePlan?: string; applyPlan?: import("../plan").UpgradePlan }> {
  if (flags.plan !== undefined) {
    // `--plan plan.json` is `apply plan.json`
    if ((action !== undefined && action !== "apply") || (file !== undefined && file !== flags.plan)) throw badInput("read the command line", "--plan is the plan to apply", "upgrade apply plan.json, or upgrade --plan plan.json");
    action = "apply";
    file = flags.plan;
  }
  if (action === undefined) {
    if (file !== undefined) throw badInput("read the command line", `unexpected argument ${JSON.stringify(file)}`, "upgrade [plan | apply <plan.json>] --stack <name> …");
    return {};
  }
  const several = () => !isSingleStack(flags.stack, flags.stacksFile);
  if (action === "plan") {
    if (file !== undefined) throw badInput("read the command line", `unexpected argument ${JSON.stringify(file)}`, "upgrade plan --stack <name> --out plan.json");
    if (several()) throw badInput("plan the upgrade", "a plan is of one stack", "plan each stack in its own job: `fleet plan --json` gives the matrix (one job per stack)");
    return { writePlan: flags.out };
  }
  if (action === "apply") {
    if (file === undefined) throw badInput("apply a plan", "no plan file given", "upgrade apply plan.json --cwd <project>");
    const fixed = cmd.options.filter((o) => o.long && FIXED_BY_PLAN.includes(o.long) && cmd.getOptionValueSource(o.attributeName()) === "cli").map((o) => o.long!);
    if (fixed.length > 0) throw badInput("apply the plan", `${fixed.join(", ")}: the plan fixes what the run does`, "make a new plan with these flags (upgrade plan …) and have it approved");
    const { readPlanFile } = await import("../plan");
    const plan = readPlanFile(file);
    if (flags.stack.length === 0) flags.stack = [plan.stack];
    if (several() || flags.stack[0] !== plan.stack) throw badInput("apply the plan", `the plan is for stack ${plan.stack}, not ${flags.stack.join(", ") || flags.stacksFile}`, `apply it with --stack ${plan.stack} (or without --stack)`);
    return { applyPlan: plan };
  }
  throw badInput("read the command line", `unknown action ${JSON.stringify(action)}`, "upgrade [plan | apply <plan.json>] --stack <name> …");
}
