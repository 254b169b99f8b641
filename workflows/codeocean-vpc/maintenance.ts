import { execFile } from "node:child_process";
import { DescribeAutoScalingGroupsCommand, type AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { paginateListJobs, type BatchClient, type JobStatus } from "@aws-sdk/client-batch";
import type { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { awsCall, isTransientAwsError } from "../../lib/aws";
import { refused, UpgradeError } from "../../lib/errors";
import { pollUntil } from "../../lib/wait";
import type { Hook } from "./settings";
import { stackResourcesOfType, type Say } from "./stacks";

/**
 * Maintenance mode has no public API: the admin panel switches it. What the workflow can see is
 * its effect in AWS: no Batch job of the deployment's queues RUNNING/RUNNABLE/STARTING, and the
 * deployment's worker auto scaling groups at zero instances.
 */
export const ACTIVE_JOB_STATES: JobStatus[] = ["RUNNING", "RUNNABLE", "STARTING"];
export const ADMIN_PANEL_STEP = "enable maintenance mode in the Code Ocean admin panel (Admin → System Maintenance → Enable)";

export interface Activity {
  jobs: number;
  instances: number;
  queues: string[];
  groups: string[];
}

export const idle = (a: Activity) => a.jobs === 0 && a.instances === 0;
export const describeActivity = (a: Activity) =>
  `${a.jobs} Batch job(s) active in ${a.queues.length} queue(s), ${a.instances} worker instance(s) in ${a.groups.length} group(s)`;

export async function readActivity(clients: { cloudFormation: CloudFormationClient; batch: BatchClient; autoScaling: AutoScalingClient }, stackName: string): Promise<Activity> {
  const resources = await stackResourcesOfType(clients.cloudFormation, stackName, ["AWS::Batch::JobQueue", "AWS::AutoScaling::AutoScalingGroup"]);
  const queues = resources.filter((r) => r.type === "AWS::Batch::JobQueue").map((r) => r.physicalId);
  const groups = resources.filter((r) => r.type === "AWS::AutoScaling::AutoScalingGroup").map((r) => r.physicalId);
  let jobs = 0;
  for (const jobQueue of queues) {
    for (const jobStatus of ACTIVE_JOB_STATES) {
      await awsCall(`list the ${jobStatus} jobs of ${jobQueue}`, async () => {
        for await (const page of paginateListJobs({ client: clients.batch }, { jobQueue, jobStatus })) jobs += page.jobSummaryList?.length ?? 0;
      });
    }
  }
  let instances = 0;
  if (groups.length > 0) {
    const found = await awsCall("read the worker auto scaling groups", () => clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: groups })));
    const missing = groups.filter((g) => !found.AutoScalingGroups?.some((a) => a.AutoScalingGroupName === g));
    if (missing.length > 0) throw new UpgradeError({ what: "read the worker auto scaling groups", why: `not found: ${missing.join(", ")}`, hint: "the stack's resources and the account disagree; check the stack in the console", permanent: true });
    instances = (found.AutoScalingGroups ?? []).reduce((n, g) => n + (g.Instances?.length ?? 0), 0);
  }
  return { jobs, instances, queues, groups };
}

/**
 * Waits until maintenance mode's effects are visible; at the deadline the run is refused. It runs
 * before any stack is updated, so the refusal says so (`untouched` adds which stacks were already
 * at their target before this run).
 */
export async function waitForMaintenance(
  read: () => Promise<Activity>,
  opts: { pollMs: number; timeoutMs: number; say: Say; stackName: string; untouched?: string },
): Promise<Activity> {
  return pollUntil<Activity | { error: string }>({
    intervalMs: opts.pollMs,
    timeoutMs: opts.timeoutMs,
    poll: async () => {
      try {
        const a = await read();
        return { done: idle(a), seen: a };
      } catch (err) {
        if (!isTransientAwsError((err as { cause?: unknown }).cause ?? err)) throw err;
        return { done: false, seen: { error: (err as Error).message.split("\n")[0]! } };
      }
    },
    onProgress: ({ seen, elapsedMs }) => {
      const what = "error" in seen ? seen.error : describeActivity(seen);
      void opts.say(`maintenance: waiting for its effects: ${what} left (${Math.round(elapsedMs / 1000)} s)`);
    },
    onTimeout: (last, elapsedMs) =>
      refused(
        `verify maintenance mode of ${opts.stackName}`,
        `after ${Math.round(elapsedMs / 1000)} s its effects are not visible: ${last === undefined ? "nothing read" : "error" in last ? last.error : describeActivity(last)}; no stack was updated by this run${opts.untouched ? ` (${opts.untouched})` : ""}`,
        `${ADMIN_PANEL_STEP}, wait until it reports that workers are terminated, then run again (or raise maintenance.timeoutSeconds)`,
      ),
  }) as Promise<Activity>;
}

/** Runs an operator's hook: an HTTP request (2xx expected) or a command (exit 0 expected). */
export async function runHook(hook: Hook, what: string, timeoutMs = 60_000): Promise<string> {
  if ("http" in hook) {
    const { url, method = "POST", headers, body } = hook.http;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new UpgradeError({ what: `run the ${what} hook (${method} ${url})`, why: (err as Error).message, hint: "check the hook's URL and that the service answers", permanent: true });
    }
    const text = (await res.text().catch(() => "")).slice(0, 200);
    if (!res.ok) throw new UpgradeError({ what: `run the ${what} hook (${method} ${url})`, why: `HTTP ${res.status}${text ? `: ${text}` : ""}`, hint: "check the hook's URL and credentials", permanent: true });
    return `${method} ${url} → HTTP ${res.status}`;
  }
  const [command, ...args] = hook.command;
  return new Promise((resolve, reject) => {
    execFile(command!, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) reject(new UpgradeError({ what: `run the ${what} hook (${command})`, why: `${err.message.split("\n")[0]}${stderr ? `: ${stderr.trim().slice(0, 200)}` : ""}`, permanent: true }));
      else resolve(`${command} exited 0`);
    });
  });
}
