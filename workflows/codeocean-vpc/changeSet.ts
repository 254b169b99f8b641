import { createHash } from "node:crypto";
import {
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DescribeChangeSetCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
  waitUntilChangeSetCreateComplete,
  type Change,
  type GetTemplateCommandInput,
  type CloudFormationClient,
} from "@aws-sdk/client-cloudformation";
import { DescribeVolumesCommand, type EC2Client } from "@aws-sdk/client-ec2";
import { awsCall } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import { describeChange, describeDestructive, describeShrink, destructiveChanges, shrinkingChanges, templateResources, type ResourceChange, type TemplateResource } from "./dataLoss";
import { planParameters, type LiveDatabase } from "./plan";
import { stackResourcesOfType, type LiveStack, type Say, type TemplateSummary } from "./stacks";

/**
 * A stack update's change set (runbook 2): made with the new TemplateURL and the planned
 * parameters, shown as the plan, and reviewed before any downtime: refused (and deleted) when it
 * would replace or remove data, or shrink a size that has grown live.
 */

/** Names derived from the target, so a re-run after a crash finds the same change set and token. */
export function updateNames(stackName: string, templateUrl: string): { changeSet: string; token: string } {
  const digest = createHash("sha256").update(`${stackName}\n${templateUrl}`).digest("hex").slice(0, 12);
  return { changeSet: `upgrade-orchestrator-${digest}`, token: `upgrade-orchestrator-${digest}` };
}

export interface ChangeSetPlan {
  changeSet: string;
  token: string;
  changes: ResourceChange[];
  /** "no changes": nothing to execute (the change set was deleted). */
  empty: boolean;
}

/** The live size of each named resource of the stack whose size a template fixes (EBS volumes). */
export type LiveSizes = (logicalIds: string[]) => Promise<Record<string, { physicalId: string; size: number }>>;

export interface UpdateSettings {
  stackName: string;
  templateUrl: string;
  template: TemplateSummary;
  stack: LiveStack;
  overrides?: Record<string, string>;
  /** The primary's database as read live (storage and its ceiling). */
  live?: LiveDatabase;
  liveSizes?: LiveSizes;
  roleArn?: string;
  pollMs: number;
  timeoutMs: number;
  say: Say;
}

export function liveVolumeSizes(cf: CloudFormationClient, ec2: EC2Client, stackName: string): LiveSizes {
  return async (logicalIds) => {
    const volumes = (await stackResourcesOfType(cf, stackName, ["AWS::EC2::Volume"])).filter((r) => logicalIds.includes(r.logicalId));
    if (volumes.length === 0) return {};
    const found = await awsCall(`read the stack's EBS volumes (${volumes.map((v) => v.physicalId).join(", ")})`, () =>
      ec2.send(new DescribeVolumesCommand({ VolumeIds: volumes.map((v) => v.physicalId) })),
    );
    const out: Record<string, { physicalId: string; size: number }> = {};
    for (const v of volumes) {
      const size = found.Volumes?.find((x) => x.VolumeId === v.physicalId)?.Size;
      if (size === undefined) throw new UpgradeError({ what: `read the EBS volume ${v.physicalId} (${v.logicalId})`, why: "EC2 reports no such volume or no size", hint: "the stack and the account disagree; check the stack's drift in the console", permanent: true });
      out[v.logicalId] = { physicalId: v.physicalId, size };
    }
    return out;
  };
}

async function readChanges(cf: CloudFormationClient, stackName: string, changeSet: string) {
  const all: Change[] = [];
  let next: string | undefined;
  let first;
  do {
    const page = await awsCall(`read the change set ${changeSet}`, () => cf.send(new DescribeChangeSetCommand({ StackName: stackName, ChangeSetName: changeSet, NextToken: next })));
    first ??= page;
    all.push(...(page.Changes ?? []));
    next = page.NextToken;
  } while (next);
  return { status: first.Status, reason: first.StatusReason, changes: all };
}

async function readTemplates(cf: CloudFormationClient, stackName: string, changeSet: string): Promise<{ before: Record<string, TemplateResource>; after: Record<string, TemplateResource> }> {
  const read = async (what: string, input: GetTemplateCommandInput) => {
    const body = (await awsCall(`read ${what}`, () => cf.send(new GetTemplateCommand(input)))).TemplateBody;
    if (!body) throw new UpgradeError({ what: `read ${what}`, why: "CloudFormation returned no template body", permanent: true });
    try {
      return templateResources(body);
    } catch (err) {
      throw new UpgradeError({ what: `read ${what}`, why: (err as Error).message, permanent: true });
    }
  };
  return {
    before: await read(`the template of stack ${stackName}`, { StackName: stackName, TemplateStage: "Original" }),
    after: await read(`the template of change set ${changeSet}`, { StackName: stackName, ChangeSetName: changeSet, TemplateStage: "Original" }),
  };
}

