import type { Runbook, RunContext } from "../context";
import { pulumiCall } from "../pulumiCall";
import { rollbackStep } from "../rollback";

// The steps' modules (AWS SDK commands, node-ssh) are loaded when a step first runs: the driver
// knows this runbook without paying for it on a stack that does not use it.
const cancel = () => import("./codeocean/cancelComputations");
const alarms = () => import("./codeocean/alarmActions");
const protection = () => import("./codeocean/scaleInProtection");
const idle = () => import("./codeocean/waitForIdleWorkers");
const deployment = () => import("./codeocean/deployment");
const disruption = () => import("./codeocean/disruption");
const verify = () => import("./codeocean/verifyDeployment");
const restorePoint = () => import("./codeocean/restorePoint");
const computationsAlreadyCancelled = async (ctx: RunContext) => (await cancel()).computationsAlreadyCancelled(ctx);
const cancelComputations = async (ctx: RunContext) => (await cancel()).cancelComputations(ctx);
const suspendAlarmActions = async (ctx: RunContext) => (await alarms()).suspendAlarmActions(ctx);
const restoreAlarmActions = async (ctx: RunContext) => (await alarms()).restoreAlarmActions(ctx);
const noProtectedInstances = async (ctx: RunContext) => (await protection()).noProtectedInstances(ctx);
const removeScaleInProtection = async (ctx: RunContext) => (await protection()).removeScaleInProtection(ctx);
const verifyNoProtectedInstances = async (ctx: RunContext) => (await protection()).verifyNoProtectedInstances(ctx);
const waitForIdleWorkers = async (ctx: RunContext, holdToWindow = false) => (await idle()).waitForIdleWorkers(ctx, holdToWindow);

/**
 * Runbook 1 of RUNBOOKS.md, Code Ocean private cloud. Around `pulumi up` (which the driver runs
 * after select-stack, read-outputs, refresh-config (3. `pulumi config refresh -f`) and preview):
 *   4. stop all running computations       (SSH to the services machine, POST :8300/cancel_computations)
 *   5. wait for SlotsUtilization to reach 0 on every worker ASG
 *      then: a restore point (EBS snapshots of the services machine's data volumes)
 *   6. remove scale-in protection from the workers
 *   8. keep the deployment's alarms quiet for the window, and restore them afterwards
 *   then: verify the deployment (target health, health checks, services API, alarms over a bake time)
 */
