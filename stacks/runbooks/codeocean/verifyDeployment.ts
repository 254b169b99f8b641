import {
  DescribeTagsCommand,
  DescribeTargetHealthCommand,
  paginateDescribeTargetGroups,
  type TargetGroup,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { awsCall } from "../../../lib/aws";
import { UpgradeError } from "../../../lib/errors";
import { connectSsh } from "../../../lib/ssh";
import { formatDuration, pollUntil } from "../../../lib/wait";
import type { RunContext } from "../../context";
import { deploymentAlarms } from "./alarmActions";
import { servicesSshTarget } from "./cancelComputations";
import { deploymentName } from "./deployment";
import { chunk } from "./scaleInProtection";

/**
 * After `up`: is the deployment healthy? What CloudFormation's rollback triggers and Instance
 * Refresh's alarms watch, for the whole deployment:
 *   - every ELBv2 target group tagged deployment=<name> has all its targets healthy, the services
 *     instance (the one `up` left) among them;
 *   - each target's own health check (its path and port) answers 2xx when probed directly, on the
 *     services machine over the same SSH path as cancel-computations; so does the services API;
 *   - none of the deployment's alarms (suspend-alarms' set) is in ALARM, for the whole bake time.
 * First the checks are waited for (a new release takes a while to come up), within the verify
 * deadline; then they must hold for the bake time; any alarm in ALARM fails at once.
 */
export interface TargetGroupHealth {
  name: string;
  port: string;
  path: string;
  /** Target id → ELB state ("healthy", "unhealthy: Target.ResponseCodeMismatch", …). */
  targets: Record<string, string>;
}

export interface Verification {
  groups: TargetGroupHealth[];
  /** "web :8001/health → 200", one per group, then the services API. */
  probes: Array<{ what: string; code: string; ok: boolean }>;
  inAlarm: Array<{ name: string; reason?: string }>;
  problems: string[];
}

/** The deployment's target groups: DescribeTargetGroups, then their tags (DescribeTags, 20 ARNs a call). */
export async function deploymentTargetGroups(ctx: RunContext, name: string): Promise<TargetGroup[]> {
  const all: TargetGroup[] = [];
  await awsCall("list the ELBv2 target groups", async () => {
    for await (const page of paginateDescribeTargetGroups({ client: ctx.aws().elbv2 }, {})) all.push(...(page.TargetGroups ?? []));
  });
  const ours = new Set<string>();
  for (const batch of chunk(all.map((g) => g.TargetGroupArn!), 20)) {
    const out = await awsCall("read the target groups' tags", () => ctx.aws().elbv2.send(new DescribeTagsCommand({ ResourceArns: batch })));
    for (const d of out.TagDescriptions ?? []) if (d.Tags?.some((t) => t.Key === "deployment" && t.Value === name)) ours.add(d.ResourceArn!);
  }
  return all.filter((g) => ours.has(g.TargetGroupArn!));
}

const servicesInstance = (ctx: RunContext) => {
  const id = ctx.outputs?.ec2ServicesInstanceId?.value;
  return typeof id === "string" && id !== "" ? id : ctx.deployment!.servicesInstanceId;
};

/** One look at everything verification checks. */
export async function observeDeployment(ctx: RunContext, groups: TargetGroup[]): Promise<Verification> {
  const instance = servicesInstance(ctx);
  const problems: string[] = [];
  const health: TargetGroupHealth[] = [];
  const checks: Array<{ what: string; port: number; path: string }> = [];
  for (const g of groups) {
    const out = await awsCall(`read the target health of ${g.TargetGroupName}`, () => ctx.aws().elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: g.TargetGroupArn })));
    const targets: Record<string, string> = {};
    for (const d of out.TargetHealthDescriptions ?? []) {
      const state = d.TargetHealth?.State ?? "unknown";
      targets[d.Target!.Id!] = state === "healthy" ? state : `${state}${d.TargetHealth?.Reason ? `: ${d.TargetHealth.Reason}` : ""}`;
      const port = g.HealthCheckPort && g.HealthCheckPort !== "traffic-port" ? Number(g.HealthCheckPort) : d.Target?.Port ?? g.Port!;
      if (d.Target!.Id === instance) checks.push({ what: g.TargetGroupName!, port, path: g.HealthCheckPath ?? "/" });
    }
    health.push({ name: g.TargetGroupName!, port: g.HealthCheckPort ?? "traffic-port", path: g.HealthCheckPath ?? "/", targets });
    const bad = Object.entries(targets).filter(([, s]) => s !== "healthy");
    if (bad.length > 0) problems.push(`${g.TargetGroupName}: ${bad.map(([id, s]) => `${id} ${s}`).join(", ")}`);
    if (!(instance in targets)) problems.push(`${g.TargetGroupName}: the services instance ${instance} is not registered`);
  }
  const probes = await probeOnServicesMachine(ctx, checks);
  for (const p of probes) if (!p.ok) problems.push(`${p.what} answered ${p.code === "000" ? "nothing (connection failed)" : `HTTP ${p.code}`}`);
  const inAlarm = (await deploymentAlarms(ctx)).filter((a) => a.StateValue === "ALARM").map((a) => ({ name: a.AlarmName!, reason: a.StateReason }));
  for (const a of inAlarm) problems.push(`alarm ${a.name} is in ALARM${a.reason ? ` (${a.reason})` : ""}`);
  return { groups: health, probes, inAlarm, problems };
}

