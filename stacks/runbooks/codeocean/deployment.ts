import { DescribeInstancesCommand, paginateDescribeInstances } from "@aws-sdk/client-ec2";
import { awsCall } from "../../../lib/aws";
import type { RunContext } from "../../context";

/**
 * The deployment's name: the `deployment` tag the deployment puts on its services instance and
 * on every alarm (codeocean/private-cloud's config.deploymentName). Read once per run.
 */
export async function deploymentName(ctx: RunContext): Promise<string | undefined> {
  const deployment = ctx.deployment!;
  if (deployment.deploymentName === undefined) {
    const id = deployment.servicesInstanceId;
    const out = await awsCall(`read the tags of the services instance ${id}`, () =>
      ctx.aws().ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })),
    );
    const tags = out.Reservations?.[0]?.Instances?.[0]?.Tags ?? [];
    deployment.deploymentName = tags.find((t) => t.Key === "deployment")?.Value ?? null;
  }
  return deployment.deploymentName ?? undefined;
}

/** A dedicated worker: an instance the services machine launched for one user, outside any ASG. */
export interface DedicatedWorker {
  instanceId: string;
  state: string;
  user?: string;
  capsule?: string;
}

export const DEDICATED_ROLE = "dedicated-worker";

/** The deployment's dedicated workers still pending or running; undefined when the deployment has no name tag. */
export async function dedicatedWorkers(ctx: RunContext): Promise<DedicatedWorker[] | undefined> {
  const name = await deploymentName(ctx);
  if (!name) return undefined;
  const found: DedicatedWorker[] = [];
  await awsCall("list the dedicated workers", async () => {
    const filters = [
      { Name: "tag:role", Values: [DEDICATED_ROLE] },
      { Name: "tag:deployment", Values: [name] },
      { Name: "instance-state-name", Values: ["pending", "running", "stopping"] },
    ];
    for await (const page of paginateDescribeInstances({ client: ctx.aws().ec2 }, { Filters: filters })) {
      for (const r of page.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          const tag = (k: string) => i.Tags?.find((t) => t.Key === k)?.Value;
          found.push({ instanceId: i.InstanceId!, state: i.State?.Name ?? "unknown", user: tag("codeocean.com/user"), capsule: tag("codeocean.com/capsule") });
        }
      }
    }
  });
  return found;
}

export function describeDedicated(workers: DedicatedWorker[] | undefined): string {
  if (workers === undefined) return "dedicated workers not looked up (the services instance has no deployment tag)";
  if (workers.length === 0) return "no dedicated worker running";
  const users = [...new Set(workers.map((w) => w.user ?? "unknown user"))];
  return `${workers.length} dedicated worker${workers.length === 1 ? "" : "s"} running (users: ${users.join(", ")})`;
}
