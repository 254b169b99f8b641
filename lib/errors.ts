/** Stable exit codes of the CLI; pipelines key on them. */
export enum ExitCode {
  Succeeded = 0,
  StepFailed = 1,
  BadInput = 2,
  Refused = 3,
  /** The update failed verification (or failed after changing things) and was rolled back; the rollback verified. */
  RolledBack = 4,
  /** `upgrade apply`: the approved plan no longer holds (its commit, config, state or operations changed); nothing was done. */
  StalePlan = 5,
  Interrupted = 130,
}

export interface UpgradeErrorDetails {
  /** What was attempted, e.g. "cancel the running computations on i-0abc". */
  what: string;
  /** Why it failed: what came back. */
  why: string;
  /** What the operator can do next. */
  hint?: string;
  exitCode?: ExitCode;
  /** A failure that retrying cannot fix (validation, auth, 4xx, host key mismatch). */
  permanent?: boolean;
  cause?: unknown;
}

/**
 * An error meant for people: what failed, why, and what to do next, with the exit code the CLI
 * ends with. The CLI prints `message` without a stack trace unless --verbose.
 */
export class UpgradeError extends Error {
  readonly what: string;
  readonly why: string;
  readonly hint?: string;
  readonly exitCode: ExitCode;
  readonly permanent: boolean;

  constructor(details: UpgradeErrorDetails) {
    super(formatMessage(details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "UpgradeError";
    this.what = details.what;
    this.why = details.why;
    this.hint = details.hint;
    this.exitCode = details.exitCode ?? ExitCode.StepFailed;
    this.permanent = details.permanent ?? false;
  }
}

function formatMessage({ what, why, hint }: UpgradeErrorDetails): string {
  return `could not ${what}: ${why}${hint ? `\n  hint: ${hint}` : ""}`;
}

export const badInput = (what: string, why: string, hint?: string) =>
  new UpgradeError({ what, why, hint, exitCode: ExitCode.BadInput, permanent: true });

export const refused = (what: string, why: string, hint?: string) =>
  new UpgradeError({ what, why, hint, exitCode: ExitCode.Refused, permanent: true });

/** The message of anything thrown, for people. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
