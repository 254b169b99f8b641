import { DescribeImagesCommand, DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand, type Instance } from "@aws-sdk/client-ec2";
import {
  DescribeLoadBalancerAttributesCommand,
  DescribeLoadBalancersCommand,
  DeregisterInstancesFromLoadBalancerCommand,
  RegisterInstancesWithLoadBalancerCommand,
} from "@aws-sdk/client-elastic-load-balancing";
import {
  DescribeLoadBalancersCommand as DescribeAlbsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  DeregisterTargetsCommand,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ChangeResourceRecordSetsCommand, GetChangeCommand, ListResourceRecordSetsCommand } from "@aws-sdk/client-route-53";
import { GetDistributionCommand } from "@aws-sdk/client-cloudfront";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { awsCall, type AwsClients } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import type { Progress } from "../../lib/progress";
import { pollUntil } from "../../lib/wait";
import type { FleetSettings, Role } from "./settings";

/**
 * The AWS side of the cut-over: EC2 instances of the fleet, the load balancer (classic ELB or ALB
 * target groups), the Route 53 records, the maintenance page. Reads before it acts; the order is
 * cutover.ts's.
 */
export const TAG = { fleet: "openedx:fleet", release: "openedx:release", role: "openedx:role" } as const;

export interface FleetInstance {
  id: string;
  state: string;
  privateIp?: string;
  imageId?: string;
  tags: Record<string, string>;
  raw: Instance;
}

export interface Cloud {
  aws: AwsClients;
  settings: FleetSettings;
  info: Progress;
  pollMs: number;
}

const tagsOf = (i: Instance) => Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
const toFleetInstance = (i: Instance): FleetInstance => ({
  id: i.InstanceId!,
  state: i.State?.Name ?? "unknown",
  privateIp: i.PrivateIpAddress,
  imageId: i.ImageId,
  tags: tagsOf(i),
  raw: i,
});

