import {
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  paginateDescribeInstances,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type BlockDeviceMapping,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
} from "@aws-sdk/client-ec2";
import { awsCall } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import { pollUntil } from "../../lib/wait";
import { describeGroup, groupInstanceIds } from "./autoScaling";
import type { Cloud } from "./cloud";
import { fill, type Role, type Selector } from "./settings";
import { ASG_TAG, TAG } from "./tags";

/**
 * The fleet's EC2 instances: found by the operator's selectors (ids, Name tags, tags), the green
 * ones the workflow launched found by its own bookkeeping tags, launched like blue, terminated by id.
 */
export interface FleetInstance {
  id: string;
  state: string;
  privateIp?: string;
  imageId?: string;
  tags: Record<string, string>;
  raw: Instance;
}

const tagsOf = (i: Instance) => Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
export const toFleetInstance = (i: Instance): FleetInstance => ({ id: i.InstanceId!, state: i.State?.Name ?? "unknown", privateIp: i.PrivateIpAddress, imageId: i.ImageId, tags: tagsOf(i), raw: i });
const LIVE_STATES = ["pending", "running", "stopping", "stopped"];

/** The instances with these ids that EC2 knows (an unknown id is simply absent). */
export async function describeInstances(cloud: Cloud, ids: string[]): Promise<Map<string, FleetInstance>> {
  const found = new Map<string, FleetInstance>();
  // One call per id: DescribeInstances fails the whole call for one unknown id.
  for (const id of ids) {
    try {
      const out = await cloud.aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      for (const r of out.Reservations ?? []) for (const i of r.Instances ?? []) found.set(i.InstanceId!, toFleetInstance(i));
    } catch (err) {
      if ((err as { name?: string }).name === "InvalidInstanceID.NotFound") continue;
      await awsCall(`describe instance ${id}`, () => Promise.reject(err));
    }
  }
  return found;
}

async function describeByFilters(cloud: Cloud, what: string, filters: Filter[]): Promise<FleetInstance[]> {
  const found: FleetInstance[] = [];
  await awsCall(what, async () => {
    for await (const page of paginateDescribeInstances({ client: cloud.aws.ec2 }, { Filters: filters })) {
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) found.push(toFleetInstance(i));
    }
  });
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
const values = (v: string | string[]) => (Array.isArray(v) ? v : [v]);

/** Why an instance does not match a selector's names and tags (undefined: it matches). */
export function selectorMismatch(selector: Selector, i: FleetInstance): string | undefined {
  for (const [key, want] of Object.entries(selector.tags ?? {})) {
    if (!values(want).includes(i.tags[key] ?? "\u0000")) return `its tag ${key} is ${JSON.stringify(i.tags[key] ?? null)}, not ${values(want).join(" or ")}`;
  }
  if (selector.names?.length && !selector.names.some((n) => glob(n).test(i.tags.Name ?? ""))) return `its Name ${JSON.stringify(i.tags.Name ?? null)} matches none of ${selector.names.join(", ")}`;
  return undefined;
}

export const describeSelector = (s: Selector) =>
  [s.autoScalingGroup ? `group ${s.autoScalingGroup}` : "", s.ids?.length ? `ids ${s.ids.join(", ")}` : "", s.names?.length ? `Name ${s.names.join("|")}` : "", ...Object.entries(s.tags ?? {}).map(([k, v]) => `${k}=${values(v).join("|")}`)].filter(Boolean).join(", ") || "(nothing)";

export const isEmptySelector = (s: Selector) => !s.ids?.length && !s.names?.length && Object.keys(s.tags ?? {}).length === 0 && !s.autoScalingGroup;

/**
 * The instances a selector names, in `states`. Explicit ids must exist and match the selector's
 * names and tags (else a problem each); names and tags alone are EC2 filters.
 */
