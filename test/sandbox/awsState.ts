import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";

/** A snapshot of what the runbook may touch, to compare before and after a refused run. */
export interface AwsSnapshot {
  /** ASG name → protected instance ids (sorted). */
  protection: Record<string, string[]>;
  /** Alarm name → actions enabled. */
  alarms: Record<string, boolean>;
  /** Stack → the snapshot ids the driver took as its restore points (tag upgrade-orchestrator:stack). */
  restorePoints: Record<string, string[]>;
}

export async function awsSnapshot(env: Record<string, string>): Promise<AwsSnapshot> {
  const aws = createAwsClients(awsSettingsFromEnv(env));
  try {
    const groups = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    const alarms = await aws.cloudWatch.send(new DescribeAlarmsCommand({}));
    const snapshots = await aws.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag-key", Values: ["upgrade-orchestrator:stack"] }] }));
    const restorePoints: Record<string, string[]> = {};
    for (const s of snapshots.Snapshots ?? []) {
      const stack = s.Tags!.find((t) => t.Key === "upgrade-orchestrator:stack")!.Value!;
      (restorePoints[stack] ??= []).push(s.SnapshotId!);
    }
    return {
      protection: Object.fromEntries(
        (groups.AutoScalingGroups ?? []).map((g) => [
          g.AutoScalingGroupName!,
          (g.Instances ?? []).filter((i) => i.ProtectedFromScaleIn).map((i) => i.InstanceId!).sort(),
        ]),
      ),
      alarms: Object.fromEntries((alarms.MetricAlarms ?? []).map((a) => [a.AlarmName!, a.ActionsEnabled === true])),
      restorePoints,
    };
  } finally {
    aws.destroy();
  }
}
