import * as fs from "node:fs";
import * as path from "node:path";
import { badInput } from "../lib/errors";
import { defaultSshConfigPath } from "../lib/sshConfig";
import type { ConfirmRequest, ResolvedOptions, Runbook } from "./context";
import type { EventSink } from "../lib/events";
import type { UpgradePlan } from "./plan";
import { DEFAULTS } from "./defaults";

/**
 * Which runbook: `auto` (config `upgrade:runbook`, else the shipped runbook whose `detect` accepts
 * the outputs), a shipped one by name, `none`, or a module path (`./my-runbook.js`).
 */
export type RunbookName = "auto" | "codeocean-private-cloud" | "none" | (string & {});

/** How the driver reaches the services machine over SSH (Code Ocean runbook). */
export interface UpgradeSshOptions {
  /** Default `ec2-user`. */
  user?: string;
  /** A private key file; default: the keys of ssh-agent. */
  keyPath?: string;
  /** Default 22. */
  port?: number;
  /** Default: the services instance's private IP from EC2. */
  host?: string;
  /** known_hosts for strict host-key checking (default ~/.ssh/known_hosts); no trust on first use. */
  knownHostsPath?: string;
  /** The key's passphrase; never logged, redacted from every event. */
  passphrase?: string;
  /** The operator's OpenSSH client config (default ~/.ssh/config when it exists; null: none). */
  configPath?: string | null;
}

/** The options of runbook 1, Code Ocean private cloud (`UpgradeOptions.codeOcean`); each has a default (`DEFAULTS`). */
export interface CodeOceanOptions {
  /** Deadline for the workers to become idle (default 30 min). */
  drainTimeoutMs?: number;
  /** Interval between SlotsUtilization polls (default 15 s). */
  pollIntervalMs?: number;
  /** CloudWatch period for SlotsUtilization (default 60 s, as the deployment's own alarm). */
  metricPeriodSeconds?: number;
  /** After `up`, how long the deployment must stay healthy, its alarms out of ALARM (default 5 min). */
  bakeTimeMs?: number;
  /** After `up`, how long to wait for the deployment to become healthy before the bake (default 10 min). */
  verifyTimeoutMs?: number;
  /**
   * Before `up`, once the workers are idle: snapshot the services machine's data volumes (EBS;
   * the `ebsVolumeId` output and volumes of the services instance tagged `deployment`). A snapshot
   * that cannot be started stops the run before `up` (exit 3). Default true.
   */
  restorePoint?: boolean;
  /**
   * How to reach the services machine; the fields win over the operator's OpenSSH client config
   * (`configPath`).
   */
  ssh?: UpgradeSshOptions;
  /** Port of the Code Ocean services API on the services machine (default 8300). */
  servicesPort?: number;
  /** Deadline of one cancel request (default 20 s); a request that hangs is retried. */
  servicesTimeoutMs?: number;
  /** Also wait until no dedicated worker (an instance outside the ASGs, tag role=dedicated-worker) runs; default: report them only. */
  waitDedicated?: boolean;
}

