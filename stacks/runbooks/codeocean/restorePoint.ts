import { CreateSnapshotCommand, CreateTagsCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, type Snapshot, type Volume } from "@aws-sdk/client-ec2";
import { awsCall } from "../../../lib/aws";
import { describe, refused } from "../../../lib/errors";
import type { RestorePoint, RunContext } from "../../context";
import { deploymentName } from "./deployment";

/**
 * A restore point before `up`: an EBS snapshot of each data volume of the services machine, taken
 * once the workers are idle. A snapshot is point-in-time at its start, so `up` need not wait for it
 * to complete; the run reports its id and final state, and how to restore from it.
 *
 * EBS CreateSnapshot, not an AWS Backup on-demand job into the deployment's vault: moto (5.2) has
 * no StartBackupJob, so the bed could not hold that call against anything; a snapshot is also what
 * the vault's own recovery point of an EBS volume is.
 */

/** The tag naming the run that took a snapshot; a re-run of a crashed run adopts what it took. */
export const RESTORE_POINT_RUN_TAG = "upgrade-orchestrator:restore-point-of-run";

/**
 * The services machine's data volumes: the deployment's `ebsVolumeId` output, and every volume
 * attached to the services instance that carries the deployment's tag.
 */
export async function dataVolumes(ctx: RunContext): Promise<Volume[]> {
  const instance = ctx.deployment!.servicesInstanceId;
  const found = new Map<string, Volume>();
  const fromOutput = ctx.outputs?.ebsVolumeId?.value;
  if (typeof fromOutput === "string" && fromOutput !== "") {
    // a volume the output names and EC2 does not know is not found (the refusal names the output), not a failure
    const out = await awsCall(`read the data volume ${fromOutput} (output ebsVolumeId)`, () =>
      ctx.aws().ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: "volume-id", Values: [fromOutput] }] })),
    );
    for (const v of out.Volumes ?? []) found.set(v.VolumeId!, v);
  }
  const name = await deploymentName(ctx);
  if (name) {
    const out = await awsCall(`list the volumes of the services instance ${instance}`, () =>
      ctx.aws().ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: "attachment.instance-id", Values: [instance] }, { Name: "tag:deployment", Values: [name] }] })),
    );
    for (const v of out.Volumes ?? []) found.set(v.VolumeId!, v);
  }
  return [...found.values()];
}

const toRestorePoint = (s: Snapshot, volume: Volume | undefined): RestorePoint => {
  const zone = volume?.AvailabilityZone ?? "<the volume's availability zone>";
  return {
    snapshotId: s.SnapshotId!,
    volumeId: s.VolumeId!,
    availabilityZone: zone,
    state: s.State ?? "unknown",
    progress: s.Progress,
    restore: `aws ec2 create-volume --snapshot-id ${s.SnapshotId} --availability-zone ${zone}, then attach it in place of ${s.VolumeId}`,
  };
};

/** What a snapshot is and how to restore from it, for the note and the report. */
export function describeRestorePoint(p: RestorePoint): string {
  return `${p.snapshotId} of ${p.volumeId} (${p.state}${p.progress && p.state !== "completed" ? ` ${p.progress}` : ""})`;
}

async function snapshotsOfRun(ctx: RunContext, runId: string): Promise<Snapshot[]> {
  const out = await awsCall("look for the restore point of the interrupted run", () =>
    ctx.aws().ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: `tag:${RESTORE_POINT_RUN_TAG}`, Values: [runId] }] })),
  );
  return out.Snapshots ?? [];
}

/**
 * The volumes to snapshot; none found is a refusal, asked before anything is disrupted (confirm-plan's
 * text reads it first), so that the run never cancels computations for an upgrade it will not make.
 */
async function volumesToSnapshot(ctx: RunContext): Promise<Volume[]> {
  const volumes = await dataVolumes(ctx);
  if (volumes.length > 0) return volumes;
  const output = ctx.outputs?.ebsVolumeId?.value;
  const why = `${typeof output === "string" && output ? `the ebsVolumeId output names ${output}, which EC2 does not have` : "no ebsVolumeId output"}, and no volume tagged deployment=${ctx.deployment!.deploymentName ?? "?"} attached to ${ctx.deployment!.servicesInstanceId}`;
  throw refused("take a restore point before `up`", `no data volume of the services machine found: ${why}`, "tag the data volume deployment=<name>, or run with --no-restore-point to go on without one");
}

