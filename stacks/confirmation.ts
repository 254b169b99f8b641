import { refused } from "../lib/errors";
import type { Step } from "../lib/steps";
import type { RunContext } from "./context";
import { pulumiCall } from "./pulumiCall";
import { changeKey, engineEvents, formatChanges, planInputs } from "./updateSteps";

/**
 * One confirmation, before any disruption: right after plan-update the operator sees what the
 * runbook's steps will disrupt (read from the world) and what `up` will change, and decides. After
 * the drain, `preview` asks again only when the plan changed since (the checkout or config moved).
 */

/** The question's text: the disruption the runbook reports, then what `up` changes. */
export async function confirmationText(ctx: RunContext): Promise<string> {
  const disruption = (await ctx.runbook?.disruption?.(ctx)) ?? [];
  ctx.disruption = disruption;
  const changes = formatChanges(ctx.preview!.changeSummary as Record<string, number>);
  return [
    `Stack ${ctx.options.stack}${ctx.runbook ? ` (runbook ${ctx.runbook.name})` : ""}:`,
    ...(disruption.length > 0 ? ["before `pulumi up`, this run will:", ...disruption.map((l) => `  - ${l}`)] : []),
    `then \`pulumi up\` will apply: ${changes} (the resources are listed above)`,
  ].join("\n");
}

/** Asks unless --yes; a refusal (or no way to ask) stops the run with exit 3. */
async function ask(ctx: RunContext, text: string, again: boolean): Promise<boolean> {
  if (ctx.options.yes) return true;
  return (await ctx.options.confirm?.({ changes: ctx.preview!.changeSummary as Record<string, number>, text, again })) === true;
}

export const confirmPlan: Step<RunContext> = {
  id: "confirm-plan",
  title: "Confirm the plan",
  // it changes nothing: a dry run shows the text it would ask
  readOnly: true,
  async run(ctx) {
    // the plan's resources, on screen for the question (plan-update's own pass, replayed)
    const show = engineEvents(ctx, "confirm-plan");
    for (const event of ctx.planEvents ?? []) show(event);
    const text = await confirmationText(ctx);
    ctx.emit({ type: "note", step: "confirm-plan", message: text });
    const changes = ctx.preview!.changeSummary as Record<string, number>;
    if (ctx.options.dryRun) return `dry run: would ask before any disruption (the text above); ${formatChanges(changes)}`;
    if (!(await ask(ctx, text, false))) {
      throw refused(
        "start the upgrade",
        "the operator declined at the confirmation",
        `nothing was changed: no computation was cancelled, no instance unprotected, no alarm touched${
          ctx.checkedOutFrom ? `; the project is checked out at ${ctx.options.release} (it was at ${ctx.checkedOutFrom}: git checkout ${ctx.checkedOutFrom} && npm ci to go back)` : ""
        }`,
      );
    }
    ctx.confirmedChanges = changes;
    const by = ctx.options.applyPlan ? `approved as the plan of run ${ctx.options.applyPlan.runId}` : ctx.options.yes ? "accepted by --yes" : "confirmed by the operator";
    return `${formatChanges(changes)}: ${by}`;
  },
};

/**
 * The plan `up` applies: plan-update's (confirmed) unless the checkout or the config changed since it
 * was taken; then a fresh preview, and when its changes differ from the confirmed ones, the
 * operator is asked again, told what changed and what the run has already done.
 */
export const preview: Step<RunContext> = {
  id: "preview",
  title: "Preview the update",
  readOnly: true,
  async run(ctx) {
    if (ctx.options.dryRun && ctx.options.release) {
      ctx.emit({ type: "note", step: "preview", message: `dry run: the preview is of the current checkout, not of release ${ctx.options.release} (a dry run does not check it out)` });
    }
    const inputs = await planInputs(ctx);
    ctx.planEvents = undefined;
    if (ctx.preview && inputs === ctx.planInputs) {
      ctx.changes = ctx.preview.changeSummary as Record<string, number>;
      return `${formatChanges(ctx.changes)} (plan-update's preview: the checkout and config are unchanged since${ctx.confirmedChanges ? " it was confirmed" : ""})`;
    }
    const why = ctx.preview ? "previewed again: the checkout or the stack config changed since plan-update's preview" : "previewed";
    ctx.preview = await pulumiCall("preview the update", () => ctx.stack!.preview({ message: ctx.options.message, onEvent: engineEvents(ctx, "preview") }));
    ctx.planInputs = inputs;
    ctx.changes = ctx.preview.changeSummary as Record<string, number>;
    const confirmed = ctx.confirmedChanges;
    if (ctx.options.dryRun || !confirmed || changeKey(confirmed) === changeKey(ctx.changes)) {
      return `${formatChanges(ctx.changes)} (${why}${confirmed ? "; the same changes as confirmed" : ""})`;
    }
    const done = (ctx.records ?? []).filter((r) => r.status === "done" && ctx.runbook?.beforeUp.some((s) => s.id === r.step));
    const already = done.length > 0 ? done.map((r) => `${r.step}${r.note ? ` (${r.note})` : ""}`).join("; ") : "nothing";
    const text = [
      `The plan changed since it was confirmed (${why.replace(/^previewed again: /, "")}):`,
      `  confirmed: ${formatChanges(confirmed)}`,
      `  now:       ${formatChanges(ctx.changes)} (the resources are listed above)`,
      `already done by this run: ${already}`,
    ].join("\n");
    ctx.emit({ type: "note", step: "preview", message: text });
    if (!(await ask(ctx, text, true))) {
      throw refused(
        "apply the changed plan",
        `the operator declined the changed plan (${formatChanges(ctx.changes)}; confirmed: ${formatChanges(confirmed)})`,
        `nothing was applied; already done by this run: ${already}; the alarm actions it suspended are restored next`,
      );
    }
    ctx.confirmedChanges = ctx.changes;
    return `${formatChanges(ctx.changes)} (${why}; the changed plan was ${ctx.options.yes ? "accepted by --yes" : "confirmed again"})`;
  },
};
