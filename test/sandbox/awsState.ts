import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";

/** A snapshot of what the runbook may touch, to compare before and after a refused run. */
export interface AwsSnapshot {
  /** ASG name → protected instance ids (sorted). */
  protection: Record<string, string[]>;
  /** Alarm name → actions enabled. */
  alarms: Record<string, boolean>;
}

export async function awsSnapshot(env: Record<string, string>): Promise<AwsSnapshot> {
  const aws = createAwsClients(awsSettingsFromEnv(env));
  try {
    const groups = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    const alarms = await aws.cloudWatch.send(new DescribeAlarmsCommand({}));
    return {
      protection: Object.fromEntries(
        (groups.AutoScalingGroups ?? []).map((g) => [
          g.AutoScalingGroupName!,
          (g.Instances ?? []).filter((i) => i.ProtectedFromScaleIn).map((i) => i.InstanceId!).sort(),
        ]),
      ),
      alarms: Object.fromEntries((alarms.MetricAlarms ?? []).map((a) => [a.AlarmName!, a.ActionsEnabled === true])),
    };
  } finally {
    aws.destroy();
  }
}
