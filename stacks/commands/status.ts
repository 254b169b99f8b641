import * as fs from "node:fs";
import * as path from "node:path";
import { formatDuration } from "../../lib/wait";
import { heavy } from "./heavy";

export interface StatusFlags {
  stack: string;
  cwd: string;
  json?: boolean;
}

/** `status`: the last run of a stack from its journal (in the backend, or on this machine). */
export async function runStatus(flags: StatusFlags): Promise<void> {
  const { lastRun, lastRunInBackend, newerRun } = await heavy(() => import("../journal"));
  let run = lastRun(process.env, flags.cwd, flags.stack);
  // the backend's journal holds runs from every machine; the local one is the offline fallback
  let backendNote: string | undefined;
  if (fs.existsSync(path.join(flags.cwd, "Pulumi.yaml")) || fs.existsSync(path.join(flags.cwd, "Pulumi.yml"))) {
    try {
      const { projectBackend } = await heavy(() => import("../backend"));
      const backend = await projectBackend(flags.cwd, process.env);
      if (backend.store) {
        try {
          run = newerRun(run, await lastRunInBackend(backend.store, backend.project, flags.stack));
        } finally {
          backend.store.close();
        }
      } else backendNote = `the backend ${backend.url || "(Pulumi Cloud)"} keeps no journal of ours: local runs only`;
    } catch (err) {
      backendNote = `could not read the backend's journal (${(err as Error).message.split("\n")[0]}): local runs only`;
    }
  }
  if (backendNote) process.stderr.write(`note: ${backendNote}\n`);
  if (!run) {
    if (flags.json) process.stdout.write(JSON.stringify({ stack: flags.stack, lastRun: null }) + "\n");
    else process.stdout.write(`no run of stack ${flags.stack} recorded for ${flags.cwd} on this machine or in its backend\n`);
    return;
  }
  if (flags.json) {
    process.stdout.write(JSON.stringify({ stack: flags.stack, lastRun: run }) + "\n");
    return;
  }
  const state = run.status === "running" ? `unfinished (running now, or stopped during ${run.unfinishedStep ?? "a step boundary"})` : `${run.status} (exit ${run.exitCode})`;
  const lines = [`stack ${flags.stack}: last run ${run.runId}, started ${run.startedAt ?? "?"}: ${state}`];
  for (const s of run.steps) lines.push(`  ${s.status.padEnd(7)} ${s.step.padEnd(28)} ${formatDuration(s.durationMs).padStart(7)}  ${s.error ?? s.note ?? ""}`);
  if (run.unfinishedStep) lines.push(`  started ${run.unfinishedStep} (no end recorded)`);
  for (const [what, items] of Object.entries(run.stillSuspended)) lines.push(`  still suspended (${what}): ${items.join(", ")} — the next run restores them`);
  if (run.disruption) lines.push(`  disruption window: ${formatDuration(run.disruption.durationMs)} (${run.disruption.from} → end of ${run.disruption.to})`);
  if (run.error) lines.push(`  error: ${run.error}`);
  lines.push(`  journal: ${run.journal}`);
  process.stdout.write(lines.join("\n") + "\n");
}
