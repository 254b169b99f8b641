import {
  DescribeInstanceHealthCommand,
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
import { awsCall } from "../../lib/aws";
import { UpgradeError } from "../../lib/errors";
import { pollUntil } from "../../lib/wait";
import type { Cloud } from "./cloud";
import type { LoadBalancerSettings, Site } from "./settings";

/**
 * One site's load balancer (a classic ELB, or an ALB's target groups): what it has registered,
 * registering and deregistering (never twice), its own health view of each instance, its draining
 * time and DNS name. Only instances are touched: listeners, health checks and stickiness policies
 * stay as the operator made them.
 */
const lbName = (lb: LoadBalancerSettings) => (lb.type === "classic" ? lb.name : lb.targetGroupArns.join(", "));

/** The instance ids the load balancer has registered and not draining (for an ALB: in every target group). */
export async function registeredInstances(cloud: Cloud, site: Site): Promise<Set<string>> {
  const lb = site.loadBalancer;
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
export async function register(cloud: Cloud, site: Site, ids: string[]): Promise<string[]> {
  const already = await registeredInstances(cloud, site);
  const missing = ids.filter((id) => !already.has(id));
  if (missing.length === 0) return [];
  const lb = site.loadBalancer;
  if (lb.type === "classic") {
    await awsCall(`register ${missing.join(", ")} with ${lb.name}`, () =>
      cloud.aws.elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: lb.name, Instances: missing.map((InstanceId) => ({ InstanceId })) })),
    );
  } else {
    for (const arn of lb.targetGroupArns) {
      await awsCall(`register ${missing.join(", ")} in ${arn}`, () => cloud.aws.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: missing.map((Id) => ({ Id, Port: lb.port })) })));
    }
  }
  return missing;
}

export async function deregister(cloud: Cloud, site: Site, ids: string[]): Promise<string[]> {
  const already = await registeredInstances(cloud, site);
  const present = ids.filter((id) => already.has(id));
  if (present.length === 0) return [];
  const lb = site.loadBalancer;
  if (lb.type === "classic") {
    await awsCall(`deregister ${present.join(", ")} from ${lb.name}`, () =>
      cloud.aws.elb.send(new DeregisterInstancesFromLoadBalancerCommand({ LoadBalancerName: lb.name, Instances: present.map((InstanceId) => ({ InstanceId })) })),
    );
  } else {
    for (const arn of lb.targetGroupArns) {
      await awsCall(`deregister ${present.join(", ")} from ${arn}`, () => cloud.aws.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: present.map((Id) => ({ Id, Port: lb.port })) })));
    }
  }
  return present;
}

/** The load balancer's own view of each instance: InService / healthy, or the state and reason it gives. */
export async function instanceHealth(cloud: Cloud, site: Site, ids: string[]): Promise<Map<string, { healthy: boolean; state: string }>> {
  const lb = site.loadBalancer;
  const seen = new Map<string, { healthy: boolean; state: string }>();
  if (lb.type === "classic") {
    const out = await awsCall(`read the instance health of ${lb.name}`, () =>
      cloud.aws.elb.send(new DescribeInstanceHealthCommand({ LoadBalancerName: lb.name, Instances: ids.map((InstanceId) => ({ InstanceId })) })),
    );
    for (const s of out.InstanceStates ?? []) {
      const reason = s.Description && s.Description !== "N/A" ? ` (${s.Description})` : "";
      seen.set(s.InstanceId!, { healthy: s.State === "InService", state: `${s.State}${reason}` });
    }
    return seen;
  }
  for (const arn of lb.targetGroupArns) {
    const out = await awsCall(`read the target health of ${arn}`, () => cloud.aws.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id, Port: lb.port })) })));
    for (const d of out.TargetHealthDescriptions ?? []) {
      const id = d.Target!.Id!;
      const healthy = d.TargetHealth?.State === "healthy";
      const before = seen.get(id);
      const state = `${d.TargetHealth?.State}${d.TargetHealth?.Reason ? ` (${d.TargetHealth.Reason})` : ""}`;
      if (!before || (before.healthy && !healthy)) seen.set(id, { healthy, state });
    }
  }
  return seen;
}

/** Waits until the load balancer itself reports every one of `ids` healthy (InService / healthy), with progress. */
export async function waitInService(cloud: Cloud, site: Site, ids: string[]): Promise<number> {
  const { healthySeconds } = cloud.settings.timing;
  let polls = 0;
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: healthySeconds * 1000,
    poll: async () => {
      polls++;
      const seen = await instanceHealth(cloud, site, ids);
      return { done: ids.every((id) => seen.get(id)?.healthy), seen };
    },
    onProgress: ({ seen, attempt }) => void (attempt % 10 === 1 ? cloud.info(`${site.name} load balancer: ${ids.map((id) => `${id} ${seen.get(id)?.state ?? "not listed"}`).join(", ")}`) : undefined),
    onTimeout: (seen) =>
      new UpgradeError({
        what: `wait until the ${site.name} load balancer (${lbName(site.loadBalancer)}) reports green healthy`,
        why: `after ${healthySeconds}s it reports ${ids.map((id) => `${id} ${seen?.get(id)?.state ?? "not listed"}`).join(", ")}`,
        hint: "look at the green hosts (the load balancer's health check target) and raise timing.healthySeconds if they start slowly; blue was not deregistered",
      }),
  });
  return polls;
}

/** The load balancer's connection draining / deregistration delay, in seconds (0 when off). */
export async function drainingSeconds(cloud: Cloud, site: Site): Promise<number> {
  const lb = site.loadBalancer;
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

/** The DNS name clients reach the site's load balancer by. */
export async function loadBalancerDnsName(cloud: Cloud, site: Site): Promise<string> {
  const lb = site.loadBalancer;
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
