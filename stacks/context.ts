import type { EngineEvent, OutputMap, PreviewResult, Stack } from "@pulumi/pulumi/automation";
import type { CodeOceanOptions, UpgradeOptions, UpgradeSshOptions } from "./options";
import type { AwsClients } from "../lib/aws";
import type { EventSink, StepRecord } from "../lib/events";
import type { Redactor } from "../lib/redaction";
import type { Step } from "../lib/steps";
import type { BackendStore } from "./backend";
import type { Journal, RunState } from "./journal";
import type { RunLock } from "./lock";
import type { StackState } from "./stackState";
import type { ExpectedDuration, WindowOccurrence } from "./windows";
import type { PlannedOperation } from "./plan";

/** Everything the steps of one run share. Steps fill in what later steps read. */
export interface RunContext {
  runId: string;
  options: ResolvedOptions;
  emit: EventSink;
  redactor: Redactor;
  signal?: AbortSignal;
  /** Environment for Pulumi commands and AWS clients (process env + options.env). */
  env: Record<string, string>;
  aws: () => AwsClients;
  /** Where the Pulumi CLI of the run is (select-stack). */
  pulumiBinDir?: string;
  stack?: Stack;
  /** The stack's checkpoint as select-stack read it (read again after a repair). */
  state?: StackState;
  outputs?: OutputMap;
  runbook?: Runbook;
  /** Code Ocean: what read-outputs found. */
  deployment?: CodeOceanTargets;
  /** When the cancel request was sent; idle means a zero datapoint newer than this. */
  cancelRequestedAt?: Date;
  /** Alarm names whose actions this run disabled (also tagged on the alarms themselves). */
  suspendedAlarms: string[];
  /** The previous run of this stack when it did not finish (crashed, killed), from the local journal. */
  resumeFrom?: RunState;
  lock?: RunLock;
  /** The stack's Pulumi backend (set by lock-stack); `store` is absent for Pulumi Cloud and other backends. */
  backend?: { url: string; project: string; store?: BackendStore };
  journal?: Journal;
  /** Set by plan-update: the stack already matches the code, so nothing needs draining or applying. */
  upToDate?: boolean;
  /** plan-update's preview: the plan shown and confirmed at the preview step unless its inputs changed. */
  preview?: PreviewResult;
  /** The engine events of plan-update's preview, replayed at the preview step. */
  planEvents?: EngineEvent[];
  /** plan-update's preview as operations per resource (what a plan records and `apply` compares). */
  plannedOperations?: PlannedOperation[];
  /** What plan-update's preview depended on (checkout, config files), to know whether it still holds. */
  planInputs?: string;
  changes?: Record<string, number>;
  /** The changes the operator confirmed at confirm-plan (or --yes accepted), to know whether the plan changed since. */
  confirmedChanges?: Record<string, number>;
  /** The tag (or short commit) the project was at before checkout-release moved it, in this run. */
  checkedOutFrom?: string;
  /** Set when verify-deployment (or `up`) failed after the update changed things: what failed. */
  failedAfterUp?: string;
  /** This run finishes the rollback an interrupted run started (to `to`), instead of upgrading again. */
  resumedRollback?: { to: string; runId: string };
  /** --on-failure rollback: what the run rolled back to, and whether that verified. */
  rolledBack?: { to: string; verified: boolean };
  /** restore-point: the snapshots taken before `up` (their state as last read). */
  restorePoints?: RestorePoint[];
  /** check-window: the maintenance window the run is in (the drain ends no later than its end). */
  window?: WindowOccurrence;
  /** What check-window expected the run to take (null: no figure, undefined: not checked). */
  windowExpected?: ExpectedDuration | null;
  /** What the runbook's steps before `up` disrupt, as confirm-plan showed it (a plan records it). */
  disruption?: string[];
  /** The records of the steps so far (the decline at the second confirmation says what was already done). */
  records?: StepRecord[];
}

/** A snapshot of a data volume taken before `up`, to restore the data from. */
export interface RestorePoint {
  snapshotId: string;
  volumeId: string;
  availabilityZone: string;
  /** EBS snapshot state: pending, completed, error. */
  state: string;
  progress?: string;
  /** How to restore the volume from it, for people. */
  restore: string;
}

export interface CodeOceanTargets {
  servicesInstanceId: string;
  /** Worker ASGs with the output that named each. */
  workerAsgs: Array<{ name: string; output: string }>;
  /** The services instance's `deployment` tag, once read (null: it has none). */
  deploymentName?: string | null;
}

/**
 * A runbook for an external project: steps around `pulumi up`. The shipped ones are registered in
 * `stacks/runbooks/index.ts`; a user's is passed as `upgrade({ runbook })` or `--runbook ./file.js`
 * (a module exporting it as `default` or `runbook`). Its steps see the run's context: the stack
 * (`ctx.stack`), its outputs (`ctx.outputs`), `ctx.emit` for notes and progress, `ctx.options`.
 */
export interface Runbook {
  name: string;
  /** For `--runbook auto` (the default): whether a stack with these outputs is one this runbook upgrades. */
  detect?: (outputs: OutputMap) => boolean;
  /**
   * Once chosen, at read-outputs (a dry run too): read what the steps act on and refuse bad input
   * before anything changes. Returns the step's note.
   */
  prepare?: (ctx: RunContext) => Promise<string | undefined>;
  /** Run `pulumi config refresh -f` first: the stack's config is the one of its last deployment. */
  refreshConfig?: boolean;
  /**
   * What the steps before `up` will disrupt, one line each, read from the world (running
   * computations, protected instances, alarms): shown and confirmed before any of them runs.
   */
  disruption?: (ctx: RunContext) => Promise<string[]>;
  beforeUp: Array<Step<RunContext>>;
  afterUp: Array<Step<RunContext>>;
}

/** What the operator is asked to confirm (`UpgradeOptions.confirm`). */
export interface ConfirmRequest {
  /** The preview's counts per operation. */
  changes: Record<string, number>;
  /** The question's text for people: what will be disrupted, what `up` will change (several lines). */
  text: string;
  /** true: asked a second time, after the drain, because the plan changed since it was confirmed. */
  again: boolean;
}

/** How the services machine is reached: flags (and API options) win over the operator's SSH config, which wins over the defaults. */
export type SshSettings = Omit<UpgradeSshOptions, "configPath"> & {
  /** The OpenSSH client config read for the target; undefined: none. */
  configPath?: string;
};

/**
 * `UpgradeOptions` as the steps read them, every default filled in (options.ts, `resolveOptions`):
 * derived from the options' own types, so a new option is declared once.
 */
export type ResolvedOptions = Required<Pick<UpgradeOptions, "stack" | "cwd" | "runbook" | "yes" | "dryRun" | "onFailure" | "forceUnlock" | "repair" | "windows" | "now">> &
  Pick<UpgradeOptions, "message" | "release" | "confirm" | "expectedDurationMs" | "writePlan" | "applyPlan"> & {
    codeOcean: Required<Omit<CodeOceanOptions, "ssh">> & { ssh: SshSettings };
  };
