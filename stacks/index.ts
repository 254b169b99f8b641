/**
 * The programmatic API of upgrade-orchestrator (package entry "."): the same driver the CLI runs.
 *
 * ```ts
 * import { upgrade, ExitCode } from "upgrade-orchestrator";
 * const result = await upgrade({ stack: "prod", cwd: "../private-cloud", yes: true, onEvent: (e) => console.log(e.type) });
 * if (result.exitCode !== ExitCode.Succeeded) throw new Error(result.error?.message);
 * ```
 *
 * `runbook` names a shipped runbook, or is your own: a `Runbook` object (`upgrade({ runbook })`) or
 * a module exporting one (`--runbook ./my-runbook.js`), its steps run around `pulumi up` with the
 * same lock, journal, events and dry run as the shipped ones. Workflow resources for other Pulumi
 * projects are in the entry "upgrade-orchestrator/workflows".
 * @packageDocumentation
 */
export { upgrade, DEFAULTS } from "./upgrade";
export type { CodeOceanOptions, ConfirmRequest, UpgradeOptions, UpgradeResult, UpgradeSshOptions, RunbookName } from "./upgrade";
/** Your own runbook: its type, the context its steps receive, and a step. */
export type { Runbook, RunContext } from "./context";
export type { Step } from "../lib/steps";
export type {
  UpgradeEvent,
  EventSink,
  StepRecord,
  StepStatus,
  RunStartEvent,
  StepStartEvent,
  StepEndEvent,
  ProgressEvent,
  NoteEvent,
  EngineStreamEvent,
  SuspendEvent,
  RestoreEvent,
  SummaryEvent,
  ErrorEvent,
} from "../lib/events";
export { ExitCode, UpgradeError } from "../lib/errors";
export type { UpgradeErrorDetails } from "../lib/errors";
/** Reviewed plans (`UpgradeOptions.writePlan`, `applyPlan`): read a plan file, its type. */
export { readPlanFile, PLAN_FORMAT } from "./plan";
export type { UpgradePlan, PlannedOperation, PlanDependencies, PlannedOptions } from "./plan";
/** Maintenance windows (`UpgradeOptions.windows`): validate a spec, or ask whether one is open now. */
export { parseWindow, parseWindows, windowAt, nextWindow } from "./windows";
export type { MaintenanceWindow, WindowOccurrence } from "./windows";