export async function resolveSelector(cloud: Cloud, selector: Selector, states = LIVE_STATES): Promise<{ instances: FleetInstance[]; problems: string[] }> {
  const problems: string[] = [];
  if (isEmptySelector(selector)) return { instances: [], problems };
  if (selector.autoScalingGroup) {
    const group = await describeGroup(cloud, selector.autoScalingGroup);
    if (!group) return { instances: [], problems: [`the Auto Scaling group ${selector.autoScalingGroup} does not exist`] };
    const inGroup = groupInstanceIds(group);
    if (!selector.ids?.length && inGroup.length === 0) return { instances: [], problems };
    return resolveSelector(cloud, { ...selector, autoScalingGroup: undefined, ids: selector.ids?.length ? selector.ids.filter((id) => inGroup.includes(id)) : inGroup }, states);
  }
  if (selector.ids?.length) {
    const found = await describeInstances(cloud, selector.ids);
    const instances: FleetInstance[] = [];
    for (const id of selector.ids) {
      const i = found.get(id);
      const mismatch = i && selectorMismatch(selector, i);
      if (!i) problems.push(`${id} does not exist`);
      else if (mismatch) problems.push(`${id} is not of this fleet: ${mismatch}`);
      else if (!states.includes(i.state)) problems.push(`${id} is ${i.state}`);
      else instances.push(i);
    }
    return { instances, problems };
  }
  const filters: Filter[] = [{ Name: "instance-state-name", Values: states }];
  if (selector.names?.length) filters.push({ Name: "tag:Name", Values: selector.names });
  for (const [key, want] of Object.entries(selector.tags ?? {})) filters.push({ Name: `tag:${key}`, Values: values(want) });
  return { instances: await describeByFilters(cloud, `find the instances of ${describeSelector(selector)}`, filters), problems };
}

/**
 * Blue by the operator's selectors, minus what this workflow launched for another release (green
 * launched with blue's tags carries them too). Refused, changing nothing, when an id is wrong, a
 * role matches nothing, or an instance is in both roles.
 */
export async function resolveBlue(cloud: Cloud, selectors: Record<Role, Selector>, states?: string[]): Promise<Record<Role, FleetInstance[]>> {
  const { fleet, blue } = cloud.settings;
  const problems: string[] = [];
  const out = { web: [] as FleetInstance[], worker: [] as FleetInstance[] };
  for (const role of ["web", "worker"] as const) {
    const r = await resolveSelector(cloud, selectors[role], states);
    problems.push(...r.problems);
    out[role] = r.instances.filter((i) => !(i.tags[TAG.fleet] === fleet && i.tags[TAG.release] !== undefined && i.tags[TAG.release] !== blue.release));
    if (!isEmptySelector(selectors[role]) && !selectors[role].autoScalingGroup && out[role].length === 0 && r.problems.length === 0) problems.push(`blue.${role} (${describeSelector(selectors[role])}) matches no ${(states ?? LIVE_STATES).join("/")} instance`);
  }
  const both = out.web.filter((i) => out.worker.some((w) => w.id === i.id)).map((i) => i.id);
  if (both.length) problems.push(`${both.join(", ")} ${both.length === 1 ? "is" : "are"} matched by both blue.web and blue.worker`);
  if (problems.length > 0) throw refused("find the blue fleet", problems.join("; "), "fix blue.web / blue.worker (the operator's ids, Name tags or tags of the serving fleet); nothing was changed");
  return out;
}

/** Green instances this workflow launched for the release (pending or running), by its bookkeeping tags. */
export async function findLaunchedGreen(cloud: Cloud, role: Role): Promise<FleetInstance[]> {
  const { fleet, release } = cloud.settings;
  return describeByFilters(cloud, `find the ${release} ${role} instances`, [
    { Name: `tag:${TAG.fleet}`, Values: [fleet] },
    { Name: `tag:${TAG.release}`, Values: [release] },
    { Name: `tag:${TAG.role}`, Values: [role] },
    { Name: "instance-state-name", Values: ["pending", "running"] },
  ]);
}

