import { SetInstanceProtectionCommand } from "@aws-sdk/client-auto-scaling";
import { awsCall } from "../../../lib/aws";
import { UpgradeError } from "../../../lib/errors";
import type { RunContext } from "../../context";
import { describeGroups } from "./waitForIdleWorkers";

/** AWS accepts at most 50 instance ids per SetInstanceProtection call (moto accepts more). */
export const MAX_IDS_PER_CALL = 50;

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function protectedInstances(ctx: RunContext): Promise<Map<string, string[]>> {
  const names = ctx.deployment!.workerAsgs.map((a) => a.name);
  const groups = await describeGroups(ctx, names);
  const result = new Map<string, string[]>();
  for (const name of names) {
    const ids = (groups.get(name)?.Instances ?? []).filter((i) => i.ProtectedFromScaleIn).map((i) => i.InstanceId!);
    if (ids.length > 0) result.set(name, ids);
  }
  return result;
}

const total = (m: Map<string, string[]>) => [...m.values()].reduce((n, ids) => n + ids.length, 0);

/** check: nothing left protected means the step is done (a re-run does not repeat it). */
export async function noProtectedInstances(ctx: RunContext): Promise<string | undefined> {
  if (ctx.deployment!.workerAsgs.length === 0) return "no worker auto scaling group";
  return total(await protectedInstances(ctx)) === 0 ? "no worker instance is protected from scale-in" : undefined;
}

/** Runbook step 6: remove scale-in protection from every worker instance, in batches of 50. */
export async function removeScaleInProtection(ctx: RunContext): Promise<string> {
  const found = await protectedInstances(ctx);
  let calls = 0;
  for (const [asg, ids] of found) {
    for (const batch of chunk(ids, MAX_IDS_PER_CALL)) {
      await awsCall(`remove scale-in protection from ${batch.length} instances of ${asg}`, () =>
        ctx.aws().autoScaling.send(
          new SetInstanceProtectionCommand({ AutoScalingGroupName: asg, InstanceIds: batch, ProtectedFromScaleIn: false }),
        ),
      );
      calls++;
    }
  }
  return `${total(found)} instances in ${found.size} groups unprotected (${calls} calls)`;
}

export async function verifyNoProtectedInstances(ctx: RunContext): Promise<void> {
  const left = await protectedInstances(ctx);
  if (total(left) > 0) {
    throw new UpgradeError({
      what: "verify that no worker instance is protected from scale-in",
      why: `still protected: ${[...left].map(([asg, ids]) => `${asg}: ${ids.join(", ")}`).join("; ")}`,
      hint: "something re-protects them (a lifecycle hook or the services machine?); re-run to retry",
    });
  }
}
