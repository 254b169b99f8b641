import type { StepRecord, UpgradeEvent } from "../lib/events";
import { packageVersion, pulumiSdkVersion } from "../lib/toolchain";
import { formatDuration } from "../lib/wait";
import type { ResolvedOptions } from "./context";
import { disruptionWindow, renderGantt, timedSteps } from "./timeline";

export interface ReportInput {
  runId: string;
  options: ResolvedOptions;
  status: "succeeded" | "failed";
  exitCode: number;
  steps: StepRecord[];
  changes?: Record<string, number>;
  error?: { message: string; hint?: string };
  events: UpgradeEvent[];
  durationMs: number;
  restorePoints?: Array<{ snapshotId: string; volumeId: string; state: string; restore: string }>;
  rolledBack?: { to: string; verified: boolean };
}

const ICON: Record<StepRecord["status"], string> = { done: "✅", skipped: "⏭️", failed: "❌" };
const cell = (s: string | undefined) => (s ?? "").replace(/\|/g, "\\|").replace(/\n/g, "<br>");

/** The Markdown run report (for --report and $GITHUB_STEP_SUMMARY). Input is already redacted. */
export function renderReport(r: ReportInput): string {
  const lines = [
    `## Upgrade of stack \`${r.options.stack}\`: ${r.status}${r.options.dryRun ? " (dry run)" : ""}`,
    "",
    `Run \`${r.runId}\` · exit code ${r.exitCode} · ${formatDuration(r.durationMs)} · project \`${r.options.cwd}\``,
    "",
    "| step | status | duration | note |",
    "|---|---|---|---|",
    ...r.steps.map((s) => `| \`${s.step}\` | ${ICON[s.status]} ${s.status} | ${formatDuration(s.durationMs)} | ${cell(s.error ?? s.note)} |`),
    "",
  ];
  if (r.changes) {
    lines.push("**Resource changes:** " + (Object.entries(r.changes).map(([op, n]) => `${op} ${n}`).join(", ") || "none"), "");
  }
  if (r.rolledBack) lines.push(`**Rolled back** to \`${r.rolledBack.to}\`: the rollback ${r.rolledBack.verified ? "verified" : "did NOT verify"}.`, "");
  for (const p of r.restorePoints ?? []) lines.push(`**Restore point:** \`${p.snapshotId}\` of \`${p.volumeId}\` (${p.state}). To restore the data: ${cell(p.restore)}.`, "");
  if (r.error) lines.push(`**Error:** ${cell(r.error.message)}`, ...(r.error.hint ? ["", `**Next:** ${cell(r.error.hint)}`] : []), "");
  lines.push(...renderTimeline(r.events));
  lines.push(
    `**Versions:** upgrade-orchestrator ${packageVersion()}, @pulumi/pulumi ${pulumiSdkVersion()}, Node ${process.version}` +
      (r.options.release ? `, release \`${r.options.release}\`` : ""),
    "",
  );
  return lines.join("\n");
}

/** The run's timeline: its disruption window in words, and a Mermaid gantt of every step. */
export function renderTimeline(events: UpgradeEvent[]): string[] {
  const steps = timedSteps(events);
  if (steps.length === 0) return [];
  const disruption = disruptionWindow(steps);
  return [
    "### Timeline",
    "",
    disruption
      ? `**Disruption window:** ${formatDuration(disruption.durationMs)}, from \`${disruption.from}\` to the end of \`${disruption.to}\` (${new Date(disruption.startMs).toISOString()} → ${new Date(disruption.endMs).toISOString()}).`
      : "**Disruption window:** none (nothing disruptive ran).",
    "",
    renderGantt(steps, disruption),
    "",
  ];
}
