import { describe, UpgradeError } from "../lib/errors";
import type { Step } from "../lib/steps";
import type { RunContext } from "./context";
import { checkoutAndInstall, currentRelease, up } from "./updateSteps";

/**
 * --on-failure rollback: when the runbook's verification failed after `up` changed things, deploy
 * the release that ran before this run (the one checkout-release moved away from), with the same
 * lock, journal and events, and verify again. What CloudFormation's rollback triggers do, for a
 * Pulumi project. The run is still a failure: exit 4 when the rollback verified (upgrade.ts).
 */
export function rollbackStep(verify: (ctx: RunContext) => Promise<string>, prepare?: (ctx: RunContext) => Promise<string>): Step<RunContext> {
  return {
    id: "rollback",
    title: "Roll back to the release before this run",
    // runs after the failed verification (the runner runs only `always` steps after a failure)
    always: true,
    when: (ctx) => ctx.options.onFailure === "rollback" && (ctx.options.dryRun || ctx.failedAfterUp !== undefined),
    plan: async (ctx) => {
      if (!ctx.options.release) return "rollback: not possible (no --release: the run does not move the checkout, so there is no earlier release to go back to)";
      return `if verification fails: would check out ${await currentRelease(ctx)} (the release checked out now), apply it and verify again`;
    },
    async run(ctx) {
      const to = ctx.checkedOutFrom;
      if (!to) {
        throw new UpgradeError({
          what: "roll back",
          why: "the release before this run is not known (this run did not check one out: no --release)",
          hint: "deploy the previous release with --release <tag>",
          permanent: true,
        });
      }
      // journaled: a run killed from here on is finished by the next one (checkout-release), not redone
      ctx.emit({ type: "progress", step: "rollback", message: `verification failed (${ctx.failedAfterUp!.split("\n")[0]}); deploying ${to}`, data: { rollbackTo: to } });
      await checkoutAndInstall(ctx, to);
      // the runbook's own preparation of an update (the new workers drained and unprotected)
      const prepared = prepare ? await prepare(ctx) : undefined;
      if (prepared) ctx.emit({ type: "progress", step: "rollback", message: prepared });
      ctx.checkedOutFrom = undefined;
      ctx.changes = undefined;
      const applied = await up.run(ctx);
      try {
        const verified = await verify(ctx);
        ctx.rolledBack = { to, verified: true };
        return `rolled back to ${to} (${applied}); ${verified}`;
      } catch (err) {
        ctx.rolledBack = { to, verified: false };
        throw new UpgradeError({
          what: `verify the rollback to ${to}`,
          why: describe(err).split("\n")[0]!,
          hint: "the deployment is unhealthy on the previous release too; restore its data from the restore point, or fix forward",
          permanent: true,
        });
      }
    },
  };
}