/** Refuses AMIs that do not exist (or are not available) before anything changes. */
export async function checkAmis(cloud: Cloud): Promise<void> {
  for (const [role, ami] of Object.entries(cloud.settings.amis)) {
    let state: string | undefined;
    try {
      const out = await cloud.aws.ec2.send(new DescribeImagesCommand({ ImageIds: [ami] }));
      state = out.Images?.[0]?.State;
    } catch (err) {
      if (!/InvalidAMIID/.test((err as { name?: string }).name ?? "")) await awsCall(`describe AMI ${ami}`, () => Promise.reject(err));
    }
    if (state !== "available") {
      throw refused(
        `prepare the ${cloud.settings.release} fleet`,
        `the ${role} AMI ${ami} ${state ? `is ${state}, not available` : "does not exist in this account and region"}`,
        `check amis.${role} (the AMI built for ${cloud.settings.release}); nothing was changed`,
      );
    }
  }
}

/**
 * What a green instance of a role is launched with, taken from blue's instance: its launch template
 * (when EC2 tagged it with one) or its type, subnet, security groups, key pair, instance profile,
 * user data and EBS volumes (size, type, encryption). Refused for an instance an Auto Scaling group
 * owns: green is then a group (autoScaling settings) or adopted.
 */
export async function launchInputFrom(cloud: Cloud, role: Role, template: FleetInstance): Promise<Omit<RunInstancesCommandInput, "MinCount" | "MaxCount">> {
  const t = template.raw;
  if (template.tags[ASG_TAG]) {
    throw refused(
      `launch the ${cloud.settings.release} ${role} instances`,
      `blue's ${template.id} belongs to the Auto Scaling group ${template.tags[ASG_TAG]}; instances launched beside it would not be the group's`,
      `set blue.${role}.autoScalingGroup (green is then a group made from blue's launch template with the new AMI) or adopt green by selector (green.${role})`,
    );
  }
  const launchTemplateId = template.tags["aws:ec2launchtemplate:id"];
  if (launchTemplateId) {
    return { ImageId: cloud.settings.amis[role], LaunchTemplate: { LaunchTemplateId: launchTemplateId, Version: template.tags["aws:ec2launchtemplate:version"] ?? "$Default" }, SubnetId: t.SubnetId };
  }
  const userData = await awsCall(`read the user data of ${template.id}`, () => cloud.aws.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: template.id, Attribute: "userData" })));
  const volumeIds = (t.BlockDeviceMappings ?? []).map((b) => b.Ebs?.VolumeId).filter((v): v is string => !!v);
  const volumes = volumeIds.length
    ? ((await awsCall(`describe the volumes of ${template.id}`, () => cloud.aws.ec2.send(new DescribeVolumesCommand({ VolumeIds: volumeIds })))).Volumes ?? [])
    : [];
  const blockDevices: BlockDeviceMapping[] = (t.BlockDeviceMappings ?? []).flatMap((b) => {
    const v = volumes.find((x) => x.VolumeId === b.Ebs?.VolumeId);
    if (!v || !b.DeviceName) return [];
    return [{ DeviceName: b.DeviceName, Ebs: { VolumeSize: v.Size, VolumeType: v.VolumeType, Encrypted: v.Encrypted, KmsKeyId: v.Encrypted ? v.KmsKeyId : undefined, Iops: v.VolumeType?.startsWith("io") || v.VolumeType === "gp3" ? v.Iops : undefined, DeleteOnTermination: b.Ebs?.DeleteOnTermination ?? true } }];
  });
  return {
    ImageId: cloud.settings.amis[role],
    InstanceType: t.InstanceType,
    SubnetId: t.SubnetId,
    SecurityGroupIds: (t.SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean),
    KeyName: t.KeyName,
    IamInstanceProfile: t.IamInstanceProfile?.Arn ? { Arn: t.IamInstanceProfile.Arn } : undefined,
    UserData: userData.UserData?.Value || undefined,
    BlockDeviceMappings: blockDevices.length ? blockDevices : undefined,
  };
}

