import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeInstancesCommand, DescribeLaunchTemplateVersionsCommand, DescribeSubnetsCommand, RegisterImageCommand } from "@aws-sdk/client-ec2";
import { CreateListenerCommand, CreateLoadBalancerCommand, CreateRuleCommand, CreateTargetGroupCommand, DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { CreateHostedZoneCommand } from "@aws-sdk/client-route-53";
import { CreateDistributionCommand } from "@aws-sdk/client-cloudfront";
import { awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { fleetContext, type FleetContext } from "../../workflows/openedx/context";
import { launchGreenFleet, switchLoadBalancers, terminateBlue } from "../../workflows/openedx/runbook";
import { Hosts } from "../../workflows/openedx/hosts";
import { parseFleetSettings, type FleetSettings } from "../../workflows/openedx/settings";
import { startSandbox, type Sandbox } from "../sandbox";

// An ASG-managed Open edX fleet (web nodes in a group attached to the lms and studio target groups,
// workers in a group of their own, as MIT's current deployment has them) cut over by the workflow's
// own steps against moto behind the fault proxy: green made from blue's launch template, attached;
// blue detached and scaled to zero. Not an `up` on the bed: the hosts are not booted here (moto's
// instances run nothing), so the web hosts' heartbeats are answered by a loopback stand-in that
// answers as edx-platform's /heartbeat does; SSH steps (2, 3) are not part of this test.
let bed: Sandbox;
let aws: AwsClients;
let settings: FleetSettings;
let heartbeat: http.Server;
const groups = { web: "edxapp-web-mitx-production", worker: "edxapp-worker-mitx-production" };
let targetGroups: string[];
let amis: { old: string; web: string; worker: string };
let templateId: string;

beforeAll(async () => {
  bed = await startSandbox({ ssh: false, pulumi: false });
  aws = createAwsClients(awsSettingsFromEnv(bed.env));
  const subnets = (await aws.ec2.send(new DescribeSubnetsCommand({}))).Subnets!;
  const vpcId = subnets[0]!.VpcId!;
  const twoAzs = [...new Map(subnets.filter((s) => s.VpcId === vpcId).map((s) => [s.AvailabilityZone, s.SubnetId!])).values()].slice(0, 2);
  const image = async (name: string) => (await aws.ec2.send(new RegisterImageCommand({ Name: name }))).ImageId!;
  amis = { old: await image("edxapp-redwood-3"), web: await image("edxapp-sumac-3-web"), worker: await image("edxapp-sumac-3-worker") };
  const template = await aws.ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: "edxapp-mitx-production",
      LaunchTemplateData: {
        ImageId: amis.old,
        InstanceType: "t3.large",
        IamInstanceProfile: { Arn: "arn:aws:iam::123456789012:instance-profile/edxapp" },
        // No UserData: moto stores a CreateLaunchTemplateVersion's UserData in a form its own ASG
        // launch then asserts on (moto/ec2/models/launch_templates.py user_data); AWS has no such
        // limit. The instance path's user data copy is held in openedx-cutover.test.ts.
        BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 50, Encrypted: true } }],
      },
    }),
  );
  templateId = template.LaunchTemplate!.LaunchTemplateId!;
  const alb = (await aws.elbv2.send(new CreateLoadBalancerCommand({ Name: "edxapp-mitx-production", Subnets: twoAzs }))).LoadBalancers![0]!;
  targetGroups = [];
  for (const name of ["lms", "studio"]) {
    const tg = (await aws.elbv2.send(new CreateTargetGroupCommand({ Name: `edxapp-${name}`, Protocol: "HTTP", Port: 8000, VpcId: vpcId, TargetType: "instance" }))).TargetGroups![0]!;
    targetGroups.push(tg.TargetGroupArn!);
  }
  // One ALB, lms by default and studio by host name (each site its own target group and records).
  const listener = (await aws.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancerArn, Protocol: "HTTP", Port: 80, DefaultActions: [{ Type: "forward", TargetGroupArn: targetGroups[0] }] }))).Listeners![0]!;
  await aws.elbv2.send(new CreateRuleCommand({ ListenerArn: listener.ListenerArn, Priority: 10, Conditions: [{ Field: "host-header", Values: ["studio.mitx.example.edu"] }], Actions: [{ Type: "forward", TargetGroupArn: targetGroups[1] }] }));
  for (const [role, size, tgs] of [["web", 2, targetGroups], ["worker", 1, []]] as const) {
    await aws.autoScaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: groups[role],
        LaunchTemplate: { LaunchTemplateId: templateId, Version: "1" },
        MinSize: size,
        MaxSize: size + 2,
        DesiredCapacity: size,
        VPCZoneIdentifier: twoAzs.join(","),
        TargetGroupARNs: [...tgs],
        Tags: [{ Key: "edxapp_node_type", Value: role, PropagateAtLaunch: true, ResourceId: groups[role], ResourceType: "auto-scaling-group" }],
      }),
    );
  }
  const zone = await aws.route53.send(new CreateHostedZoneCommand({ Name: "mitx.example.edu", CallerReference: "z" }));
  const dist = await aws.cloudFront.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: "m",
        Comment: "maintenance",
        Enabled: true,
        Origins: { Quantity: 1, Items: [{ Id: "m", DomainName: "m.s3.amazonaws.com", S3OriginConfig: { OriginAccessIdentity: "" } }] },
        DefaultCacheBehavior: { TargetOriginId: "m", ViewerProtocolPolicy: "allow-all", MinTTL: 0, ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } }, TrustedSigners: { Enabled: false, Quantity: 0 } },
      },
    }),
  );
  // The web hosts' heartbeat, as edx-platform answers it (a stand-in: moto's instances run nothing).
  heartbeat = http.createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sql: { status: true, message: "OK" } })));
  await new Promise<void>((r) => heartbeat.listen(0, "127.0.0.1", r));
  const hb = `http://127.0.0.1:${(heartbeat.address() as AddressInfo).port}/heartbeat`;
  const parsed = parseFleetSettings({
    release: "sumac.3",
    phase: "live",
    fleet: "mitx-production",
    amis: { web: amis.web, worker: amis.worker },
    blue: { release: "redwood.3", web: { autoScalingGroup: groups.web }, worker: { autoScalingGroup: groups.worker } },
    launchTags: { edxapp_release: "{release}" },
    sites: [
      { name: "lms", loadBalancer: { type: "alb", targetGroupArns: [targetGroups[0]], port: 8000 }, records: ["lms.mitx.example.edu"], verify: { checks: [{ url: "/heartbeat" }] } },
      { name: "studio", loadBalancer: { type: "alb", targetGroupArns: [targetGroups[1]], port: 8000 }, records: ["studio.mitx.example.edu"] },
    ],
    dns: { hostedZoneId: zone.HostedZone!.Id!.replace("/hostedzone/", "") },
    maintenance: { distributionId: dist.Distribution!.Id!, bucket: "b", windowStart: "2026-12-19T13:00:00Z", windowMinutes: 60, contact: "x" },
    ssh: { user: "u", privateKey: "k" },
    heartbeats: { lms: { url: hb }, cms: false, workers: false },
    timing: { pollSeconds: 0.1, bootSeconds: 20, healthySeconds: 10, maxWaitSeconds: 1 },
  });
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  settings = parsed.settings;
}, 120_000);
afterAll(async () => {
  heartbeat?.close();
  aws?.destroy();
  await bed?.stop();
});