/** Options of one upgrade run; every field but `stack` has a default. The driver's are here, a runbook's own under its key (`codeOcean`). */
export interface UpgradeOptions {
  /** The Pulumi stack to upgrade (required). */
  stack: string;
  /** The Pulumi project directory (default: the current directory). */
  cwd?: string;
  /** Which runbook runs around `up` (default "auto"): a name, a module path, or your own `Runbook` object (see `Runbook`). */
  runbook?: RunbookName | Runbook;
  /** Apply without asking at the preview. Without it, `confirm` is asked. */
  yes?: boolean;
  /** Read everything, change nothing: say what each step would do, and the Pulumi preview. */
  dryRun?: boolean;
  /** Message recorded with the Pulumi update. */
  message?: string;
  /** A git tag of the project to check out (then `npm ci`) before the update. */
  release?: string;
  /**
   * When verification (or `up`) fails after changes were applied: `rollback` deploys the release
   * checked out before this run (`release` must be given, so checkout-release records it), verifies
   * again, and ends with exit 4 when that verified; `stop` (default) leaves the new release in place.
   */
  onFailure?: "stop" | "rollback";
  /** The Code Ocean private-cloud runbook's own options (drain, restore point, SSH to the services machine, verification). */
  codeOcean?: CodeOceanOptions;
  /** Extra environment for Pulumi and AWS (backend URL, passphrase, AWS endpoint...); default process.env. */
  env?: Record<string, string | undefined>;
  /** Receives every event of the run, in order (already redacted). */
  onEvent?: EventSink;
  /**
   * Asked right after plan-update, before the runbook disrupts anything (cancel, unprotect, alarms),
   * unless `yes` or `dryRun`; asked again after the drain only when the plan changed since (`again`).
   * false refuses the update (exit 3). Without it and without `yes`, the update is refused.
   */
  confirm?: (plan: ConfirmRequest) => Promise<boolean>;
  /** Aborting stops after the current step (a running `up` is cancelled), restores, exits 130. */
  signal?: AbortSignal;
  /** Where to write the Markdown run report; $GITHUB_STEP_SUMMARY is appended to when set. */
  reportPath?: string;
  /** Take over a run lock whose holder is gone (reported as stale). */
  forceUnlock?: boolean;
  /** Clear what an interrupted `up` left behind (Pulumi's lock, pending operations); see `repair-interrupted-update`. */
  repair?: boolean;
  /**
   * Maintenance windows, e.g. `"Sat 02:00-06:00 Europe/Berlin"` (days, a time range that may cross
   * midnight, an IANA time zone; stacks/windows.ts). With any, the run is refused (exit 3) before
   * anything disruptive when it is outside all of them, or when its expected duration would overrun
   * the end of the one it is in; the drain before `up` ends no later than that end (then the run
   * stops before `up`, exit 3, and restores what it suspended). A bad spec is bad input (exit 2).
   */
  windows?: string[];
  /**
   * How long the disruptive part of the run (first disruptive step → alarms restored) is expected
   * to take; default: the longest of the stack's three most recent successful updates in the
   * journal. Without either, only "inside a window" is checked.
   */
  expectedDurationMs?: number;
  /** The clock (epoch ms) the window checks read; default Date.now. For tests. */
  now?: () => number;
  /**
   * `upgrade plan`: read everything as a dry run does (refreshing the stack config, as the update
   * would), and write the plan there as JSON (`.md` beside it for review). See `applyPlan`.
   */
  writePlan?: string;
  /**
   * `upgrade apply`: run exactly this approved plan (from `readPlanFile`): its options, no prompt.
   * Before anything disruptive the run re-reads what the plan depends on (commit, lockfile, config,
   * the stack's last update, versions) and previews again; any difference refuses it (exit 5).
   * A plan of another stack than `stack` is bad input: `upgrade()` rejects with an UpgradeError (exit 2).
   */
  applyPlan?: UpgradePlan;
  /** Webhooks told when the run starts, succeeds or fails (JSON POST, Slack-compatible `text`); never fail the run. */
  notify?: string[];
  /** Deadline of one webhook POST (default 5 s) and the first backoff between attempts (default 500 ms). */
  notifyTimeoutMs?: number;
  notifyBackoffMs?: number;
}

/** `UpgradeOptions` with every default filled in (`DEFAULTS`), as the steps read them; `applyPlan` brings the plan's options. */
export function resolveOptions(given: UpgradeOptions): ResolvedOptions {
  const plan = given.applyPlan;
  if (plan && given.stack !== plan.stack) {
    throw badInput("apply the plan", `the plan is for stack ${plan.stack}, not ${given.stack}`, `apply it to ${plan.stack}, or make a plan for ${given.stack}`);
  }
  // apply: the plan's options, no prompt (the plan was the approval); plan: a dry run
  const o: UpgradeOptions = plan
    ? {
        ...given,
        ...plan.options,
        codeOcean: { ...given.codeOcean, ...plan.options.codeOcean },
        runbook: typeof given.runbook === "object" ? given.runbook : plan.options.runbook,
        yes: true,
        dryRun: false,
        writePlan: undefined,
      }
    : { ...given, dryRun: given.dryRun || given.writePlan !== undefined };
  return {
    stack: o.stack,
    cwd: path.resolve(o.cwd ?? process.cwd()),
    runbook: o.runbook ?? "auto",
    yes: o.yes ?? false,
    dryRun: o.dryRun ?? false,
    message: o.message,
    release: o.release,
    onFailure: o.onFailure ?? "stop",
    codeOcean: resolveCodeOcean(o.codeOcean ?? {}),
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

function resolveCodeOcean(c: CodeOceanOptions): ResolvedOptions["codeOcean"] {
  const ssh = c.ssh ?? {};
  return {
    drainTimeoutMs: c.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    pollIntervalMs: c.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    metricPeriodSeconds: c.metricPeriodSeconds ?? DEFAULTS.metricPeriodSeconds,
    bakeTimeMs: c.bakeTimeMs ?? DEFAULTS.bakeTimeMs,
    verifyTimeoutMs: c.verifyTimeoutMs ?? DEFAULTS.verifyTimeoutMs,
    restorePoint: c.restorePoint ?? true,
    ssh: {
      ...ssh,
      configPath: ssh.configPath === null ? undefined : (ssh.configPath ?? (fs.existsSync(defaultSshConfigPath()) ? defaultSshConfigPath() : undefined)),
    },
    servicesPort: c.servicesPort ?? DEFAULTS.servicesPort,
    servicesTimeoutMs: c.servicesTimeoutMs ?? DEFAULTS.servicesTimeoutMs,
    waitDedicated: c.waitDedicated ?? false,
  };
}

/** process.env with the run's own environment over it (unset values left out). */
export function mergeEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...extra })) if (v !== undefined) merged[k] = v;
  return merged;
}