/** Launches `count` instances of a role like blue's `template`, with blue's operator tags and the workflow's bookkeeping tags. */
export async function launchGreen(cloud: Cloud, role: Role, count: number, template: FleetInstance): Promise<string[]> {
  const { release, fleet } = cloud.settings;
  const input = await launchInputFrom(cloud, role, template);
  const [name_, number] = release.split(".") as [string, string];
  const extra = Object.entries(cloud.settings.launchTags).map(([k, v]) => [k, fill(v, { release, name: name_, number })] as const);
  const operatorTags = [...Object.entries(template.tags).filter(([k]) => !k.startsWith("aws:") && !k.startsWith("openedx:") && k !== "Name" && !(k in cloud.settings.launchTags)), ...extra];
  const name = template.tags.Name ? `${template.tags.Name}-${release}` : `${fleet}-${release}-${role}`;
  const out = await awsCall(`launch ${count} ${release} ${role} instance(s)`, () =>
    cloud.aws.ec2.send(
      new RunInstancesCommand({
        ...input,
        MinCount: count,
        MaxCount: count,
        TagSpecifications: [
          {
            ResourceType: "instance",
            Tags: [...operatorTags.map(([Key, Value]) => ({ Key, Value })), { Key: "Name", Value: name }, { Key: TAG.fleet, Value: fleet }, { Key: TAG.release, Value: release }, { Key: TAG.role, Value: role }],
          },
        ],
      }),
    ),
  );
  return (out.Instances ?? []).map((i) => i.InstanceId!);
}

export async function waitRunning(cloud: Cloud, ids: string[]): Promise<Map<string, FleetInstance>> {
  return pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.bootSeconds * 1000,
    poll: async () => {
      const seen = await describeInstances(cloud, ids);
      // one that is stopping or gone will not run: say so now, not at the deadline (as EC2's own
      // instance-running waiter fails on these states)
      const never = ids.filter((id) => NEVER_RUNS.has(seen.get(id)?.state ?? "terminated"));
      if (never.length > 0) {
        throw new UpgradeError({
          what: `wait until ${ids.join(", ")} run`,
          why: never.map((id) => `${id} is ${seen.get(id)?.state ?? "gone (EC2 does not know it)"}`).join(", ") + ": it will not run",
          hint: "look at the instance's state reason and console output (a capacity, quota or AMI problem, or someone stopped it), then run the update again",
          permanent: true,
        });
      }
      return { done: ids.every((id) => seen.get(id)?.state === "running"), seen };
    },
    onTimeout: (seen) =>
      new UpgradeError({
        what: `wait until ${ids.join(", ")} run`,
        why: `after ${cloud.settings.timing.bootSeconds}s: ${ids.map((id) => `${id} ${seen?.get(id)?.state ?? "unknown"}`).join(", ")}`,
        hint: "look at the instances' console output; raise timing.bootSeconds if they are slow to boot",
      }),
  });
}

const NEVER_RUNS = new Set(["shutting-down", "terminated", "stopping", "stopped"]);

/** Terminates exactly these ids (never a filter, never one an Auto Scaling group owns) and waits until EC2 reports each `terminated`. */
export async function terminate(cloud: Cloud, ids: string[]): Promise<void> {
  const owned = [...(await describeInstances(cloud, ids)).values()].filter((i) => i.tags[ASG_TAG]);
  if (owned.length > 0) {
    throw new UpgradeError({ what: `terminate ${ids.join(", ")}`, why: `${owned.map((i) => `${i.id} belongs to ${i.tags[ASG_TAG]}`).join(", ")}: its group would launch a replacement`, hint: "scale the group to zero instead", permanent: true });
  }
  if (ids.length > 0) await awsCall(`terminate ${ids.join(", ")}`, () => cloud.aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids })));
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.bootSeconds * 1000,
    poll: async () => {
      const seen = await describeInstances(cloud, ids);
      return { done: ids.every((id) => (seen.get(id)?.state ?? "terminated") === "terminated"), seen };
    },
    onTimeout: (seen) => new UpgradeError({ what: `wait until ${ids.join(", ")} are terminated`, why: ids.map((id) => `${id} ${seen?.get(id)?.state}`).join(", ") }),
  });
}
