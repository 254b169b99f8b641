import type { StepStatus } from "../lib/events";
import type { UpgradePlan } from "./plan";
import { disruptionWindow, renderGantt, type TimedStep } from "./timeline";
import { formatSpan } from "./windows";

/** A plan for people to review (a pull-request comment, the job's step summary): what runs, what it disrupts, what changes, what it depends on. */
export function renderPlan(plan: UpgradePlan): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
  const d = plan.dependsOn;
  const changes = Object.entries(plan.changes).filter(([op, n]) => n > 0 && op !== "same").map(([op, n]) => `${n} ${op}`).join(", ") || "no changes";
  const lines = [
    `## Upgrade plan: stack \`${plan.stack}\``,
    "",
    `Runbook **${plan.runbook ?? "none"}**, planned ${plan.createdAt} (run ${plan.runId}). \`pulumi up\` will apply: ${changes}.`,
    `Apply exactly this plan with \`upgrade apply plan.json\`: it refuses (exit 5, nothing done) when anything below has changed.`,
    "",
    "### What the run disrupts, before `pulumi up`",
    "",
    ...(plan.disruption.length ? plan.disruption.map((l) => `- ${l}`) : ["- nothing (no runbook step before `up` disrupts users)"]),
    "",
    plan.expectedDisruption
      ? `Expected disruption (first disruptive step → alarms restored): **${formatSpan(plan.expectedDisruption.ms)}**, ${plan.expectedDisruption.source}.`
      : "Expected disruption: no figure yet (no earlier successful run of this stack in the journal, no --expected-duration).",
    ...expectedGantt(plan),
    "",
    "### Steps",
    "",
    "| step | what it will do |",
    "|---|---|",
    ...plan.steps.map((s) => `| \`${s.step}\` | ${cell(s.status === "skipped" ? `skipped: ${s.note ?? ""}` : (s.note ?? s.title))} |`),
    "",
    "### Resource operations",
    "",
    ...(plan.operations.length
      ? ["| operation | resource | changed keys |", "|---|---|---|", ...plan.operations.map((o) => `| ${o.op} | \`${cell(o.urn.split("::").slice(-1)[0] ?? o.urn)}\` (${cell(o.type)}) | ${cell(o.keys.join(", ")) || "-"} |`)]
      : ["No resource changes."]),
    "",
    "### Depends on",
    "",
    "| what | value |",
    "|---|---|",
    `| commit | ${d.gitCommit ?? "not a git repository"}${d.gitDirty ? " (with uncommitted changes)" : ""} |`,
    `| release | ${d.release ?? "-"} |`,
    `| package-lock.json | ${d.lockfileSha256?.slice(0, 16) ?? "none"} |`,
    `| Pulumi.yaml | ${d.projectConfigSha256?.slice(0, 16) ?? "none"} |`,
    `| stack config | ${d.stackConfigSha256?.slice(0, 16) ?? "none"} |`,
    `| last update | ${d.lastUpdate ? `${d.lastUpdate.version ? `#${d.lastUpdate.version} ` : ""}${d.lastUpdate.kind} ${d.lastUpdate.result}, started ${d.lastUpdate.startTime}` : "none"} |`,
    `| Pulumi CLI / SDK | ${d.pulumiCli} / ${d.pulumiSdk} |`,
    `| upgrade-orchestrator | ${d.orchestrator} |`,
    "",
  ];
  return lines.join("\n");
}

/** The journaled run the expected disruption comes from, drawn as the report draws a run (its steps laid end to end). */
function expectedGantt(plan: UpgradePlan): string[] {
  const timeline = plan.expectedDisruption?.timeline;
  if (!timeline?.steps.length) return [];
  let at = 0;
  const steps: TimedStep[] = timeline.steps.map((s) => {
    const step = { step: s.step, title: s.step, status: s.status as StepStatus, durationMs: s.durationMs, startMs: at, wait: s.step.startsWith("wait-") };
    at += s.durationMs;
    return step;
  });
  return ["", `The run that figure comes from (${timeline.runId}), its steps laid end to end:`, "", renderGantt(steps, disruptionWindow(steps))];
}