export const codeOceanPrivateCloud: Runbook = {
  name: "codeocean-private-cloud",
  detect: (outputs) => typeof outputs.ec2ServicesInstanceId?.value === "string",
  async prepare(ctx) {
    const { codeOceanTargets, readsSecretOutputs } = await import("./codeocean/targets");
    // the export leaves secrets encrypted: decrypt the outputs only when the runbook reads a secret one
    if (readsSecretOutputs(ctx.outputs!)) ctx.outputs = await pulumiCall("read the stack outputs", () => ctx.stack!.outputs());
    const { targets, notes } = codeOceanTargets(ctx.outputs!);
    ctx.deployment = targets;
    for (const message of notes) ctx.emit({ type: "note", step: "read-outputs", message });
    // a bad SSH config (unreadable, weak StrictHostKeyChecking...) is refused before anything changes
    (await cancel()).checkSshConfig(ctx);
    return `runbook ${this.name}: services ${targets.servicesInstanceId}, workers ${targets.workerAsgs.map((a) => `${a.name} (${a.output})`).join(", ") || "none"}`;
  },
  refreshConfig: true,
  disruption: async (ctx) => (await disruption()).describeDisruption(ctx),
  beforeUp: [
    {
      id: "cancel-computations",
      title: "Cancel running computations",
      check: computationsAlreadyCancelled,
      plan: async (ctx) => `would POST localhost:${ctx.options.codeOcean.servicesPort}/cancel_computations on the services machine over SSH to ${(await (await cancel()).servicesSshTarget(ctx)).how}`,
      run: cancelComputations,
    },
    {
      id: "wait-idle-workers",
      title: "Wait for idle workers",
      plan: async (ctx) => {
        const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
        const { describeObservations, observeWorkers } = await idle();
        const { dedicatedWorkers, describeDedicated } = await deployment();
        const now = asgs.length > 0 ? describeObservations(await observeWorkers(ctx, asgs, new Date(0), ctx.options.codeOcean.metricPeriodSeconds)) : "no worker ASG";
        const dedicated = describeDedicated(await dedicatedWorkers(ctx));
        return `would wait up to the drain deadline for SlotsUtilization 0${ctx.options.codeOcean.waitDedicated ? " and no dedicated worker" : ""}; now: ${now}; ${dedicated}`;
      },
      // before `up`: held to the maintenance window's end (--window)
      run: (ctx) => waitForIdleWorkers(ctx, true),
    },
    {
      // the data at rest, before the update touches it: point-in-time at its start, `up` does not wait for it
      id: "restore-point",
      title: "Take a restore point",
      check: async (ctx) => (ctx.options.codeOcean.restorePoint ? undefined : "--no-restore-point"),
      plan: async (ctx) => (await restorePoint()).planRestorePoint(ctx),
      run: async (ctx) => (await restorePoint()).takeRestorePoint(ctx),
    },
    {
      id: "remove-scale-in-protection",
      title: "Remove scale-in protection",
      check: noProtectedInstances,
      plan: async (ctx) => `would unprotect the instances of ${ctx.deployment!.workerAsgs.map((a) => a.name).join(", ")}`,
      run: removeScaleInProtection,
      verify: verifyNoProtectedInstances,
    },
    {
      id: "suspend-alarms",
      title: "Suspend alarm actions",
      plan: async () => "would disable the actions of the deployment's enabled alarms (and tag them for restore)",
      run: suspendAlarmActions,
    },
  ],
  afterUp: [
    {
      id: "verify-deployment",
      title: "Verify the deployment",
      check: async (ctx) => {
        if (!ctx.upToDate) return undefined;
        // nothing applied by this run: verify only what an interrupted run applied and did not verify
        const previous = ctx.resumeFrom;
        const applied = previous && (previous.steps.some((s) => s.step === "up" && s.status === "done") || previous.unfinishedStep === "up");
        const verified = previous?.steps.some((s) => s.step === "verify-deployment" && s.status === "done");
        return applied && !verified ? undefined : "nothing was updated";
      },
      plan: async (ctx) => {
        const { deploymentTargetGroups } = await verify();
        const name = await (await deployment()).deploymentName(ctx);
        const groups = name ? await deploymentTargetGroups(ctx, name) : [];
        const checks = groups.map((g) => `${g.TargetGroupName} ${g.HealthCheckPort === "traffic-port" ? `:${g.Port}` : `:${g.HealthCheckPort}`}${g.HealthCheckPath}`);
        return `would check ${groups.length} target groups tagged deployment=${name ?? "?"} (${checks.join(", ") || "none found"}) for healthy targets and probe each health check on the services machine, the services API on :${ctx.options.codeOcean.servicesPort}, and the deployment's alarms out of ALARM for ${ctx.options.codeOcean.bakeTimeMs / 1000}s (waiting up to ${ctx.options.codeOcean.verifyTimeoutMs / 1000}s for health first)`;
      },
      run: async (ctx) => {
        try {
          return await (await verify()).verifyDeployment(ctx);
        } catch (err) {
          ctx.failedAfterUp = (err as Error).message;
          throw err;
        }
      },
    },
    rollbackStep(
      async (ctx) => (await verify()).verifyDeployment(ctx),
      // the release `up` left has workers of its own (a new ASG, protected from scale-in): as before any
      // update, wait until they are idle and unprotect them, or the rollback's replacement stalls on them
      async (ctx) => {
        const { codeOceanTargets } = await import("./codeocean/targets");
        ctx.deployment = { ...ctx.deployment!, ...codeOceanTargets(ctx.outputs!).targets };
        const idle = await waitForIdleWorkers(ctx);
        const unprotected = await removeScaleInProtection(ctx);
        return `new workers: ${idle}; ${unprotected}`;
      },
    ),
    {
      id: "restore-point-state",
      title: "Report the restore point",
      always: true,
      when: (ctx) => (ctx.restorePoints?.length ?? 0) > 0,
      run: async (ctx) => (await restorePoint()).restorePointState(ctx),
    },
    {
      id: "restore-alarms",
      title: "Restore alarm actions",
      always: true,
      plan: async () => "would re-enable the alarm actions suspended by this run",
      run: restoreAlarmActions,
    },
  ],
};
