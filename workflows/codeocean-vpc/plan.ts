/**
 * Pure decisions of the Code Ocean VPC upgrade (runbook 2): versions, template URLs, the
 * parameters of the update, and whether a change set may run. No I/O: unit-tested.
 */

/** The public bucket Code Ocean publishes its templates in. */
export const TEMPLATE_URL_PATTERN = "https://codeocean-vpc.s3.amazonaws.com/templates/<version>/codeocean.template.yaml";
/** Maintenance mode, the runbook's way to stop activity, exists from this version on. */
export const MAINTENANCE_SINCE = "3.1.0";
/** The parameter the runbook warns about: RDS storage may have auto-scaled above it. */
export const STORAGE_PARAMETER = "pRdsAllocatedStorage";
export const DATABASE_RESOURCE = "AnalyticsDBInstance";

export function templateUrlFor(version: string, pattern = TEMPLATE_URL_PATTERN): string {
  return pattern.replace("<version>", version);
}

export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new Error(`not a version: ${!x ? a : b}`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** The version in a template's Metadata → CodeOcean::VersionInfo → Version (GetTemplateSummary's Metadata is JSON text). */
export function versionOfMetadata(metadata: string | undefined): string | undefined {
  if (!metadata) return undefined;
  try {
    const parsed = JSON.parse(metadata) as Record<string, { Version?: unknown } | undefined>;
    const version = parsed?.["CodeOcean::VersionInfo"]?.Version;
    return version === undefined || version === null ? undefined : String(version);
  } catch {
    return undefined;
  }
}

export type VersionVerdict = { ok: true; note?: string } | { ok: false; why: string; hint: string };

/** May the deployment at `current` be upgraded to `target` by this workflow? */
export function judgeVersions(current: string, target: string): VersionVerdict {
  if (compareVersions(current, MAINTENANCE_SINCE) < 0 || compareVersions(target, MAINTENANCE_SINCE) < 0) {
    const low = compareVersions(current, MAINTENANCE_SINCE) < 0 ? current : target;
    return {
      ok: false,
      why: `Code Ocean ${low} has no maintenance mode (it exists from ${MAINTENANCE_SINCE})`,
      hint: "stop running computations and AWS Batch jobs and scale the worker groups to zero by hand, then update the stack in the CloudFormation console",
    };
  }
  const order = compareVersions(target, current);
  if (order < 0) {
    return { ok: false, why: `${current} → ${target} is a downgrade`, hint: `CloudFormation templates only move forward; set version to ${current} or later` };
  }
  return order === 0 ? { ok: true, note: `already at ${current}` } : { ok: true };
}

/** Stack states an update can start from (ROLLBACK_COMPLETE is a failed create: it can only be deleted). */
export function updatableStatus(status: string): boolean {
  return status !== "ROLLBACK_COMPLETE" && /_COMPLETE$/.test(status) && !/^DELETE_/.test(status) && status !== "REVIEW_IN_PROGRESS";
}

/** An update of ours may be running (after a crash): follow it instead of starting another. */
export function updateRunning(status: string): boolean {
  return /^UPDATE_(IN_PROGRESS|COMPLETE_CLEANUP_IN_PROGRESS|ROLLBACK_IN_PROGRESS|ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS)$/.test(status);
}

export function statusHint(status: string, stackName: string): string {
  if (status === "UPDATE_ROLLBACK_FAILED") return `continue the rollback first: aws cloudformation continue-update-rollback --stack-name ${stackName} (skip resources only after fixing them), then run again`;
  if (status === "ROLLBACK_COMPLETE") return `the stack's creation failed and it can only be deleted and created again; it cannot be updated`;
  return `wait until the stack is in a *_COMPLETE state, then run again`;
}

export interface ParameterPlan {
  /** For CreateChangeSet: explicit values or UsePreviousValue. */
  parameters: Array<{ ParameterKey: string; ParameterValue?: string; UsePreviousValue?: boolean }>;
  notes: string[];
}

/**
 * Parameters of the update: every parameter the new template shares with the stack keeps its
 * previous value, new ones take their defaults (not passed), overrides win; the allocated storage
 * is never set below the database's live value.
 */
export function planParameters(input: {
  templateParameters: string[];
  stackParameters: Record<string, string>;
  overrides?: Record<string, string>;
  liveAllocatedStorage?: number;
}): ParameterPlan {
  const notes: string[] = [];
  const values: Record<string, string | undefined> = {};
  for (const key of input.templateParameters) {
    if (input.overrides?.[key] !== undefined) values[key] = input.overrides[key];
    else if (key in input.stackParameters) values[key] = undefined; // previous value
  }
  const live = input.liveAllocatedStorage;
  if (live !== undefined && input.templateParameters.includes(STORAGE_PARAMETER)) {
    const given = input.overrides?.[STORAGE_PARAMETER] ?? input.stackParameters[STORAGE_PARAMETER];
    const asNumber = given === undefined ? undefined : Number(given);
    if (asNumber === undefined || !Number.isFinite(asNumber) || asNumber < live) {
      values[STORAGE_PARAMETER] = String(live);
      notes.push(`${STORAGE_PARAMETER}: the database has auto-scaled to ${live} GiB, above the stack's ${given ?? "(unset)"}; passing ${live} (a lower value fails the update)`);
    } else {
      notes.push(`${STORAGE_PARAMETER}: ${asNumber} GiB covers the database's live ${live} GiB`);
    }
  }
  const parameters = Object.entries(values).map(([ParameterKey, ParameterValue]) =>
    ParameterValue === undefined ? { ParameterKey, UsePreviousValue: true } : { ParameterKey, ParameterValue },
  );
  const fresh = input.templateParameters.filter((k) => !(k in input.stackParameters) && input.overrides?.[k] === undefined);
  if (fresh.length > 0) notes.push(`new parameters take their defaults: ${fresh.join(", ")}`);
  return { parameters, notes };
}

/** Resource types that hold data: replacing or removing one loses it. */
export const DATA_BEARING_TYPES = new Set([
  "AWS::RDS::DBInstance",
  "AWS::RDS::DBCluster",
  "AWS::S3::Bucket",
  "AWS::EFS::FileSystem",
  "AWS::FSx::FileSystem",
  "AWS::EC2::Volume",
  "AWS::KMS::Key",
  "AWS::Backup::BackupVault",
  "AWS::DynamoDB::Table",
]);

export interface ResourceChange {
  action: string;
  logicalId: string;
  type: string;
  replacement?: string;
}

/** The changes of a change set that would destroy data: a data-bearing resource replaced (True or Conditional) or removed. */
export function destructiveChanges(changes: ResourceChange[]): ResourceChange[] {
  return changes.filter(
    (c) => DATA_BEARING_TYPES.has(c.type) && (c.action === "Remove" || (c.action === "Modify" && (c.replacement === "True" || c.replacement === "Conditional"))),
  );
}

export function describeChange(c: ResourceChange): string {
  const replace = c.action === "Modify" && c.replacement && c.replacement !== "False" ? ` (replacement: ${c.replacement})` : "";
  return `${c.action} ${c.logicalId} ${c.type}${replace}`;
}