const context = (phase: "prepared" | "live") => {
  const info = async () => undefined;
  return fleetContext({ ...settings, phase }, { aws, settings: { ...settings, phase }, info, pollMs: 100 }, new Hosts(settings), info, info, phase);
};
const groupOf = async (name: string) => (await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups?.[0];
const targets = async (arn: string) => ((await aws.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }))).TargetHealthDescriptions ?? []).map((d) => d.Target!.Id!).sort();
const running = async (imageId: string) =>
  ((await aws.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "image-id", Values: [imageId] }, { Name: "instance-state-name", Values: ["pending", "running"] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!).sort();

test("an ASG fleet on two target groups: green is a group from blue's launch template with the new AMI, attached to both; blue detached and scaled to zero; nothing terminated by id, nothing old launched", async () => {
  const blueWeb = (await groupOf(groups.web))!.Instances!.map((i) => i.InstanceId!).sort();
  expect(blueWeb).toHaveLength(2);
  for (const arn of targetGroups) expect(await targets(arn)).toEqual(blueWeb);

  // prepared's launch: green as groups
  const prep: FleetContext = await context("prepared");
  expect(prep.blue.web.map((i) => i.id).sort()).toEqual(blueWeb);
  expect(await launchGreenFleet.run(prep)).toMatch(/edxapp-web-mitx-production-sumac-3 \(i-/);
  const greenGroup = (await groupOf("edxapp-web-mitx-production-sumac-3"))!;
  expect(greenGroup.TargetGroupARNs ?? []).toEqual([]); // not serving before the window
  expect(greenGroup.LaunchTemplate?.LaunchTemplateId).toBe(templateId);
  const versions = (await aws.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: templateId, Versions: [greenGroup.LaunchTemplate!.Version!] }))).LaunchTemplateVersions!;
  expect(versions[0]!.LaunchTemplateData).toMatchObject({ ImageId: amis.web, InstanceType: "t3.large", IamInstanceProfile: { Arn: "arn:aws:iam::123456789012:instance-profile/edxapp" } });
  expect(versions[0]!.LaunchTemplateData!.BlockDeviceMappings).toEqual([{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 50, Encrypted: true } }]);
  expect(Object.fromEntries((greenGroup.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({ edxapp_node_type: "web", edxapp_release: "sumac.3", "openedx:release": "sumac.3", "openedx:role": "web" });
  const greenWeb = (await running(amis.web));
  expect(greenWeb).toHaveLength(2);
  expect(await running(amis.worker)).toHaveLength(1);
  // a second launch finds the groups (a re-run)
  const again = await context("prepared");
  expect(await launchGreenFleet.check!(again)).toMatch(/green is there/);

  // the window's step 4 and 7
  const live = await context("live");
  expect(live.groups).toEqual({ blue: groups, green: { web: "edxapp-web-mitx-production-sumac-3", worker: "edxapp-worker-mitx-production-sumac-3" } });
  bed.aws!.clearCalls();
  const switched = await switchLoadBalancers.run(live);
  expect(switched).toMatch(/lms: registered group edxapp-web-mitx-production-sumac-3/);
  for (const arn of targetGroups) expect(await targets(arn)).toEqual(greenWeb);
  const calls = bed.aws!.calls().map((c) => c.action);
  // blue left the target groups only after green was attached and reported healthy
  const attached = calls.lastIndexOf("AttachLoadBalancerTargetGroups");
  const detached = calls.indexOf("DetachLoadBalancerTargetGroups");
  expect(attached).toBeGreaterThanOrEqual(0);
  expect(calls.slice(attached, detached)).toContain("DescribeTargetHealth");
  expect((await groupOf(groups.web))!.TargetGroupARNs).toEqual([]);

  expect(await terminateBlue.run(live)).toMatch(/edxapp-web-mitx-production scaled to zero .*edxapp-worker-mitx-production scaled to zero/);
  const after = bed.aws!.calls();
  expect(after.filter((c) => c.action === "TerminateInstances")).toEqual([]);
  for (const name of Object.values(groups)) expect([(await groupOf(name))!.Instances, (await groupOf(name))!.DesiredCapacity]).toEqual([[], 0]);
  expect(await running(amis.old)).toEqual([]);
  for (const arn of targetGroups) expect(await targets(arn)).toEqual(greenWeb);
  expect(await terminateBlue.check!(live)).toBe("blue is terminated");
}, 300_000);

test("launching green beside an ASG-owned blue instance is refused in favour of a group or adoption", async () => {
  const { launchInputFrom } = await import("../../workflows/openedx/instances");
  const live = await context("live");
  // blue's group is scaled to zero by now: green's instances belong to a group too
  const green = live.green.web[0]!;
  await expect(launchInputFrom(live.cloud, "web", green)).rejects.toThrow(/belongs to the Auto Scaling group edxapp-web-mitx-production-sumac-3.*set blue\.web\.autoScalingGroup .* or adopt green by selector/s);
});

test("waiting for green to run fails at once, naming it, when an instance is stopped or terminated (not at the boot deadline)", async () => {
  const { waitRunning } = await import("../../workflows/openedx/instances");
  const { RunInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } = await import("@aws-sdk/client-ec2");
  const launched = await aws.ec2.send(new RunInstancesCommand({ ImageId: amis.web, MinCount: 2, MaxCount: 2, InstanceType: "t3.micro" }));
  const [gone, stopped] = launched.Instances!.map((i) => i.InstanceId!);
  await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone!] }));
  await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!] }));
  const cloud = (await context("live")).cloud; // bootSeconds 20
  // the deadline's error would say "after 20s: …"; this one names the states at the first look
  await expect(waitRunning(cloud, [gone!, stopped!])).rejects.toThrow(new RegExp(`${gone} is terminated, ${stopped} is (stopping|stopped): it will not run`));
});