/**
 * Creates the change set of the update (new TemplateURL, planned parameters), shows it as the
 * plan, and refuses (deleting it) one that replaces or removes a data-bearing resource or shrinks
 * a volume grown live.
 */
export async function prepareChangeSet(cf: CloudFormationClient, s: UpdateSettings): Promise<ChangeSetPlan> {
  const { changeSet, token } = updateNames(s.stackName, s.templateUrl);
  const params = planParameters({ templateParameters: s.template.parameters, stackParameters: s.stack.parameters, overrides: s.overrides, live: s.live });
  for (const note of params.notes) await s.say(`${s.stackName}: ${note}`);
  const discard = () => cf.send(new DeleteChangeSetCommand({ StackName: s.stackName, ChangeSetName: changeSet })).catch(() => undefined);
  // A change set left by a crashed run is replaced: its inputs may be stale.
  await discard();
  await awsCall(`create a change set for ${s.stackName}`, () =>
    cf.send(
      new CreateChangeSetCommand({
        StackName: s.stackName,
        ChangeSetName: changeSet,
        ChangeSetType: "UPDATE",
        TemplateURL: s.templateUrl,
        Parameters: params.parameters,
        Capabilities: ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        RoleARN: s.roleArn,
        Description: `upgrade-orchestrator: ${s.templateUrl}`,
      }),
    ),
  );
  try {
    await waitUntilChangeSetCreateComplete(
      { client: cf, maxWaitTime: Math.max(1, Math.ceil(s.timeoutMs / 1000)), minDelay: Math.max(1, Math.floor(s.pollMs / 1000)), maxDelay: Math.max(2, Math.ceil(s.pollMs / 1000)) },
      { StackName: s.stackName, ChangeSetName: changeSet },
    );
  } catch {
    // FAILED ("no changes") ends the waiter as a failure; the description below says which.
  }
  const described = await readChanges(cf, s.stackName, changeSet);
  if (described.status === "FAILED") {
    await discard();
    if (/didn't contain changes|No updates are to be performed/i.test(described.reason ?? "")) return { changeSet, token, changes: [], empty: true };
    throw new UpgradeError({ what: `create a change set for ${s.stackName}`, why: described.reason ?? "the change set failed", hint: "see the reason above; the stack was not changed", permanent: true });
  }
  const changes: ResourceChange[] = described.changes.flatMap((c) =>
    c.ResourceChange
      ? [{ action: c.ResourceChange.Action ?? "?", logicalId: c.ResourceChange.LogicalResourceId ?? "?", type: c.ResourceChange.ResourceType ?? "?", replacement: c.ResourceChange.Replacement }]
      : [],
  );
  await s.say(`${s.stackName}: change set ${changeSet}: ${changes.length === 0 ? "no resource changes" : changes.map(describeChange).join("; ")}`);
  let problems: string[];
  try {
    problems = await review(cf, s, changeSet, changes, params.parameters);
  } catch (err) {
    await discard();
    throw err;
  }
  if (problems.length > 0) {
    await discard();
    throw refused(
      `update the CloudFormation stack ${s.stackName}`,
      `${problems.join("; ")}; the change set was deleted and the stack is untouched`,
      "check the template and parameters (a changed name, identifier or engine replaces a resource; a renamed resource removes it); back up and migrate the data by hand, or grow the template's size to the live one, before such an update",
    );
  }
  return { changeSet, token, changes, empty: false };
}

async function review(cf: CloudFormationClient, s: UpdateSettings, changeSet: string, changes: ResourceChange[], passed: Array<{ ParameterKey: string; ParameterValue?: string }>): Promise<string[]> {
  if (changes.length === 0) return [];
  const { before, after } = await readTemplates(cf, s.stackName, changeSet);
  const problems: string[] = [];
  const destructive = destructiveChanges(changes, before, after);
  if (destructive.length > 0) problems.push(`the change set would destroy data: ${destructive.map(describeDestructive).join("; ")}`);
  if (s.liveSizes) {
    const sized = changes.filter((c) => c.action === "Modify" && after[c.logicalId]?.type === "AWS::EC2::Volume").map((c) => c.logicalId);
    if (sized.length > 0) {
      const values = { ...s.stack.parameters, ...Object.fromEntries(passed.flatMap((p) => (p.ParameterValue === undefined ? [] : [[p.ParameterKey, p.ParameterValue]]))) };
      const shrinks = shrinkingChanges(changes, after, await s.liveSizes(sized), values);
      if (shrinks.length > 0) problems.push(`the change set would shrink what was grown live: ${shrinks.map(describeShrink).join("; ")}`);
    }
  }
  return problems;
}

export async function executeChangeSet(cf: CloudFormationClient, stackName: string, plan: ChangeSetPlan): Promise<void> {
  await awsCall(`execute the change set ${plan.changeSet} on ${stackName}`, () =>
    cf.send(new ExecuteChangeSetCommand({ StackName: stackName, ChangeSetName: plan.changeSet, ClientRequestToken: plan.token })),
  );
}
