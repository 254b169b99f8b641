import {
  AttachLoadBalancersCommand,
  AttachLoadBalancerTargetGroupsCommand,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DetachLoadBalancersCommand,
  DetachLoadBalancerTargetGroupsCommand,
  UpdateAutoScalingGroupCommand,
  type AutoScalingGroup,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateVersionCommand, DescribeLaunchTemplateVersionsCommand, type RequestLaunchTemplateData } from "@aws-sdk/client-ec2";
import { awsCall } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import { pollUntil } from "../../lib/wait";
import type { Cloud } from "./cloud";
import { TAG } from "./tags";
import type { Role, Site } from "./settings";

/**
 * Fleets whose web and worker nodes an Auto Scaling group owns. Blue/green by group: green is a
 * group (given, or made here from blue's launch template with a new version for the release's AMI),
 * attached to every site's load balancer (the group registers its instances itself); blue's group
 * is detached and scaled to zero, so it terminates its own instances and launches none. Never
 * TerminateInstances on an instance a group owns: the group would launch an old one back.
 */
export async function describeGroup(cloud: Cloud, name: string): Promise<AutoScalingGroup | undefined> {
  const out = await awsCall(`describe the Auto Scaling group ${name}`, () => cloud.aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })));
  return out.AutoScalingGroups?.[0];
}

/** The group's instances that are not on their way out. */
export const groupInstanceIds = (group: AutoScalingGroup) =>
  (group.Instances ?? []).filter((i) => !/^Terminat|^Detach/.test(i.LifecycleState ?? "")).map((i) => i.InstanceId!).sort();

export const greenGroupName = (blueGroup: string, release: string) => `${blueGroup}-${release.replace(/\./g, "-")}`;

/**
 * Green's group for a role: exists already (a re-run), or is created like blue's: a new version of
 * blue's launch template with the release's AMI (instance profile, user data, block devices, key
 * and security groups come with the template), blue's subnets, size and tags, plus the workflow's
 * bookkeeping tags. Refused when blue's group has no launch template (a launch configuration).
 */
export async function ensureGreenGroup(cloud: Cloud, role: Role, blueGroupName: string): Promise<string> {
  const name = greenGroupName(blueGroupName, cloud.settings.release);
  if (await describeGroup(cloud, name)) return name;
  const blue = await describeGroup(cloud, blueGroupName);
  if (!blue) throw refused(`make the green ${role} group`, `blue's Auto Scaling group ${blueGroupName} does not exist`, `fix blue.${role}.autoScalingGroup; nothing was changed`);
  const template = blue.LaunchTemplate ?? blue.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  if (!template?.LaunchTemplateId) {
    throw refused(
      `make the green ${role} group`,
      `${blueGroupName} launches from ${blue.LaunchConfigurationName ? `the launch configuration ${blue.LaunchConfigurationName}` : "no launch template"}, which cannot be copied with a new AMI here`,
      `create green's group yourself from the ${cloud.settings.release} AMI and adopt it (green.${role}: {autoScalingGroup: …})`,
    );
  }
  // The source version's data, given whole with the new AMI (AWS would merge it from SourceVersion;
  // moto ignores SourceVersion, and being explicit costs nothing).
  const source = await awsCall(`read launch template ${template.LaunchTemplateId}`, () =>
    cloud.aws.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.LaunchTemplateId, Versions: [template.Version ?? "$Default"] })),
  );
  const data = source.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
  if (!data) throw new UpgradeError({ what: `read launch template ${template.LaunchTemplateId}`, why: `version ${template.Version ?? "$Default"} is not there`, permanent: true });
  const version = await awsCall(`add a ${cloud.settings.release} version to launch template ${template.LaunchTemplateId}`, () =>
    cloud.aws.ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: template.LaunchTemplateId,
        SourceVersion: String(source.LaunchTemplateVersions![0]!.VersionNumber),
        VersionDescription: `openedx ${cloud.settings.fleet} ${cloud.settings.release} ${role}`,
        LaunchTemplateData: { ...(compact(data) as RequestLaunchTemplateData), ImageId: cloud.settings.amis[role] },
      }),
    ),
  );
  const bookkeeping = { [TAG.fleet]: cloud.settings.fleet, [TAG.release]: cloud.settings.release, [TAG.role]: role };
  const tags = [
    ...(blue.Tags ?? []).filter((t) => !t.Key?.startsWith("aws:") && !t.Key?.startsWith("openedx:") && !(t.Key! in cloud.settings.launchTags)).map((t) => ({ Key: t.Key!, Value: t.Value ?? "", PropagateAtLaunch: t.PropagateAtLaunch ?? true })),
    ...Object.entries({ ...launchTagValues(cloud), ...bookkeeping }).map(([Key, Value]) => ({ Key, Value, PropagateAtLaunch: true })),
  ];
  await awsCall(`create the Auto Scaling group ${name}`, () =>
    cloud.aws.autoScaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: name,
        LaunchTemplate: { LaunchTemplateId: template.LaunchTemplateId, Version: String(version.LaunchTemplateVersion!.VersionNumber) },
        MinSize: blue.MinSize,
        MaxSize: blue.MaxSize,
        DesiredCapacity: blue.DesiredCapacity,
        VPCZoneIdentifier: blue.VPCZoneIdentifier,
        AvailabilityZones: blue.VPCZoneIdentifier ? undefined : blue.AvailabilityZones,
        HealthCheckType: blue.HealthCheckType,
        HealthCheckGracePeriod: blue.HealthCheckGracePeriod,
        Tags: tags.map((t) => ({ ...t, ResourceId: name, ResourceType: "auto-scaling-group" })),
      }),
    ),
  );
  return name;
}

