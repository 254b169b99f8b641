import * as fs from "node:fs";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, DescribeLaunchTemplateVersionsCommand } from "@aws-sdk/client-ec2";
import { awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { fleetContext } from "../../workflows/openedx/context";
import { Hosts } from "../../workflows/openedx/hosts";
import { parseFleetSettings, type FleetSettings } from "../../workflows/openedx/settings";
import { groupInstances, startOpenEdxFleet, type OpenEdxFixture } from "../sandbox/openedx";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// An ASG-managed Open edX fleet as MIT's current deployment has it (web nodes in a group attached
// to an ALB's lms and studio target groups, workers in a group of their own; test/sandbox/
// openedxAws.ts createAsgFleet), upgraded redwood.3 → sumac.3 by the OpenEdxFleet resource of an
// own stack through two real `up`s of the driver: moto behind the fault proxy, the groups'
// instances booted as hosts with a real supervisord and the fixture app on MariaDB, the bed's
// target-group data plane and its health compensation (a new target `initial` for 3 answers).
let bed: Sandbox;
let fleet: OpenEdxFixture;
let own: OwnStack;
let aws: AwsClients;

const up = () => upOwnStack(bed, own);
const configure = (release: string, phase: "prepared" | "live") => own.setSystems({ mitx: fleet.systemConfig({ release, phase, keyConfig: "edxSshKey" }) });

beforeAll(async () => {
  bed = await startSandbox({ motoEnv: { MOTO_ENABLE_AMI_VALIDATION: "true" } });
  fleet = await startOpenEdxFleet(bed, { layout: "asg" });
  aws = createAwsClients(awsSettingsFromEnv(bed.env));
  own = await ownStack(bed, "mitxasg", { edxSshKey: { value: fs.readFileSync(bed.sshd!.privateKeyPath, "utf8"), secret: true } });
  await configure("redwood.3", "live");
  const adopt = await up();
  expect([adopt.result.exitCode, adopt.result.error]).toEqual([0, undefined]);
}, 600_000);
afterAll(async () => {
  aws?.destroy();
  await own?.remove();
  await fleet?.stop();
  await bed?.stop();
});

const groupOf = async (name: string) => (await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups?.[0];
const running = async (imageId: string) =>
  ((await aws.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "image-id", Values: [imageId] }, { Name: "instance-state-name", Values: ["pending", "running"] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!).sort();
const release = async (site: "lms" | "studio") => /release ([^<\s]+)</.exec((await fleet.throughLb("/", site)).body)?.[1];

test("an ASG fleet on two target groups, redwood.3 → sumac.3 in two ups: green is a group from blue's launch template with the new AMI, attached to both once each reports green healthy; blue detached and scaled to zero; nothing terminated by id, nothing old launched", async () => {
  const asg = fleet.asg!;
  const blue = { web: await groupInstances(aws.autoScaling, asg.groups.web), worker: await groupInstances(aws.autoScaling, asg.groups.worker) };
  expect([blue.web.length, blue.worker.length]).toEqual([2, 1]);
  for (const site of ["lms", "studio"] as const) expect(await fleet.registered(site)).toEqual(blue.web);
  expect([await release("lms"), await release("studio")]).toEqual(["redwood.3", "redwood.3"]);

  // up 1: prepared, green as groups (not serving before the window)
  await configure("sumac.3", "prepared");
  const prepared = await up();
  expect([prepared.result.exitCode, prepared.result.error]).toEqual([0, undefined]);
  const greenGroups = { web: `${asg.groups.web}-sumac-3`, worker: `${asg.groups.worker}-sumac-3` };
  const greenWeb = (await groupOf(greenGroups.web))!;
  expect(greenWeb.TargetGroupARNs ?? []).toEqual([]);
  const template = (await groupOf(asg.groups.web))!.LaunchTemplate!;
  expect(greenWeb.LaunchTemplate?.LaunchTemplateId).toBe(template.LaunchTemplateId);
  const version = (await aws.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.LaunchTemplateId, Versions: [greenWeb.LaunchTemplate!.Version!] }))).LaunchTemplateVersions![0]!;
  expect(version.LaunchTemplateData).toMatchObject({ ImageId: fleet.amis["sumac.3"].web, InstanceType: "t3.large", IamInstanceProfile: { Arn: "arn:aws:iam::123456789012:instance-profile/edx-instance-role" } });
  expect(version.LaunchTemplateData!.BlockDeviceMappings).toEqual([{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 50, Encrypted: true } }]);
  expect(Object.fromEntries((greenWeb.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({ edxapp_node_type: "web", edxapp_release: "sumac.3", "openedx:release": "sumac.3", "openedx:role": "web" });
  const green = { web: await groupInstances(aws.autoScaling, greenGroups.web), worker: await groupInstances(aws.autoScaling, greenGroups.worker) };
  expect([green.web.length, green.worker.length]).toEqual([2, 1]);
  for (const id of [...green.web, ...green.worker]) {
    const host = await fleet.waitBooted(id);
    expect([host.release, Object.values(fleet.processStatus(id)).every((s) => s === "STOPPED")]).toEqual(["sumac.3", true]);
  }
  // the smoke test asked each green web host's lms and cms heartbeats, and the workers' Celery check through ?extended
  const asked = fleet.asked();
  for (const id of green.web) for (const path of ["lms/heartbeat", "cms/heartbeat"]) expect([id, path, asked.includes(`${id} ${path}`)]).toEqual([id, path, true]);
  expect(asked.filter((a) => green.web.some((id) => a === `${id} lms/heartbeat?extended`)).length).toBeGreaterThanOrEqual(1);
  expect([await release("lms"), await release("studio")]).toEqual(["redwood.3", "redwood.3"]);

  // up 2: live
  bed.aws!.clearCalls();
  await configure("sumac.3", "live");
  const live = await up();
  expect([live.result.exitCode, live.result.error]).toEqual([0, undefined]);
  for (const step of ["1-dns-maintenance", "2-stop-blue", "3-migrate-start-green", "4-switch-load-balancer", "5-verify", "6-dns-load-balancer", "7-terminate-blue"]) expect(live.log).toMatch(new RegExp(`live ${step} \\[[^\\]]+\\]: done`));
  const calls = bed.aws!.calls();
  // each target group reported green `initial` for its first 3 answers (the bed's compensation), and
  // blue's group was detached only after the last answer about green (healthy)
  const attached = calls.findIndex((c) => c.action === "AttachLoadBalancerTargetGroups" && c.params.AutoScalingGroupName === greenGroups.web);
  const detached = calls.findIndex((c) => c.action === "DetachLoadBalancerTargetGroups" && c.params.AutoScalingGroupName === asg.groups.web);
  expect(attached).toBeGreaterThanOrEqual(0);
  expect(detached).toBeGreaterThan(attached);
  for (const site of ["lms", "studio"] as const) {
    const arn = asg.targetGroupArns[site];
    for (const id of green.web) expect([site, id, fleet.outOfService().filter((o) => o.lb === arn && o.instance === id && /registration is still in progress/.test(o.reason)).length]).toEqual([site, id, 3]);
    const health = calls.map((c, i) => ({ c, i })).filter(({ c, i }) => i > attached && c.action === "DescribeTargetHealth" && c.params.TargetGroupArn === arn && Object.entries(c.params).some(([k, v]) => /^Targets\.member\.\d+\.Id$/.test(k) && green.web.includes(v)));
    expect(health.length).toBeGreaterThanOrEqual(4);
    expect(detached).toBeGreaterThan(health.at(-1)!.i);
    expect(await fleet.registered(site)).toEqual(green.web);
  }
  // blue: detached and scaled to zero by its group; no TerminateInstances at all
  expect(calls.filter((c) => c.action === "TerminateInstances")).toEqual([]);
  for (const name of Object.values(asg.groups)) {
    const g = (await groupOf(name))!;
    expect([name, g.Instances, g.DesiredCapacity, g.TargetGroupARNs ?? []]).toEqual([name, [], 0, []]);
  }
  expect(await running(fleet.amis["redwood.3"].web)).toEqual([]);
  expect(await running(fleet.amis["redwood.3"].worker)).toEqual([]);
  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("sumac.3");
  for (let i = 0; i < 4; i++) expect([await release("lms"), await release("studio")]).toEqual(["sumac.3", "sumac.3"]);
  expect(await fleet.records()).toEqual({ "lms.mitx.example.edu": asg.albDnsName, "studio.mitx.example.edu": asg.albDnsName });
  expect(fleet.migrations()).toContain("courseware.0002_learner_home");
  for (const id of [...green.web, ...green.worker]) expect(Object.values(fleet.processStatus(id)).every((s) => s === "RUNNING")).toBe(true);
}, 600_000);

/** The fixture's settings with an inline key, for the workflow's functions called directly. */
const context = async (phase: "prepared" | "live") => {
  const { kind: _kind, ...config } = fleet.systemConfig({ release: "sumac.3", phase, keyConfig: "unused" });
  const parsed = parseFleetSettings({ ...config, ssh: { user: "u", privateKey: "k" } });
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  const settings: FleetSettings = parsed.settings;
  const info = async () => undefined;
  return fleetContext(settings, { aws, settings, info, pollMs: 100 }, new Hosts(settings), info, info, phase);
};

test("launching green beside an ASG-owned blue instance is refused in favour of a group or adoption", async () => {
  const { launchInputFrom } = await import("../../workflows/openedx/instances");
  const live = await context("live");
  // blue's group is scaled to zero by now: green's instances belong to a group too
  const green = live.green.web[0]!;
  await expect(launchInputFrom(live.cloud, "web", green)).rejects.toThrow(/belongs to the Auto Scaling group edxapp-web-mitx-production-sumac-3.*set blue\.web\.autoScalingGroup .* or adopt green by selector/s);
});

test("waiting for green to run fails at once, naming it, when an instance is stopped or terminated (not at the boot deadline)", async () => {
  const { waitRunning } = await import("../../workflows/openedx/instances");
  const { RegisterImageCommand, RunInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } = await import("@aws-sdk/client-ec2");
  // an AMI of no release: the bed boots no host for these
  const image = (await aws.ec2.send(new RegisterImageCommand({ Name: "not-openedx" }))).ImageId!;
  const launched = await aws.ec2.send(new RunInstancesCommand({ ImageId: image, MinCount: 2, MaxCount: 2, InstanceType: "t3.micro" }));
  const [gone, stopped] = launched.Instances!.map((i) => i.InstanceId!);
  await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone!] }));
  await aws.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped!] }));
  const cloud = (await context("live")).cloud; // bootSeconds 30
  // the deadline's error would say "after 30s: …"; this one names the states at the first look
  await expect(waitRunning(cloud, [gone!, stopped!])).rejects.toThrow(new RegExp(`${gone} is terminated, ${stopped} is (stopping|stopped): it will not run`));
});
