import { DescribeSubnetsCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  ModifyTargetGroupAttributesCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand } from "@aws-sdk/client-route-53";
import { awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { pointRecords, readRecords, type Cloud } from "../../workflows/openedx/cloud";
import { deregister, drainingSeconds, instanceHealth, loadBalancerDnsName, register, registeredInstances } from "../../workflows/openedx/loadBalancers";
import { parseFleetSettings, type FleetSettings, type Site } from "../../workflows/openedx/settings";
import { startSandbox, type Sandbox } from "../sandbox";

// The AWS side of the Open edX cut-over against moto behind the fault proxy, without Pulumi:
// an ALB's target groups (the fleet tests use a classic ELB), and Route 53 under PENDING polls
// and throttling.
let bed: Sandbox;
let aws: AwsClients;
let cloud: Cloud;
let instances: string[];
let albDns: string;
let site: Site;
const LMS = ["lms.mitx.example.edu"];

beforeAll(async () => {
  bed = await startSandbox({ ssh: false, pulumi: false });
  aws = createAwsClients(awsSettingsFromEnv(bed.env));
  const subnets = (await aws.ec2.send(new DescribeSubnetsCommand({}))).Subnets!;
  const vpcId = subnets[0]!.VpcId!;
  const twoAzs = [...new Map(subnets.filter((s) => s.VpcId === vpcId).map((s) => [s.AvailabilityZone, s.SubnetId!])).values()].slice(0, 2);
  const run = await aws.ec2.send(new RunInstancesCommand({ ImageId: "ami-12c6146b", InstanceType: "t3.large", MinCount: 3, MaxCount: 3, SubnetId: twoAzs[0] }));
  instances = run.Instances!.map((i) => i.InstanceId!);
  const alb = (await aws.elbv2.send(new CreateLoadBalancerCommand({ Name: "mitx-alb", Subnets: twoAzs }))).LoadBalancers![0]!;
  albDns = alb.DNSName!;
  const groups: string[] = [];
  for (const name of ["lms", "cms"]) {
    const tg = (await aws.elbv2.send(new CreateTargetGroupCommand({ Name: `mitx-${name}`, Protocol: "HTTP", Port: 8000, VpcId: vpcId, TargetType: "instance" }))).TargetGroups![0]!;
    groups.push(tg.TargetGroupArn!);
  }
  await aws.elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: groups[1]!, Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "2" }] }));
  await aws.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancerArn, Protocol: "HTTP", Port: 80, DefaultActions: [{ Type: "forward", TargetGroupArn: groups[0] }] }));
  const zone = await aws.route53.send(new CreateHostedZoneCommand({ Name: "mitx.example.edu", CallerReference: "z" }));
  const hostedZoneId = zone.HostedZone!.Id!.replace("/hostedzone/", "");
  await aws.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: hostedZoneId,
      ChangeBatch: { Changes: [{ Action: "UPSERT", ResourceRecordSet: { Name: "lms.mitx.example.edu.", Type: "CNAME", TTL: 300, ResourceRecords: [{ Value: albDns }] } }] },
    }),
  );
  const parsed = parseFleetSettings({
    release: "sumac.3",
    phase: "live",
    fleet: "mitx",
    amis: { web: "ami-0123456789abcdef0", worker: "ami-0123456789abcdef1" },
    blue: { release: "redwood.3", web: [instances[0]] },
    sites: [{ name: "lms", loadBalancer: { type: "alb", targetGroupArns: groups, port: 8000 }, records: LMS, verify: { checks: [{ url: "/" }] } }],
    dns: { hostedZoneId },
    maintenance: { distributionId: "E1", bucket: "b", windowStart: "2026-12-19T13:00:00Z", windowMinutes: 60, contact: "x" },
    ssh: { user: "u", privateKey: "k" },
    timing: { pollSeconds: 0.1, dnsSyncSeconds: 3 },
  });
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  const settings: FleetSettings = parsed.settings;
  cloud = { aws, settings, info: async () => undefined, pollMs: 100 };
  site = settings.sites[0]!;
}, 120_000);
afterAll(async () => {
  aws?.destroy();
  await bed?.stop();
});

test("ALB target groups: register only what is missing, in every group; deregister; the longest deregistration delay; the ALB's DNS name", async () => {
  expect(await register(cloud, site, [instances[1]!, instances[2]!])).toEqual([instances[1], instances[2]]);
  bed.aws!.clearCalls();
  expect(await register(cloud, site, [instances[1]!, instances[2]!])).toEqual([]);
  expect(bed.aws!.calls().filter((c) => c.action === "RegisterTargets")).toHaveLength(0);
  expect([...(await registeredInstances(cloud, site))].sort()).toEqual([instances[1], instances[2]].sort());
  expect(await deregister(cloud, site, [instances[1]!, instances[0]!])).toEqual([instances[1]]);
  expect([...(await registeredInstances(cloud, site))]).toEqual([instances[2]]);
  // the lms group keeps AWS's default (300 s), the cms group was set to 2 s: the longest counts
  expect(await drainingSeconds(cloud, site)).toBe(300);
  expect(await loadBalancerDnsName(cloud, site)).toBe(albDns);
  // the target groups' own health view (moto: healthy for a registered running instance)
  const health = await instanceHealth(cloud, site, [instances[2]!]);
  expect(health.get(instances[2]!)).toEqual({ healthy: true, state: "healthy" });
});

test("Route 53: a change is awaited through PENDING polls until INSYNC; the record keeps its TTL", async () => {
  bed.aws!.route53PendingPolls(3);
  bed.aws!.clearCalls();
  await pointRecords(cloud, LMS, "d111111abcdef8.cloudfront.net", 300);
  expect(bed.aws!.calls().filter((c) => c.action === "GetChange")).toHaveLength(4);
  expect(await readRecords(cloud, LMS)).toEqual([{ name: "lms.mitx.example.edu", value: "d111111abcdef8.cloudfront.net", ttl: 300 }]);
  bed.aws!.route53PendingPolls(0);
});

test("Route 53 throttling: the SDK retries within its budget; beyond it the error says throttled and what to do", async () => {
  bed.aws!.clearCalls();
  bed.aws!.inject({ action: "ChangeResourceRecordSets", kind: "throttle", times: 2 });
  await pointRecords(cloud, LMS, albDns, 300);
  expect(bed.aws!.calls().filter((c) => c.action === "ChangeResourceRecordSets").map((c) => c.status)).toEqual([400, 400, 200]);

  bed.aws!.inject({ action: "ChangeResourceRecordSets", kind: "throttle", times: 3 });
  await expect(pointRecords(cloud, LMS, "d111111abcdef8.cloudfront.net", 300)).rejects.toThrow(
    /could not point lms\.mitx\.example\.edu at d111111abcdef8\.cloudfront\.net: Throttling: Rate exceeded \(after 3 attempts\)\n  hint: AWS is throttling/,
  );
  expect((await readRecords(cloud, LMS))[0]!.value).toBe(albDns);
});