/** Leaves out empty lists and objects (a described template has them; sent back they name nothing). */
function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(compact);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const c = compact(v);
    if (c === undefined || (Array.isArray(c) && c.length === 0) || (c !== null && typeof c === "object" && !Array.isArray(c) && Object.keys(c).length === 0)) continue;
    out[k] = c;
  }
  return out;
}

function launchTagValues(cloud: Cloud): Record<string, string> {
  const [name, number] = cloud.settings.release.split(".") as [string, string];
  return Object.fromEntries(Object.entries(cloud.settings.launchTags).map(([k, v]) => [k, v.replace("{release}", cloud.settings.release).replace("{name}", name).replace("{number}", number)]));
}

/** Waits until the group has its desired number of InService instances; returns their ids. */
export async function waitGroupInService(cloud: Cloud, name: string): Promise<string[]> {
  return pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.bootSeconds * 1000,
    poll: async () => {
      const g = await describeGroup(cloud, name);
      const ready = (g?.Instances ?? []).filter((i) => i.LifecycleState === "InService").map((i) => i.InstanceId!).sort();
      return { done: !!g && ready.length >= (g.DesiredCapacity ?? 0), seen: ready };
    },
    onTimeout: (seen) => new UpgradeError({ what: `wait until the Auto Scaling group ${name} has its instances in service`, why: `after ${cloud.settings.timing.bootSeconds}s: ${seen?.length ?? 0} in service`, hint: "look at the group's activity history" }),
  });
}

/** Attaches (or detaches) a group to a site's load balancer: the group (de)registers its instances itself. */
export async function attachGroup(cloud: Cloud, name: string, site: Site, attach: boolean): Promise<boolean> {
  const g = await describeGroup(cloud, name);
  if (!g) return false;
  const lb = site.loadBalancer;
  if (lb.type === "classic") {
    const has = (g.LoadBalancerNames ?? []).includes(lb.name);
    if (has === attach) return false;
    const Command = attach ? AttachLoadBalancersCommand : DetachLoadBalancersCommand;
    await awsCall(`${attach ? "attach" : "detach"} ${name} ${attach ? "to" : "from"} ${lb.name}`, () => cloud.aws.autoScaling.send(new Command({ AutoScalingGroupName: name, LoadBalancerNames: [lb.name] })));
    return true;
  }
  const present = new Set(g.TargetGroupARNs ?? []);
  const todo = lb.targetGroupArns.filter((arn) => present.has(arn) !== attach);
  if (todo.length === 0) return false;
  const Command = attach ? AttachLoadBalancerTargetGroupsCommand : DetachLoadBalancerTargetGroupsCommand;
  await awsCall(`${attach ? "attach" : "detach"} ${name} ${attach ? "to" : "from"} ${todo.join(", ")}`, () => cloud.aws.autoScaling.send(new Command({ AutoScalingGroupName: name, TargetGroupARNs: todo })));
  return true;
}

/** Scales a group to zero (min, max, desired) and waits until it has no instance: the group terminates its own. */
export async function scaleToZero(cloud: Cloud, name: string): Promise<string[]> {
  const g = await describeGroup(cloud, name);
  if (!g) return [];
  const had = groupInstanceIds(g);
  if (g.DesiredCapacity !== 0 || g.MinSize !== 0 || g.MaxSize !== 0) {
    await awsCall(`scale ${name} to zero`, () => cloud.aws.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: 0, MaxSize: 0, DesiredCapacity: 0 })));
  }
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.bootSeconds * 1000,
    poll: async () => {
      const left = (await describeGroup(cloud, name))?.Instances ?? [];
      return { done: left.length === 0, seen: left.map((i) => `${i.InstanceId} ${i.LifecycleState}`) };
    },
    onTimeout: (seen) => new UpgradeError({ what: `wait until ${name} has no instance`, why: `still: ${seen?.join(", ")}`, hint: "look at the group's activity history (a lifecycle hook may hold the termination)" }),
  });
  return had;
}
