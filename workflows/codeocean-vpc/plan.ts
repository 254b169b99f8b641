/**
 * Pure decisions of the Code Ocean VPC upgrade (runbook 2): versions, template URLs, the
 * parameters of the update, and whether a change set may run. No I/O: unit-tested.
 */

import { compareParts } from "../../lib/versions";

/**
 * Where Code Ocean publishes its templates (docs.codeocean.com, admin guide): the primary and the
 * least-privileged deployment role side by side in a folder named after the release with its `v`
 * (".../templates/v2.21.5/codeocean-least-privileged-role.template.yaml", "Least privileged
 * deployment IAM role"; codeocean/co-support builds ".../templates/<version>/codeocean.template.yaml"
 * from a version written "v3.4.1"); the backup destination stack in a line of its own with its own
 * versions (".../templates/codeocean-backup/v1.2.1/codeocean-backup.template.yaml", "Backup and
 * restore").
 */
export const TEMPLATE_BUCKET_URL = "https://codeocean-vpc.s3.amazonaws.com/templates";
export const PRIMARY_TEMPLATE = "codeocean.template.yaml";
export const ROLE_TEMPLATE = "codeocean-least-privileged-role.template.yaml";
export const BACKUP_TEMPLATE = "codeocean-backup.template.yaml";
export const TEMPLATE_URL_PATTERN = `${TEMPLATE_BUCKET_URL}/v<version>/${PRIMARY_TEMPLATE}`;
/** Maintenance mode, the runbook's way to stop activity, exists from this version on. */
export const MAINTENANCE_SINCE = "3.1.0";
/** The parameter the runbook warns about: RDS storage may have auto-scaled above it. */
export const STORAGE_PARAMETER = "pRdsAllocatedStorage";
/** The storage auto-scaling ceiling (the template's MinValue is 100). */
export const MAX_STORAGE_PARAMETER = "pRdsMaxAllocatedStorage";
export const DATABASE_RESOURCE = "AnalyticsDBInstance";

/** A version as Code Ocean writes it in its Metadata and bucket folders: `v3.8.2`. */
export function withV(version: string): string {
  return version.trim().replace(/^v?/i, "v");
}

export function templateUrlFor(version: string, file = PRIMARY_TEMPLATE): string {
  return `${TEMPLATE_BUCKET_URL}/${withV(version)}/${file}`;
}

export function roleTemplateUrlFor(version: string): string {
  return templateUrlFor(version, ROLE_TEMPLATE);
}

/** The backup stack's template: its own version line (v1.2.x), not the primary's. */
export function backupTemplateUrlFor(backupVersion: string): string {
  return `${TEMPLATE_BUCKET_URL}/codeocean-backup/${withV(backupVersion)}/${BACKUP_TEMPLATE}`;
}

export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?$/i.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new Error(`not a version: ${!x ? a : b}`);
  return compareParts(x, y);
}

/** The same release however written (`3.8.2`, `v3.8.2`); false for anything that is not a version. */
export function sameVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (!parseVersion(a) || !parseVersion(b)) return a === b;
  return compareVersions(a, b) === 0;
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

/** What RDS reports of the database now. */
export interface LiveDatabase {
  /** AllocatedStorage, GiB. */
  allocated: number;
  /** MaxAllocatedStorage, GiB: the auto-scaling ceiling as set live (the console), absent when auto-scaling is off. */
  maxAllocated?: number;
}

/**
 * RDS refuses a storage auto-scaling ceiling that is not at least 10 % above the allocated storage
 * (RDS User Guide, "Managing capacity automatically with Amazon RDS storage autoscaling").
 */
export function minimumCeiling(allocated: number): number {
  return Math.ceil(allocated * 1.1);
}

/**
 * Parameters of the update: every parameter the new template shares with the stack keeps its
 * previous value, new ones take their defaults (not passed), overrides win. The allocated storage
 * is never set below the database's live value; the auto-scaling ceiling is never below what the
 * operator set live and always valid for the storage passed.
 */
export function planParameters(input: {
  templateParameters: string[];
  stackParameters: Record<string, string>;
  overrides?: Record<string, string>;
  live?: LiveDatabase;
}): ParameterPlan {
  const notes: string[] = [];
  const values: Record<string, string | undefined> = {};
  for (const key of input.templateParameters) {
    if (input.overrides?.[key] !== undefined) values[key] = input.overrides[key];
    else if (key in input.stackParameters) values[key] = undefined; // previous value
  }
  const given = (key: string) => input.overrides?.[key] ?? input.stackParameters[key];
  const live = input.live;
  let storage: number | undefined;
  if (live !== undefined && input.templateParameters.includes(STORAGE_PARAMETER)) {
    const stated = given(STORAGE_PARAMETER);
    const asNumber = stated === undefined ? undefined : Number(stated);
    if (asNumber === undefined || !Number.isFinite(asNumber) || asNumber < live.allocated) {
      values[STORAGE_PARAMETER] = String(live.allocated);
      storage = live.allocated;
      notes.push(`${STORAGE_PARAMETER}: the database has auto-scaled to ${live.allocated} GiB, above the stack's ${stated ?? "(unset)"}; passing ${live.allocated} (a lower value fails the update)`);
    } else {
      storage = asNumber;
      notes.push(`${STORAGE_PARAMETER}: ${asNumber} GiB covers the database's live ${live.allocated} GiB`);
    }
  }
  if (live !== undefined && storage !== undefined && input.templateParameters.includes(MAX_STORAGE_PARAMETER)) {
    const stated = given(MAX_STORAGE_PARAMETER);
    const asNumber = stated === undefined ? Number.NaN : Number(stated);
    const floor = minimumCeiling(storage);
    const ceiling = Math.max(Number.isFinite(asNumber) ? asNumber : 0, live.maxAllocated ?? 0, floor);
    if (ceiling !== asNumber) {
      values[MAX_STORAGE_PARAMETER] = String(ceiling);
      const why =
        live.maxAllocated !== undefined && ceiling === live.maxAllocated
          ? `the database's live ceiling is ${live.maxAllocated} GiB (set outside the stack)`
          : `RDS needs a ceiling at least 10 % above the ${storage} GiB passed (${floor})`;
      notes.push(`${MAX_STORAGE_PARAMETER}: ${why}, the stack's is ${stated ?? "(unset)"}; passing ${ceiling} (never lower than the live ceiling)`);
    } else {
      notes.push(`${MAX_STORAGE_PARAMETER}: ${asNumber} GiB is valid for ${storage} GiB${live.maxAllocated !== undefined ? ` and not below the live ceiling ${live.maxAllocated} GiB` : ""}`);
    }
  }
  const parameters = Object.entries(values).map(([ParameterKey, ParameterValue]) =>
    ParameterValue === undefined ? { ParameterKey, UsePreviousValue: true } : { ParameterKey, ParameterValue },
  );
  const fresh = input.templateParameters.filter((k) => !(k in input.stackParameters) && input.overrides?.[k] === undefined);
  if (fresh.length > 0) notes.push(`new parameters take their defaults: ${fresh.join(", ")}`);
  return { parameters, notes };
}
