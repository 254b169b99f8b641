import {
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from "@aws-sdk/client-auto-scaling";
import { GetMetricDataCommand, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { CreateLaunchTemplateCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { awsCall, awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { UpgradeError } from "../../lib/errors";
import { startSandbox, type Sandbox } from "../sandbox";

// moto behind the fault-injecting proxy; the SDK clients are the production ones from lib/aws.
let bed: Sandbox;
let aws: AwsClients;

beforeAll(async () => {
  bed = await startSandbox({ ssh: false, pulumi: false });
  aws = createAwsClients(awsSettingsFromEnv(bed.env));
});
afterAll(async () => {
  aws?.destroy();
  await bed?.stop();
});
beforeEach(() => {
  bed.aws!.clearFaults();
  bed.aws!.clearCalls();
});

async function workerAsg(name: string, size: number): Promise<void> {
  const images = await aws.ec2.send(new DescribeImagesCommand({}));
  const imageId = images.Images?.[0]?.ImageId;
  expect(imageId).toBeDefined();
  await aws.ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: `${name}-lt`,
      LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" },
    }),
  );
  await aws.autoScaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      LaunchTemplate: { LaunchTemplateName: `${name}-lt`, Version: "$Latest" },
      MinSize: 0,
      MaxSize: size,
      DesiredCapacity: size,
      AvailabilityZones: ["us-east-1a"],
      NewInstancesProtectedFromScaleIn: true,
    }),
  );
}

test("an ASG from a launch template has instances protected from scale-in", async () => {
  await workerAsg("workers-proof-asg", 3);
  const { AutoScalingGroups } = await aws.autoScaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["workers-proof-asg"] }),
  );
  const instances = AutoScalingGroups?.[0]?.Instances ?? [];
  expect(instances).toHaveLength(3);
  expect(instances.every((i) => i.ProtectedFromScaleIn === true)).toBe(true);
  expect(AutoScalingGroups?.[0]?.LaunchTemplate?.LaunchTemplateName).toBe("workers-proof-asg-lt");
});

test("SlotsUtilization datapoints are put and read back with GetMetricData", async () => {
  const now = new Date();
  const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
  const dimensions = [{ Name: "AutoScalingGroupName", Value: "workers-proof-asg" }];
  await aws.cloudWatch.send(
    new PutMetricDataCommand({
      Namespace: "CodeOcean",
      MetricData: [
        { MetricName: "SlotsUtilization", Dimensions: dimensions, Timestamp: minutesAgo(3), Value: 75 },
        { MetricName: "SlotsUtilization", Dimensions: dimensions, Timestamp: minutesAgo(2), Value: 40 },
        { MetricName: "SlotsUtilization", Dimensions: dimensions, Timestamp: minutesAgo(1), Value: 0 },
      ],
    }),
  );
  const result = await aws.cloudWatch.send(
    new GetMetricDataCommand({
      StartTime: minutesAgo(10),
      EndTime: new Date(now.getTime() + 60_000),
      ScanBy: "TimestampDescending",
      MetricDataQueries: [
        {
          Id: "slots",
          MetricStat: {
            Metric: { Namespace: "CodeOcean", MetricName: "SlotsUtilization", Dimensions: dimensions },
            Period: 60,
            Stat: "Minimum",
          },
        },
      ],
    }),
  );
  const series = result.MetricDataResults?.[0];
  expect(series?.Id).toBe("slots");
  expect(series?.Values).toEqual([0, 40, 75]);
});

test("a call throttled twice succeeds through the SDK's own retry", async () => {
  bed.aws!.inject({ action: "DescribeAutoScalingGroups", kind: "throttle", times: 2 });
  const out = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
  expect(out.$metadata.attempts).toBe(3);
  const calls = bed.aws!.calls().filter((c) => c.action === "DescribeAutoScalingGroups");
  expect(calls.map((c) => c.status)).toEqual([400, 400, 200]);
});

test("a call throttled past the retry budget fails with a clear error", async () => {
  bed.aws!.inject({ action: "DescribeAutoScalingGroups", kind: "throttle", times: 5 });
  const failure = awsCall("list the worker auto scaling groups", () =>
    aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({})),
  );
  await expect(failure).rejects.toThrow(UpgradeError);
  await failure.catch((err: UpgradeError) => {
    expect(err.message).toMatch(/^could not list the worker auto scaling groups: Throttling: Rate exceeded \(after 3 attempts\)/);
    expect(err.permanent).toBe(false);
    expect(err.hint).toMatch(/AWS_MAX_ATTEMPTS/);
  });
  expect(bed.aws!.calls().filter((c) => c.action === "DescribeAutoScalingGroups")).toHaveLength(3);
});

test("EC2's own throttling code and 5xx errors are retried too", async () => {
  bed.aws!.inject({ action: "DescribeImages", kind: "throttle", times: 1 });
  bed.aws!.inject({ action: "DescribeImages", kind: "server-error", times: 1 });
  const out = await aws.ec2.send(new DescribeImagesCommand({}));
  expect(out.$metadata.attempts).toBe(3);
  expect(bed.aws!.calls().map((c) => c.status)).toEqual([503, 500, 200]);
});

test("a dropped connection is retried; moto reset forgets everything", async () => {
  bed.aws!.inject({ action: "DescribeAutoScalingGroups", kind: "drop", times: 1 });
  const out = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
  expect(out.AutoScalingGroups?.length).toBeGreaterThan(0);
  expect(bed.aws!.calls()[0]?.status).toBe("dropped");
  await bed.moto!.reset();
  const after = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
  expect(after.AutoScalingGroups).toEqual([]);
});
