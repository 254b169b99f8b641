import { CreateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { createAwsClients, awsSettingsFromEnv, type AwsClients } from "../../lib/aws";
import { createRedactor } from "../../lib/redaction";
import type { RunContext } from "../../stacks/context";

/**
 * A worker fleet at scale on the bed's moto: `groups` ASGs of `perGroup` instances, all protected
 * from scale-in, created with one launch template and one CreateAutoScalingGroup call per group
 * (moto launches an ASG's DesiredCapacity instances in that call): 1,000 instances in 5 calls.
 */
export async function createProtectedFleet(aws: AwsClients, prefix: string, groups: number, perGroup: number): Promise<string[]> {
  const images = await aws.ec2.send(new DescribeImagesCommand({ MaxResults: 5 }));
  const imageId = images.Images?.[0]?.ImageId;
  if (!imageId) throw new Error("moto lists no image");
  await aws.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `${prefix}-lt`, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
  const names = Array.from({ length: groups }, (_, i) => `${prefix}-workers-${i}`);
  for (const name of names) {
    await aws.autoScaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: name,
        LaunchTemplate: { LaunchTemplateName: `${prefix}-lt`, Version: "$Latest" },
        MinSize: 0,
        MaxSize: perGroup,
        DesiredCapacity: perGroup,
        AvailabilityZones: ["us-east-1a"],
        NewInstancesProtectedFromScaleIn: true,
      }),
    );
  }
  return names;
}

/** The run context a Code Ocean runbook step reads, for running one step against the bed's moto. */
export function runbookContext(env: Record<string, string>, workerAsgs: string[]): RunContext & { close(): void } {
  const aws = createAwsClients(awsSettingsFromEnv(env));
  const ctx = {
    runId: "bench",
    options: {} as RunContext["options"],
    emit: () => undefined,
    redactor: createRedactor([]),
    env,
    aws: () => aws,
    deployment: { servicesInstanceId: "i-none", workerAsgs: workerAsgs.map((name) => ({ name, output: name })) },
    suspendedAlarms: [],
    close: () => aws.destroy(),
  };
  return ctx;
}
