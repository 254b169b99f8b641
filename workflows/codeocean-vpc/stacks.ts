import {
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  GetTemplateSummaryCommand,
  paginateListStackResources,
  type CloudFormationClient,
  type StackEvent,
} from "@aws-sdk/client-cloudformation";
import { DescribeDBInstancesCommand, type RDSClient } from "@aws-sdk/client-rds";
import { awsCall, isTransientAwsError } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import { pollUntil } from "../../lib/wait";
import { DATABASE_RESOURCE, statusHint, TEMPLATE_URL_PATTERN, updatableStatus, updateRunning, versionOfMetadata, type LiveDatabase } from "./plan";

/** The CloudFormation and RDS work of runbook 2: read stacks, templates and the database, follow an update (change sets: changeSet.ts). */
export interface LiveStack {
  name: string;
  stackId: string;
  status: string;
  parameters: Record<string, string>;
  /** From the template's CodeOcean::VersionInfo metadata (absent in the role/backup templates). */
  version?: string;
}

export interface TemplateSummary {
  url: string;
  version?: string;
  parameters: string[];
  capabilities: string[];
}

export type Say = (message: string) => Promise<void>;

export async function readStack(cf: CloudFormationClient, name: string): Promise<LiveStack> {
  let stack;
  try {
    stack = (await cf.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
  } catch (err) {
    if (/does not exist/.test((err as Error).message ?? "")) {
      throw new UpgradeError({
        what: `read the CloudFormation stack ${name}`,
        why: `no stack named ${name} in this account and region`,
        hint: "check stackName and region (and the credentials' account)",
        exitCode: 2,
        permanent: true,
      });
    }
    return awsCall(`read the CloudFormation stack ${name}`, () => Promise.reject(err));
  }
  if (!stack?.StackId || !stack.StackStatus) throw new UpgradeError({ what: `read the CloudFormation stack ${name}`, why: "DescribeStacks returned no stack", permanent: true });
  const parameters = Object.fromEntries((stack.Parameters ?? []).map((p) => [p.ParameterKey!, p.ParameterValue ?? ""]));
  let version: string | undefined;
  if (!/^REVIEW_IN_PROGRESS$/.test(stack.StackStatus)) {
    const summary = await awsCall(`read the template of stack ${name}`, () => cf.send(new GetTemplateSummaryCommand({ StackName: name })));
    version = versionOfMetadata(summary.Metadata);
  }
  return { name, stackId: stack.StackId, status: stack.StackStatus, parameters, version };
}

export async function readTemplate(cf: CloudFormationClient, url: string): Promise<TemplateSummary> {
  try {
    const summary = await cf.send(new GetTemplateSummaryCommand({ TemplateURL: url }));
    return {
      url,
      version: versionOfMetadata(summary.Metadata),
      parameters: (summary.Parameters ?? []).map((p) => p.ParameterKey!),
      capabilities: summary.Capabilities ?? [],
    };
  } catch (err) {
    const e = err as Error & { $metadata?: { attempts?: number } };
    throw new UpgradeError({
      what: `read the template ${url}`,
      why: `${e.name}: ${e.message}`,
      hint: `check that the template URL exists (is the version published? for a version, the URL pattern is ${TEMPLATE_URL_PATTERN})`,
      exitCode: 2,
      permanent: !isTransientAwsError(err),
      cause: err,
    });
  }
}

/** The stack must be updatable now (or running an update we may follow). */
export function requireUpdatable(stack: LiveStack): void {
  if (updatableStatus(stack.status) || updateRunning(stack.status)) return;
  throw refused(`update the CloudFormation stack ${stack.name}`, `the stack is in ${stack.status}`, statusHint(stack.status, stack.name));
}

/** The live AllocatedStorage and MaxAllocatedStorage (GiB) of the stack's AnalyticsDBInstance. */
export async function liveDatabase(cf: CloudFormationClient, rds: RDSClient, stackName: string): Promise<LiveDatabase & { id: string }> {
  // Listed, not DescribeStackResource: one call either way, and moto 5.2's DescribeStackResource fails on stacks holding types its CloudFormation does not create.
  const id = (await stackResourcesOfType(cf, stackName, ["AWS::RDS::DBInstance"])).find((r) => r.logicalId === DATABASE_RESOURCE)?.physicalId;
  if (!id) throw new UpgradeError({ what: `find ${DATABASE_RESOURCE} in stack ${stackName}`, why: "the stack reports no physical id for it", permanent: true });
  const db = await awsCall(`read the RDS instance ${id}`, () => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })));
  const found = db.DBInstances?.[0];
  if (found?.AllocatedStorage === undefined) throw new UpgradeError({ what: `read the RDS instance ${id}`, why: "RDS reports no AllocatedStorage", permanent: true });
  return { id, allocated: found.AllocatedStorage, maxAllocated: found.MaxAllocatedStorage ?? undefined };
}

export async function stackResourcesOfType(cf: CloudFormationClient, stackName: string, types: string[]): Promise<Array<{ logicalId: string; physicalId: string; type: string }>> {
  const found: Array<{ logicalId: string; physicalId: string; type: string }> = [];
  await awsCall(`list the resources of stack ${stackName}`, async () => {
    for await (const page of paginateListStackResources({ client: cf }, { StackName: stackName })) {
      for (const r of page.StackResourceSummaries ?? []) {
        if (r.ResourceType && types.includes(r.ResourceType) && r.PhysicalResourceId) found.push({ logicalId: r.LogicalResourceId!, physicalId: r.PhysicalResourceId, type: r.ResourceType });
      }
    }
  });
  return found;
}