/**
 * The health checks and the services API, probed on the services machine itself (curl to
 * localhost), in one SSH session. A health check passes on 2xx; the services API on any HTTP answer.
 */
async function probeOnServicesMachine(ctx: RunContext, checks: Array<{ what: string; port: number; path: string }>): Promise<Verification["probes"]> {
  const all = [...checks.map((c) => ({ ...c, what: `${c.what} :${c.port}${c.path}`, api: false })), { what: `services API :${ctx.options.codeOcean.servicesPort}`, port: ctx.options.codeOcean.servicesPort, path: "/", api: true }];
  const script = all.map((c) => `curl -s -o /dev/null -w '%{http_code}\\n' --max-time 5 'http://localhost:${c.port}${c.path.replace(/'/g, "")}'`).join("; ");
  const { target } = await servicesSshTarget(ctx);
  const session = await connectSsh(target);
  try {
    const result = await session.run(script, { timeoutMs: 10_000 * all.length + 10_000 });
    const codes = result.stdout.trim().split("\n");
    return all.map((c, i) => {
      const code = codes[i]?.trim() || "000";
      return { what: c.what, code, ok: c.api ? code !== "000" && !code.startsWith("5") : /^2\d\d$/.test(code) };
    });
  } finally {
    session.close();
  }
}

export function describeVerification(v: Verification): string {
  const groups = v.groups.map((g) => `${g.name} ${Object.values(g.targets).every((s) => s === "healthy") ? "healthy" : "NOT healthy"}`);
  return `${v.groups.length} target groups (${groups.join(", ")}); probes ${v.probes.filter((p) => p.ok).length}/${v.probes.length} ok; alarms in ALARM: ${v.inAlarm.length === 0 ? "none" : v.inAlarm.map((a) => a.name).join(", ")}`;
}

export async function verifyDeployment(ctx: RunContext): Promise<string> {
  const name = await deploymentName(ctx);
  if (!name) {
    throw new UpgradeError({
      what: "verify the deployment",
      why: `the services instance ${servicesInstance(ctx)} has no deployment tag, so its target groups and alarms cannot be found`,
      hint: "tag the services instance deployment=<name> (the deployment does); the new release is in place, unverified",
      permanent: true,
    });
  }
  const groups = await deploymentTargetGroups(ctx, name);
  if (groups.length === 0) {
    throw new UpgradeError({ what: "verify the deployment", why: `no ELBv2 target group is tagged deployment=${name}`, hint: "check AWS_REGION and the deployment's lb.ts; the new release is in place, unverified", permanent: true });
  }
  const { verifyTimeoutMs, bakeTimeMs, pollIntervalMs } = ctx.options.codeOcean;
  const started = Date.now();
  let healthySince: number | undefined;
  // --on-failure stop: the new release stays; the operator is told what ran before and how to go back
  const back = ctx.checkedOutFrom ? `; to go back: upgrade --release ${ctx.checkedOutFrom}` : "";
  const next = ctx.options.onFailure === "stop" ? `. The new release stays in place (--on-failure stop)${back}` : "";
  const failed = (why: string, hint: string) => new UpgradeError({ what: "verify the deployment after `up`", why, hint: `${hint}${next}`, permanent: true });
  const seen = await pollUntil<Verification>({
    intervalMs: Math.min(pollIntervalMs, Math.max(1000, bakeTimeMs / 2)),
    timeoutMs: verifyTimeoutMs + bakeTimeMs,
    signal: ctx.signal,
    poll: async () => {
      const v = await observeDeployment(ctx, groups);
      // an alarm in ALARM fails at once (a rollback trigger); unhealthy targets are waited for, then must stay healthy
      if (v.inAlarm.length > 0) throw failed(v.problems.join("; "), "the release is unhealthy; see the alarms named above");
      if (v.problems.length > 0) {
        if (healthySince !== undefined) throw failed(`became unhealthy during the bake time: ${v.problems.join("; ")}`, "the release is unhealthy; see above");
        if (Date.now() - started > verifyTimeoutMs) throw failed(`not healthy within ${formatDuration(verifyTimeoutMs)}: ${v.problems.join("; ")}`, "the release is unhealthy, or needs longer: --verify-timeout");
        return { done: false, seen: v };
      }
      healthySince ??= Date.now();
      return { done: Date.now() - healthySince >= bakeTimeMs, seen: v };
    },
    onProgress: ({ seen, elapsedMs }) =>
      ctx.emit({
        type: "progress",
        step: "verify-deployment",
        message: `${healthySince === undefined ? `waiting for health (${seen.problems[0] ?? "…"})` : `baking ${formatDuration(Date.now() - healthySince)} of ${formatDuration(bakeTimeMs)}`}: ${describeVerification(seen)} · ${formatDuration(elapsedMs)} elapsed`,
        data: { groups: seen.groups, probes: seen.probes, inAlarm: seen.inAlarm, problems: seen.problems, healthy: healthySince !== undefined },
      }),
    onTimeout: (last) => failed(`not verified within the deadline; last seen: ${last ? last.problems.join("; ") || describeVerification(last) : "nothing"}`, "raise --verify-timeout, or check the release"),
  });
  return `verified: ${describeVerification(seen)}; healthy for the bake time ${formatDuration(bakeTimeMs)}`;
}
