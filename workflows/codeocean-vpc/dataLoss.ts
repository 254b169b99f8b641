import { parseDocument } from "yaml";

/**
 * The data-loss review of a change set (runbook 2), pure: which replacements and removals would
 * destroy data, and which modifications would shrink a size that has grown live. A resource holds
 * data when its type is on the list below, or when the template itself marks it `DeletionPolicy`
 * or `UpdateReplacePolicy` `Retain` or `Snapshot` (its author's word, for types on no list).
 */

/** Resource types that hold data or guard access to it, each with what a replacement or removal loses. */
export const DATA_BEARING_TYPES: Readonly<Record<string, string>> = {
  "AWS::RDS::DBInstance": "a database: its rows go with it",
  "AWS::RDS::DBCluster": "a database cluster: its rows go with it",
  "AWS::DocDB::DBCluster": "a DocumentDB cluster: its documents go with it",
  "AWS::Neptune::DBCluster": "a Neptune cluster: its graph goes with it",
  "AWS::Redshift::Cluster": "a Redshift cluster: its tables go with it",
  "AWS::RedshiftServerless::Namespace": "a Redshift namespace: its tables go with it",
  "AWS::DynamoDB::Table": "a DynamoDB table: its items go with it",
  "AWS::DynamoDB::GlobalTable": "a DynamoDB table: its items go with it",
  "AWS::ElastiCache::ReplicationGroup": "a Redis/Valkey replication group: its keys go with it",
  "AWS::ElastiCache::CacheCluster": "a cache cluster: its keys go with it",
  "AWS::ElastiCache::ServerlessCache": "a serverless cache: its keys go with it",
  "AWS::MemoryDB::Cluster": "a MemoryDB cluster: its keys go with it",
  "AWS::OpenSearchService::Domain": "a search domain: its indices go with it",
  "AWS::Elasticsearch::Domain": "a search domain: its indices go with it",
  "AWS::S3::Bucket": "a bucket: its objects go with it",
  "AWS::EFS::FileSystem": "a file system: its files go with it",
  "AWS::FSx::FileSystem": "a file system: its files go with it",
  "AWS::EC2::Volume": "an EBS volume: its blocks go with it",
  "AWS::ECR::Repository": "an image repository: its images go with it",
  "AWS::Logs::LogGroup": "a log group: its log events go with it",
  "AWS::Kinesis::Stream": "a stream: its unread records go with it",
  "AWS::SQS::Queue": "a queue: its messages go with it",
  "AWS::SecretsManager::Secret": "a secret: a new one has a new value, rotating the credential out from under the database or cache that uses it",
  "AWS::KMS::Key": "a KMS key: what it encrypted can no longer be decrypted",
  "AWS::Backup::BackupVault": "a backup vault: its recovery points go with it",
};

const KEEPING_POLICIES = ["Retain", "RetainExceptOnCreate", "Snapshot"];

export interface TemplateResource {
  type: string;
  deletionPolicy?: string;
  updateReplacePolicy?: string;
  properties: Record<string, unknown>;
}

/**
 * The Resources of a CloudFormation template (YAML or JSON). Short-form intrinsics (`!Ref`, `!Sub`)
 * keep their values, not their meaning: enough for types, policies and literal sizes.
 */
export function templateResources(body: string): Record<string, TemplateResource> {
  const doc = parseDocument(body, { logLevel: "silent", uniqueKeys: false });
  if (doc.errors.length > 0) throw new Error(`the template is not valid YAML/JSON: ${doc.errors[0]!.message.split("\n")[0]}`);
  const parsed = doc.toJS({ maxAliasCount: -1 }) as { Resources?: Record<string, Record<string, unknown>> } | null;
  const out: Record<string, TemplateResource> = {};
  for (const [id, r] of Object.entries(parsed?.Resources ?? {})) {
    if (!r || typeof r !== "object") continue;
    out[id] = {
      type: String(r.Type ?? "?"),
      deletionPolicy: typeof r.DeletionPolicy === "string" ? r.DeletionPolicy : undefined,
      updateReplacePolicy: typeof r.UpdateReplacePolicy === "string" ? r.UpdateReplacePolicy : undefined,
      properties: (r.Properties && typeof r.Properties === "object" ? r.Properties : {}) as Record<string, unknown>,
    };
  }
  return out;
}

