/** The public API of upgrade-orchestrator (package entry "."). */
export { ExitCode, UpgradeError } from "../lib/errors";
export type { UpgradeErrorDetails } from "../lib/errors";
