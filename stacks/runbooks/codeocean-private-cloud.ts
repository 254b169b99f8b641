import type { Runbook } from "../context";
import { cancelComputations, computationsAlreadyCancelled, servicesSshTarget } from "./codeocean/cancelComputations";
import { restoreAlarmActions, suspendAlarmActions } from "./codeocean/alarmActions";
import { noProtectedInstances, removeScaleInProtection, verifyNoProtectedInstances } from "./codeocean/scaleInProtection";
import { describeObservations, observeWorkers, waitForIdleWorkers } from "./codeocean/waitForIdleWorkers";
import { dedicatedWorkers, describeDedicated } from "./codeocean/deployment";

/**
 * Runbook 1 of RUNBOOKS.md, Code Ocean private cloud. Around `pulumi up` (which the driver runs
 * after select-stack, read-outputs, refresh-config (3. `pulumi config refresh -f`) and preview):
 *   4. stop all running computations       (SSH to the services machine, POST :8300/cancel_computations)
 *   5. wait for SlotsUtilization to reach 0 on every worker ASG
 *   6. remove scale-in protection from the workers
 *   8. keep the deployment's alarms quiet for the window, and restore them afterwards
 */
export const codeOceanPrivateCloud: Runbook = {
  name: "codeocean-private-cloud",
  refreshConfig: true,
  beforeUp: [
    {
      id: "cancel-computations",
      title: "Cancel running computations",
      check: computationsAlreadyCancelled,
      plan: async (ctx) => `would POST localhost:${ctx.options.servicesPort}/cancel_computations on the services machine over SSH to ${(await servicesSshTarget(ctx)).how}`,
      run: cancelComputations,
    },
    {
      id: "wait-idle-workers",
      title: "Wait for idle workers",
      plan: async (ctx) => {
        const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
        const now = asgs.length > 0 ? describeObservations(await observeWorkers(ctx, asgs, new Date(0), ctx.options.metricPeriodSeconds)) : "no worker ASG";
        const dedicated = describeDedicated(await dedicatedWorkers(ctx));
        return `would wait up to the drain deadline for SlotsUtilization 0${ctx.options.waitDedicated ? " and no dedicated worker" : ""}; now: ${now}; ${dedicated}`;
      },
      run: waitForIdleWorkers,
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
      id: "restore-alarms",
      title: "Restore alarm actions",
      always: true,
      plan: async () => "would re-enable the alarm actions suspended by this run",
      run: restoreAlarmActions,
    },
  ],
};
