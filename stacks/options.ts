import * as fs from "node:fs";
import * as path from "node:path";
import { badInput } from "../lib/errors";
import { defaultSshConfigPath } from "../lib/sshConfig";
import type { ResolvedOptions } from "./context";
import { DEFAULTS } from "./defaults";
import type { UpgradeOptions } from "./upgrade";

/** `UpgradeOptions` with every default filled in (`DEFAULTS`), as the steps read them; `applyPlan` brings the plan's options. */
export function resolveOptions(given: UpgradeOptions): ResolvedOptions {
  const plan = given.applyPlan;
  if (plan && given.stack !== plan.stack) {
    throw badInput("apply the plan", `the plan is for stack ${plan.stack}, not ${given.stack}`, `apply it to ${plan.stack}, or make a plan for ${given.stack}`);
  }
  // apply: the plan's options, no prompt (the plan was the approval); plan: a dry run
  const o: UpgradeOptions = plan
    ? { ...given, ...plan.options, runbook: typeof given.runbook === "object" ? given.runbook : plan.options.runbook, yes: true, dryRun: false, writePlan: undefined }
    : { ...given, dryRun: given.dryRun || given.writePlan !== undefined };
  return {
    stack: o.stack,
    cwd: path.resolve(o.cwd ?? process.cwd()),
    runbook: o.runbook ?? "auto",
    yes: o.yes ?? false,
    dryRun: o.dryRun ?? false,
    message: o.message,
    release: o.release,
    drainTimeoutMs: o.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    pollIntervalMs: o.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    metricPeriodSeconds: o.metricPeriodSeconds ?? DEFAULTS.metricPeriodSeconds,
    bakeTimeMs: o.bakeTimeMs ?? DEFAULTS.bakeTimeMs,
    verifyTimeoutMs: o.verifyTimeoutMs ?? DEFAULTS.verifyTimeoutMs,
    onFailure: o.onFailure ?? "stop",
    restorePoint: o.restorePoint ?? true,
    ssh: {
      user: o.ssh?.user,
      port: o.ssh?.port,
      keyPath: o.ssh?.keyPath,
      host: o.ssh?.host,
      knownHostsPath: o.ssh?.knownHostsPath,
      passphrase: o.ssh?.passphrase,
      configPath:
        o.ssh?.configPath === null ? undefined : o.ssh?.configPath ?? (fs.existsSync(defaultSshConfigPath()) ? defaultSshConfigPath() : undefined),
    },
    servicesPort: o.servicesPort ?? DEFAULTS.servicesPort,
    servicesTimeoutMs: o.servicesTimeoutMs ?? DEFAULTS.servicesTimeoutMs,
    waitDedicated: o.waitDedicated ?? false,
    forceUnlock: o.forceUnlock ?? false,
    repair: o.repair ?? false,
    confirm: o.confirm,
    windows: o.windows ?? [],
    expectedDurationMs: o.expectedDurationMs,
    now: o.now ?? Date.now,
    writePlan: o.writePlan,
    applyPlan: plan,
  };
}

/** process.env with the run's own environment over it (unset values left out). */
export function mergeEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...extra })) if (v !== undefined) merged[k] = v;
  return merged;
}
