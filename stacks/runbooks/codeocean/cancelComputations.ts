import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { awsCall } from "../../../lib/aws";
import { UpgradeError } from "../../../lib/errors";
import { withRetry } from "../../../lib/retry";
import { connectSsh, type SshTarget } from "../../../lib/ssh";
import { describeRoute, resolveSshHost, sshTargetFromConfig } from "../../../lib/sshConfig";
import { DEFAULTS } from "../../upgrade";
import type { RunContext } from "../../context";
import { observeWorkers } from "./waitForIdleWorkers";

/**
 * Runbook step 4: on the services machine, `curl -X POST localhost:8300/cancel_computations`,
 * over SSH with strict host-key checking. The HTTP status decides: 2xx done, 4xx permanent
 * (not retried), 5xx and connection failures transient (retried with backoff).
 */
export async function cancelComputations(ctx: RunContext): Promise<string> {
  const { target, how } = await servicesSshTarget(ctx);
  const url = `http://localhost:${ctx.options.codeOcean.servicesPort}/cancel_computations`;
  const seconds = Math.max(1, Math.round(ctx.options.codeOcean.servicesTimeoutMs / 1000));
  const command = `curl -sS -o /dev/null -w '%{http_code}' --max-time ${seconds} -X POST ${url}`;
  ctx.cancelRequestedAt = new Date();
  const status = await withRetry(
    `cancel the running computations (POST ${url} on ${target.host})`,
    async () => {
      const session = await connectSsh(target);
      try {
        const result = await session.run(command, { timeoutMs: seconds * 1000 + 20_000 });
        const http = result.stdout.trim();
        if (/^2\d\d$/.test(http)) return http;
        const failed = (why: string, permanent: boolean) =>
          new UpgradeError({
            what: `cancel the running computations (POST ${url} on ${target.host})`,
            why,
            hint: permanent ? "check the services API on that machine; retrying will not help" : undefined,
            permanent,
          });
        if (/^4\d\d$/.test(http)) throw failed(`the services API answered HTTP ${http}`, true);
        if (/^5\d\d$/.test(http)) throw failed(`the services API answered HTTP ${http}`, false);
        const timedOut = result.code === 28;
        throw failed(timedOut ? `no answer within ${seconds}s (curl timed out)` : `curl exited ${result.code}${http && http !== "000" ? ` (HTTP ${http})` : ""}: ${result.stderr.trim() || "no answer"}`, false);
      } finally {
        session.close();
      }
    },
    {
      retries: 4,
      minTimeoutMs: 1000,
      onRetry: ({ attempt, retriesLeft, error }) =>
        ctx.emit({
          type: "progress",
          step: "cancel-computations",
          message: `attempt ${attempt} failed (${(error as Error).message.split("\n")[0]}); retrying, ${retriesLeft} left`,
        }),
    },
  );
  return `HTTP ${status} via ${how}`;
}

/**
 * check: cancelling is disruptive, so it is not repeated when its effect is in place: a run that
 * crashed after cancelling (local journal), or workers already idle (the world, for pipelines
 * whose journal went with their machine).
 */
export async function computationsAlreadyCancelled(ctx: RunContext): Promise<string | undefined> {
  const previous = ctx.resumeFrom;
  const cancelled = previous?.steps.find((s) => s.step === "cancel-computations" && s.status === "done");
  if (previous && cancelled && previous.cancelRequestedAt) {
    ctx.cancelRequestedAt = new Date(previous.cancelRequestedAt);
    return `already requested at ${previous.cancelRequestedAt} by run ${previous.runId}`;
  }
  const asgs = ctx.deployment!.workerAsgs.map((a) => a.name);
  if (asgs.length === 0) return undefined;
  const seen = await observeWorkers(ctx, asgs, new Date(0), ctx.options.codeOcean.metricPeriodSeconds);
  if (seen.every((o) => o.state === "idle")) {
    // idle already: the wait needs a fresh zero, so it counts from now
    ctx.cancelRequestedAt = new Date(Date.now() - ctx.options.codeOcean.metricPeriodSeconds * 1000);
    return `workers already idle (${seen.map((o) => `${o.asg}: ${o.reason}`).join(", ")}): nothing to cancel`;
  }
  return undefined;
}

/**
 * How the services machine is reached: --ssh-host when given; else its instance id when the
 * operator's SSH config routes that name (a `Host i-*` block with ProxyCommand, as for SSH through
 * Session Manager, or with HostName/ProxyJump); else its private IP from EC2. The SSH config
 * applies to the chosen name, flags win over it. `how` says which path was taken.
 */
export async function servicesSshTarget(ctx: RunContext): Promise<{ target: SshTarget; how: string }> {
  const { ssh } = ctx.options.codeOcean;
  const id = ctx.deployment!.servicesInstanceId;
  const file = ssh.configPath;
  let name: string;
  let why: string;
  if (ssh.host) {
    name = ssh.host;
    why = "--ssh-host";
  } else if (file && resolveSshHost(file, id, { user: ssh.user, port: ssh.port }).routed) {
    name = id;
    why = `the instance id, routed by ${file}`;
  } else {
    name = await servicesPrivateIp(ctx);
    why = `the private IP of ${id} (${file ? `no Host/Match in ${file} routes ${id}` : "no SSH config"})`;
  }
  const target = sshTargetFromConfig(
    file,
    name,
    { user: ssh.user, port: ssh.port, keyPath: ssh.keyPath, passphrase: ssh.passphrase, passphraseName: "UPGRADE_SSH_KEY_PASSPHRASE", knownHostsPath: ssh.knownHostsPath },
    { user: DEFAULTS.sshUser, port: DEFAULTS.sshPort },
  );
  return { target, how: `${name} (${why}): ${describeRoute(target)}` };
}

/** Reads the SSH config for the name the runbook will use first, so bad input is refused early. */
export function checkSshConfig(ctx: RunContext): void {
  const { ssh } = ctx.options.codeOcean;
  if (ssh.configPath) resolveSshHost(ssh.configPath, ssh.host ?? ctx.deployment!.servicesInstanceId, { user: ssh.user, port: ssh.port });
}

async function servicesPrivateIp(ctx: RunContext): Promise<string> {
  const id = ctx.deployment!.servicesInstanceId;
  const out = await awsCall(`look up the services instance ${id}`, () =>
    ctx.aws().ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })),
  );
  const ip = out.Reservations?.[0]?.Instances?.[0]?.PrivateIpAddress;
  if (!ip) {
    throw new UpgradeError({
      what: `find the SSH address of the services instance ${id}`,
      why: "EC2 reports no private IP for it",
      hint: "pass --ssh-host",
      exitCode: 2,
      permanent: true,
    });
  }
  return ip;
}
