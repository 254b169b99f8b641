import type { RunContext } from "../../context";
import { deploymentAlarms } from "./alarmActions";
import { dedicatedWorkers, describeDedicated } from "./deployment";
import { planRestorePoint } from "./restorePoint";
import { protectedInstances } from "./scaleInProtection";
import { observeWorkers } from "./waitForIdleWorkers";

/**
 * What the runbook's steps before `up` will disrupt, as the world is now: the computations the
 * cancel stops (SlotsUtilization per worker ASG, the newest datapoint), the dedicated workers busy,
 * the instances whose scale-in protection goes, the alarms whose actions are suspended. Read only.
 */
export async function describeDisruption(ctx: RunContext): Promise<string[]> {
  const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
  const previous = ctx.resumeFrom;
  const cancelled = previous?.steps.find((s) => s.step === "cancel-computations" && s.status === "done");
  const lines: string[] = [];
  if (cancelled) {
    lines.push(`cancel the running computations: already requested by run ${previous!.runId} (not sent again)`);
  } else if (asgs.length > 0) {
    const seen = await observeWorkers(ctx, asgs, new Date(0), ctx.options.codeOcean.metricPeriodSeconds);
    const per = seen.map((o) => `${o.asg}: ${o.state === "busy" ? `${o.reason} of slots in use` : o.state === "idle" ? `idle (${o.reason})` : `${o.state} (${o.reason})`}, ${o.inService} InService`);
    const busy = seen.some((o) => o.state !== "idle");
    lines.push(`${busy ? "CANCEL every running computation" : "cancel the running computations (none seen running)"} on the services machine: ${per.join("; ")}`);
  } else {
    lines.push("cancel the running computations on the services machine (no worker ASG in the outputs)");
  }
  const dedicated = await dedicatedWorkers(ctx);
  lines.push(`dedicated workers: ${describeDedicated(dedicated)}${dedicated?.length ? ctx.options.codeOcean.waitDedicated ? " (waited for)" : " (their computations are cancelled too; not waited for)" : ""}`);
  lines.push(`restore point: ${(await planRestorePoint(ctx)).replace(/^would /, "")}`);
  const prot = await protectedInstances(ctx);
  const count = [...prot.values()].reduce((n, ids) => n + ids.length, 0);
  lines.push(count > 0 ? `remove scale-in protection from ${count} instances (${[...prot].map(([asg, ids]) => `${asg}: ${ids.length}`).join(", ")})` : "remove scale-in protection: no instance is protected");
  const enabled = (await deploymentAlarms(ctx)).filter((a) => a.ActionsEnabled).map((a) => a.AlarmName!);
  lines.push(enabled.length > 0 ? `suspend the actions of ${enabled.length} alarms until the run ends (restored on success, failure and Ctrl-C)` : "suspend alarm actions: no alarm of the deployment has actions enabled");
  return lines;
}