/** The instances with these ids that EC2 knows (an unknown id is simply absent). */
export async function describeInstances(cloud: Cloud, ids: string[]): Promise<Map<string, FleetInstance>> {
  const found = new Map<string, FleetInstance>();
  if (ids.length === 0) return found;
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

/** Refuses a blue list naming an instance that is not a running member of this fleet in that role. */
export async function checkBlueOfFleet(cloud: Cloud, blue: Record<Role, string[]>, allowTerminated = false): Promise<Map<string, FleetInstance>> {
  const ids = [...blue.web, ...blue.worker];
  const found = await describeInstances(cloud, ids);
  const problems: string[] = [];
  for (const role of ["web", "worker"] as const) {
    for (const id of blue[role]) {
      const i = found.get(id);
      if (!i) problems.push(`${id} does not exist`);
      else if (i.tags[TAG.fleet] !== cloud.settings.fleet) problems.push(`${id} is not of fleet ${cloud.settings.fleet} (its ${TAG.fleet} tag is ${JSON.stringify(i.tags[TAG.fleet] ?? null)})`);
      else if (i.tags[TAG.role] !== role) problems.push(`${id} is listed as ${role} but tagged ${TAG.role}=${i.tags[TAG.role] ?? "(none)"}`);
      else if (!allowTerminated && i.state !== "running") problems.push(`${id} is ${i.state}`);
    }
  }
  if (problems.length > 0) {
    throw refused(`use the blue fleet`, problems.join("; "), "fix blue.web / blue.worker: only this fleet's instances, by id; nothing was changed");
  }
  return found;
}

/** Green instances already launched for this release (pending or running), by role. */
export async function findGreen(cloud: Cloud, role: Role): Promise<FleetInstance[]> {
  const out = await awsCall(`find the ${cloud.settings.release} ${role} instances`, () =>
    cloud.aws.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG.fleet}`, Values: [cloud.settings.fleet] },
          { Name: `tag:${TAG.release}`, Values: [cloud.settings.release] },
          { Name: `tag:${TAG.role}`, Values: [role] },
          { Name: "instance-state-name", Values: ["pending", "running"] },
        ],
      }),
    ),
  );
  return (out.Reservations ?? []).flatMap((r) => (r.Instances ?? []).map(toFleetInstance)).sort((a, b) => a.id.localeCompare(b.id));
}

/** Launches `count` instances of a role like `template` (type, subnet, security groups) from the release's AMI. */
export async function launchGreen(cloud: Cloud, role: Role, count: number, template: FleetInstance): Promise<string[]> {
  const t = template.raw;
  const release = cloud.settings.release;
  const out = await awsCall(`launch ${count} ${release} ${role} instance(s)`, () =>
    cloud.aws.ec2.send(
      new RunInstancesCommand({
        ImageId: cloud.settings.amis[role],
        InstanceType: t.InstanceType,
        MinCount: count,
        MaxCount: count,
        SubnetId: t.SubnetId,
        SecurityGroupIds: (t.SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean),
        KeyName: t.KeyName,
        TagSpecifications: [
          {
            ResourceType: "instance",
            Tags: [
              { Key: "Name", Value: `${cloud.settings.fleet}-${release}-${role}` },
              { Key: TAG.fleet, Value: cloud.settings.fleet },
              { Key: TAG.release, Value: release },
              { Key: TAG.role, Value: role },
            ],
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

// ---- load balancer ----

/** The instance ids the load balancer has registered (for an ALB: in every target group). */
export async function registeredInstances(cloud: Cloud): Promise<Set<string>> {
  const lb = cloud.settings.loadBalancer;
  if (lb.type === "classic") {
    const out = await awsCall(`describe load balancer ${lb.name}`, () => cloud.aws.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.name] })));
    return new Set((out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!));
  }
  let common: Set<string> | undefined;
  for (const arn of lb.targetGroupArns) {
    const out = await awsCall(`describe the targets of ${arn}`, () => cloud.aws.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn })));
    const ids = new Set((out.TargetHealthDescriptions ?? []).filter((d) => d.TargetHealth?.State !== "draining").map((d) => d.Target!.Id!));
    common = common === undefined ? ids : new Set([...common].filter((id) => ids.has(id)));
  }
  return common ?? new Set();
}

/** Registers only what is not registered yet (moto, unlike AWS, would list an instance twice). */
export async function register(cloud: Cloud, ids: string[]): Promise<string[]> {
  const already = await registeredInstances(cloud);
  const missing = ids.filter((id) => !already.has(id));
  if (missing.length === 0) return [];
  const lb = cloud.settings.loadBalancer;
  if (lb.type === "classic") {
    await awsCall(`register ${missing.join(", ")} with ${lb.name}`, () =>
      cloud.aws.elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: lb.name, Instances: missing.map((InstanceId) => ({ InstanceId })) })),
    );
  } else {
    for (const arn of lb.targetGroupArns) {
      await awsCall(`register ${missing.join(", ")} in ${arn}`, () =>
        cloud.aws.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: missing.map((Id) => ({ Id, Port: lb.port })) })),
      );
    }
  }
  return missing;
}

export async function deregister(cloud: Cloud, ids: string[]): Promise<string[]> {
  const already = await registeredInstances(cloud);
  const present = ids.filter((id) => already.has(id));
  if (present.length === 0) return [];
  const lb = cloud.settings.loadBalancer;
  if (lb.type === "classic") {
    await awsCall(`deregister ${present.join(", ")} from ${lb.name}`, () =>
      cloud.aws.elb.send(new DeregisterInstancesFromLoadBalancerCommand({ LoadBalancerName: lb.name, Instances: present.map((InstanceId) => ({ InstanceId })) })),
    );
  } else {
    for (const arn of lb.targetGroupArns) {
      await awsCall(`deregister ${present.join(", ")} from ${arn}`, () =>
        cloud.aws.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: present.map((Id) => ({ Id, Port: lb.port })) })),
      );
    }
  }
  return present;
}

/** The load balancer's connection draining / deregistration delay, in seconds (0 when off). */
export async function drainingSeconds(cloud: Cloud): Promise<number> {
  const lb = cloud.settings.loadBalancer;
  if (lb.type === "classic") {
    const out = await awsCall(`read the attributes of ${lb.name}`, () => cloud.aws.elb.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerName: lb.name })));
    const draining = out.LoadBalancerAttributes?.ConnectionDraining;
    return draining?.Enabled ? (draining.Timeout ?? 300) : 0;
  }
  let longest = 0;
  for (const arn of lb.targetGroupArns) {
    const out = await awsCall(`read the attributes of ${arn}`, () => cloud.aws.elbv2.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: arn })));
    const value = out.Attributes?.find((a) => a.Key === "deregistration_delay.timeout_seconds")?.Value;
    longest = Math.max(longest, value === undefined ? 300 : Number(value));
  }
  return longest;
}

/** The DNS name clients reach the load balancer by. */
export async function loadBalancerDnsName(cloud: Cloud): Promise<string> {
  const lb = cloud.settings.loadBalancer;
  if (lb.type === "classic") {
    const out = await awsCall(`describe load balancer ${lb.name}`, () => cloud.aws.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.name] })));
    const name = out.LoadBalancerDescriptions?.[0]?.DNSName;
    if (!name) throw new UpgradeError({ what: `find the DNS name of ${lb.name}`, why: "the load balancer has none", permanent: true });
    return name;
  }
  const groups = await awsCall("describe the target groups", () => cloud.aws.elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [lb.targetGroupArns[0]!] })));
  const albArn = groups.TargetGroups?.[0]?.LoadBalancerArns?.[0];
  if (!albArn) throw new UpgradeError({ what: "find the ALB of the target groups", why: `${lb.targetGroupArns[0]} is attached to no load balancer`, permanent: true });
  const albs = await awsCall(`describe ${albArn}`, () => cloud.aws.elbv2.send(new DescribeAlbsCommand({ LoadBalancerArns: [albArn] })));
  return albs.LoadBalancers![0]!.DNSName!;
}

// ---- DNS ----

export interface RecordState {
  name: string;
  value?: string;
  ttl?: number;
}

const fqdn = (name: string) => (name.endsWith(".") ? name : `${name}.`);
const sameName = (a: string, b: string) => fqdn(a).toLowerCase() === fqdn(b).toLowerCase();

/** What each configured record points at now. */
export async function readRecords(cloud: Cloud): Promise<RecordState[]> {
  const { hostedZoneId, records } = cloud.settings.dns;
  const states: RecordState[] = [];
  for (const name of records) {
    const out = await awsCall(`read the DNS record ${name}`, () =>
      cloud.aws.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId, StartRecordName: fqdn(name), StartRecordType: "CNAME", MaxItems: 1 })),
    );
    const set = out.ResourceRecordSets?.find((s) => sameName(s.Name ?? "", name) && s.Type === "CNAME");
    states.push({ name, value: set?.ResourceRecords?.[0]?.Value?.replace(/\.$/, ""), ttl: set?.TTL });
  }
  return states;
}

export const pointsAt = (records: RecordState[], target: string) => records.every((r) => r.value?.toLowerCase() === target.toLowerCase().replace(/\.$/, ""));

/** UPSERTs every record to `target` (keeping each one's TTL) and waits until Route 53 reports INSYNC. */
export async function pointRecords(cloud: Cloud, target: string, ttl: number): Promise<void> {
  const { hostedZoneId, records } = cloud.settings.dns;
  const out = await awsCall(`point ${records.join(", ")} at ${target}`, () =>
    cloud.aws.route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: hostedZoneId,
        ChangeBatch: {
          Comment: `openedx ${cloud.settings.fleet} cut-over to ${cloud.settings.release}`,
          Changes: records.map((name) => ({ Action: "UPSERT", ResourceRecordSet: { Name: fqdn(name), Type: "CNAME", TTL: ttl, ResourceRecords: [{ Value: target }] } })),
        },
      }),
    ),
  );
  const changeId = out.ChangeInfo!.Id!;
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.dnsSyncSeconds * 1000,
    poll: async () => {
      const change = await awsCall(`read the status of DNS change ${changeId}`, () => cloud.aws.route53.send(new GetChangeCommand({ Id: changeId })));
      return { done: change.ChangeInfo?.Status === "INSYNC", seen: change.ChangeInfo?.Status };
    },
    onProgress: ({ seen, attempt }) => void (attempt === 1 || seen === "INSYNC" ? cloud.info(`DNS change ${changeId}: ${seen}`) : undefined),
    onTimeout: (seen) =>
      new UpgradeError({
        what: `wait until DNS change ${changeId} (${records.join(", ")} → ${target}) is INSYNC`,
        why: `Route 53 still reports ${seen ?? "nothing"} after ${cloud.settings.timing.dnsSyncSeconds}s`,
        hint: "check the change in Route 53; run the update again once it is INSYNC",
      }),
  });
}

/** The maintenance distribution's domain name (what the records point at during the window). */
export async function maintenanceDomain(cloud: Cloud): Promise<string> {
  const id = cloud.settings.maintenance.distributionId;
  const out = await awsCall(`read CloudFront distribution ${id}`, () => cloud.aws.cloudFront.send(new GetDistributionCommand({ Id: id })));
  const domain = out.Distribution?.DomainName;
  if (!domain) throw new UpgradeError({ what: `read CloudFront distribution ${id}`, why: "it has no domain name", permanent: true });
  return domain;
}

export async function putMaintenancePage(cloud: Cloud, html: string): Promise<void> {
  const { bucket, key } = cloud.settings.maintenance;
  await awsCall(`write the maintenance page s3://${bucket}/${key}`, () =>
    cloud.aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: html, ContentType: "text/html; charset=utf-8", CacheControl: "max-age=60" })),
  );
}

// ---- terminate ----

/** Terminates exactly these ids (never a filter) and waits until EC2 reports each `terminated`. */
export async function terminate(cloud: Cloud, ids: string[]): Promise<void> {
  if (ids.length > 0) {
    await awsCall(`terminate ${ids.join(", ")}`, () => cloud.aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids })));
  }
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.bootSeconds * 1000,
    poll: async () => {
      const seen = await describeInstances(cloud, ids);
      return { done: ids.every((id) => (seen.get(id)?.state ?? "terminated") === "terminated"), seen };
    },
    onTimeout: (seen) =>
      new UpgradeError({ what: `wait until ${ids.join(", ")} are terminated`, why: ids.map((id) => `${id} ${seen?.get(id)?.state}`).join(", ") }),
  });
}