export interface ResourceChange {
  action: string;
  logicalId: string;
  type: string;
  replacement?: string;
}

export interface Destructive extends ResourceChange {
  why: string;
}

/** Why the resource holds data, by its type or by its template's policies (old or new); undefined: it holds none. */
export function dataReason(type: string, ...declared: Array<TemplateResource | undefined>): string | undefined {
  const byType = DATA_BEARING_TYPES[type];
  if (byType) return byType;
  for (const r of declared) {
    for (const [name, value] of [["DeletionPolicy", r?.deletionPolicy], ["UpdateReplacePolicy", r?.updateReplacePolicy]] as const) {
      if (value && KEEPING_POLICIES.includes(value)) return `the template marks it ${name}: ${value} (its author keeps its data)`;
    }
  }
  return undefined;
}

const replaces = (c: ResourceChange) => c.action === "Modify" && (c.replacement === "True" || c.replacement === "Conditional");

/**
 * The changes of a change set that would destroy data: a data-bearing resource replaced (True or
 * Conditional) or removed. `before` is the stack's template, `after` the change set's.
 */
export function destructiveChanges(
  changes: ResourceChange[],
  before: Record<string, TemplateResource> = {},
  after: Record<string, TemplateResource> = {},
): Destructive[] {
  return changes.flatMap((c) => {
    if (c.action !== "Remove" && !replaces(c)) return [];
    const why = dataReason(c.type, before[c.logicalId], after[c.logicalId]);
    return why ? [{ ...c, why }] : [];
  });
}

export function describeChange(c: ResourceChange): string {
  const replace = c.action === "Modify" && c.replacement && c.replacement !== "False" ? ` (replacement: ${c.replacement})` : "";
  return `${c.action} ${c.logicalId} ${c.type}${replace}`;
}

export const describeDestructive = (c: Destructive) => `${describeChange(c)}: ${c.why}`;

/** Sizes a template fixes and someone may grow by hand; the live size is read per type. */
export const SIZED_PROPERTIES: Readonly<Record<string, { path: string[]; unit: string }>> = {
  "AWS::EC2::Volume": { path: ["Size"], unit: "GiB" },
  "AWS::OpenSearchService::Domain": { path: ["EBSOptions", "VolumeSize"], unit: "GiB" },
  "AWS::Elasticsearch::Domain": { path: ["EBSOptions", "VolumeSize"], unit: "GiB" },
};

/** The size the template sets for a resource: a literal, or a Ref to a parameter whose value is known. */
export function templateSize(resource: TemplateResource, parameters: Record<string, string> = {}): number | undefined {
  const spec = SIZED_PROPERTIES[resource.type];
  if (!spec) return undefined;
  let value: unknown = resource.properties;
  for (const key of spec.path) value = value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
  if (value && typeof value === "object" && "Ref" in value) value = parameters[String((value as { Ref: unknown }).Ref)];
  else if (typeof value === "string" && value in parameters) value = parameters[value]; // `!Ref p` read as its name
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : undefined;
  return n;
}

export interface Shrink {
  logicalId: string;
  type: string;
  physicalId: string;
  live: number;
  template: number;
  unit: string;
}

/** The modified resources whose template size is below the live one: CloudFormation would try to shrink them (EBS and OpenSearch refuse, and the update fails mid-way). */
export function shrinkingChanges(
  changes: ResourceChange[],
  after: Record<string, TemplateResource>,
  live: Record<string, { physicalId: string; size: number }>,
  parameters: Record<string, string> = {},
): Shrink[] {
  return changes.flatMap((c) => {
    const resource = after[c.logicalId];
    const now = live[c.logicalId];
    if (c.action !== "Modify" || !resource || !now) return [];
    const size = templateSize(resource, parameters);
    return size !== undefined && size < now.size ? [{ logicalId: c.logicalId, type: resource.type, physicalId: now.physicalId, live: now.size, template: size, unit: SIZED_PROPERTIES[resource.type]!.unit }] : [];
  });
}

export const describeShrink = (s: Shrink) => `${s.logicalId} ${s.type} (${s.physicalId}) is ${s.live} ${s.unit} live, the template sets ${s.template} ${s.unit}`;