export async function planRestorePoint(ctx: RunContext): Promise<string> {
  if (!ctx.options.codeOcean.restorePoint) return "no restore point (--no-restore-point)";
  const volumes = await volumesToSnapshot(ctx);
  return `would snapshot ${volumes.map((v) => `${v.VolumeId} (${v.Size ?? "?"} GiB)`).join(", ")} before \`up\``;
}

export async function takeRestorePoint(ctx: RunContext): Promise<string> {
  const volumes = await volumesToSnapshot(ctx);
  // a crashed run of this upgrade may have started them already: adopt those, start the rest
  const previous = ctx.resumeFrom?.runId;
  const adopted = previous ? await snapshotsOfRun(ctx, previous) : [];
  const byVolume = new Map(volumes.map((v) => [v.VolumeId!, v]));
  const points: RestorePoint[] = adopted.filter((s) => byVolume.has(s.VolumeId!)).map((s) => toRestorePoint(s, byVolume.get(s.VolumeId!)));
  if (points.length > 0) {
    // now this run's: should it be interrupted too, the next one finds them by this run's id
    await awsCall("tag the adopted restore point with this run", () =>
      ctx.aws().ec2.send(new CreateTagsCommand({ Resources: points.map((p) => p.snapshotId), Tags: [{ Key: RESTORE_POINT_RUN_TAG, Value: ctx.runId }] })),
    );
  }
  const from = ctx.checkedOutFrom ?? String(ctx.outputs?.deployedRelease?.value ?? "the running release");
  for (const volume of volumes) {
    if (points.some((p) => p.volumeId === volume.VolumeId)) continue;
    const tags = [
      { Key: RESTORE_POINT_RUN_TAG, Value: ctx.runId },
      { Key: "upgrade-orchestrator:stack", Value: ctx.options.stack },
      { Key: "upgrade-orchestrator:release", Value: from },
      ...(ctx.deployment!.deploymentName ? [{ Key: "deployment", Value: ctx.deployment!.deploymentName }] : []),
      { Key: "Name", Value: `restore point of ${ctx.options.stack} before upgrading from ${from}` },
    ];
    const out = await awsCall(`snapshot the data volume ${volume.VolumeId}`, () =>
      ctx.aws().ec2.send(new CreateSnapshotCommand({
        VolumeId: volume.VolumeId,
        Description: `upgrade-orchestrator restore point: stack ${ctx.options.stack} at ${from}, run ${ctx.runId}`,
        TagSpecifications: [{ ResourceType: "snapshot", Tags: tags }],
      })),
    ).catch((err) => {
      throw refused("take a restore point before `up`", `the snapshot of ${volume.VolumeId} could not be started: ${describe(err).split("\n")[0]}`, "fix the cause (permissions: ec2:CreateSnapshot, ec2:CreateTags), or run with --no-restore-point; the alarm actions are restored next");
    });
    points.push(toRestorePoint(out as Snapshot, volume));
  }
  ctx.restorePoints = points;
  const adoptedNote = adopted.length > 0 ? ` (${adopted.length} started by the interrupted run ${previous}, adopted)` : "";
  return `restore point: ${points.map(describeRestorePoint).join(", ")}${adoptedNote}`;
}

/** The restore point's state now, once, at the end of the run (a snapshot completes in the background). */
export async function restorePointState(ctx: RunContext): Promise<string> {
  const points = ctx.restorePoints ?? [];
  const out = await awsCall("read the restore point's state", () =>
    ctx.aws().ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: points.map((p) => p.snapshotId) })),
  );
  for (const s of out.Snapshots ?? []) {
    const p = points.find((q) => q.snapshotId === s.SnapshotId);
    if (p) Object.assign(p, { state: s.State ?? p.state, progress: s.Progress });
  }
  return points.map((p) => `${describeRestorePoint(p)}; to restore: ${p.restore}`).join("; ");
}