interface FollowSeen {
  status: string;
  events: StackEvent[];
  note?: string;
}

/**
 * Follows the stack's update to its end: this update's events only (its ClientRequestToken, else
 * those since the latest user-initiated UPDATE_IN_PROGRESS), one progress line per resource event.
 * UPDATE_ROLLBACK_COMPLETE fails naming the first failed resource; UPDATE_ROLLBACK_FAILED stops
 * with the ContinueUpdateRollback hint. Throttling and 5xx count as "not yet", within the deadline.
 */
export async function followUpdate(cf: CloudFormationClient, stackName: string, token: string, opts: { pollMs: number; timeoutMs: number; say: Say }): Promise<void> {
  const shown = new Set<string>();
  const seen = await pollUntil<FollowSeen>({
    intervalMs: opts.pollMs,
    timeoutMs: opts.timeoutMs,
    poll: async () => {
      let status: string;
      let events: StackEvent[];
      try {
        status = (await cf.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0]?.StackStatus ?? "UNKNOWN";
        events = await updateEvents(cf, stackName, token);
      } catch (err) {
        if (!isTransientAwsError(err)) throw err;
        return { done: false, seen: { status: "UNKNOWN", events: [], note: `AWS answered ${(err as Error).name}; polling again` } };
      }
      for (const e of events) {
        if (!e.EventId || shown.has(e.EventId)) continue;
        shown.add(e.EventId);
        if (e.LogicalResourceId === stackName && e.ResourceType === "AWS::CloudFormation::Stack") continue;
        await opts.say(`${stackName}: ${e.LogicalResourceId} ${e.ResourceStatus}${e.ResourceStatusReason ? ` (${e.ResourceStatusReason})` : ""}`);
      }
      return { done: !/_IN_PROGRESS$/.test(status) && status !== "UNKNOWN", seen: { status, events } };
    },
    onProgress: ({ seen, elapsedMs }) => {
      if (seen.note) void opts.say(`${stackName}: ${seen.note}`);
      else if (/_IN_PROGRESS$/.test(seen.status)) void opts.say(`${stackName}: ${seen.status} (${Math.round(elapsedMs / 1000)} s)`);
    },
    onTimeout: (last, elapsedMs) =>
      new UpgradeError({
        what: `follow the update of ${stackName}`,
        why: `still ${last?.status ?? "unknown"} after ${Math.round(elapsedMs / 1000)} s`,
        hint: "the update continues in CloudFormation; run again to keep following it, or raise deadlines.stackUpdateSeconds",
      }),
  });
  if (seen.status === "UPDATE_COMPLETE") return;
  const failed = seen.events.filter((e) => /_FAILED$/.test(e.ResourceStatus ?? "") && e.LogicalResourceId !== stackName).sort(byTime)[0];
  const first = failed ? `${failed.LogicalResourceId} ${failed.ResourceStatus}: ${failed.ResourceStatusReason ?? "(no reason given)"}` : "no failed resource event";
  if (seen.status === "UPDATE_ROLLBACK_FAILED") {
    throw new UpgradeError({ what: `update the CloudFormation stack ${stackName}`, why: `the update and its rollback failed (UPDATE_ROLLBACK_FAILED); first failure: ${first}`, hint: statusHint("UPDATE_ROLLBACK_FAILED", stackName), permanent: true });
  }
  if (seen.status === "UPDATE_ROLLBACK_COMPLETE") {
    throw new UpgradeError({ what: `update the CloudFormation stack ${stackName}`, why: `the update failed and was rolled back (UPDATE_ROLLBACK_COMPLETE); first failure: ${first}`, hint: "fix the cause named above and run again; the stack is back at its previous template", permanent: true });
  }
  throw new UpgradeError({ what: `update the CloudFormation stack ${stackName}`, why: `the stack ended in ${seen.status}; first failure: ${first}`, hint: statusHint(seen.status, stackName), permanent: true });
}

const byTime = (a: StackEvent, b: StackEvent) => (a.Timestamp?.getTime() ?? 0) - (b.Timestamp?.getTime() ?? 0);

/** This update's events, oldest first. */
async function updateEvents(cf: CloudFormationClient, stackName: string, token: string): Promise<StackEvent[]> {
  const all: StackEvent[] = [];
  let next: string | undefined;
  do {
    const page = await cf.send(new DescribeStackEventsCommand({ StackName: stackName, NextToken: next }));
    all.push(...(page.StackEvents ?? []));
    next = page.NextToken;
    // newest first: stop at the start of our update
    if (all.some((e) => isStart(e, stackName) && (e.ClientRequestToken === token || !e.ClientRequestToken))) break;
  } while (next);
  if (all.some((e) => e.ClientRequestToken === token)) return all.filter((e) => e.ClientRequestToken === token).sort(byTime);
  const start = all.findIndex((e) => isStart(e, stackName));
  return (start < 0 ? all : all.slice(0, start + 1)).sort(byTime);
}

const isStart = (e: StackEvent, stackName: string) => e.LogicalResourceId === stackName && e.ResourceType === "AWS::CloudFormation::Stack" && e.ResourceStatus === "UPDATE_IN_PROGRESS";
