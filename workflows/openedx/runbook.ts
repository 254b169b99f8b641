import { refused, UpgradeError } from "../../lib/errors";
import { probeHttp } from "../../lib/http";
import type { Step } from "../../lib/steps";
import { pollUntil, sleep } from "../../lib/wait";
import { probeFailure } from "./checks";
import { pointRecords, pointsAt, putMaintenancePage, readRecords } from "./cloud";
import { all, dnsToSites, ids, type FleetContext } from "./context";
import { waitHeartbeats, waitReachable } from "./hosts";
import { attachGroup, ensureGreenGroup, scaleToZero, waitGroupInService } from "./autoScaling";
import { describeInstances, findLaunchedGreen, launchGreen, resolveBlue, terminate, waitRunning } from "./instances";
import { deregister, drainingSeconds, register, registeredInstances, waitInService } from "./loadBalancers";
import { releasesEntered } from "./releases";
import { fill, type FleetSettings } from "./settings";

/**
 * Runbook 5 of RUNBOOKS.md (MITx residential Open edX), blue/green on EC2, as two phases.
 *
 *   prepared (days before): launch green like blue → wait running and reachable → smoke-test each
 *     green web host's heartbeats (lms, cms; the workers through ?extended) → stop green's
 *     processes → write the maintenance page.
 *   live (the window): 1 every site's DNS → maintenance → 2 stop blue → 3 migrate (lms, cms) and
 *     the release's steps on one green web host, start green → 4 per site: register green, wait
 *     until its load balancer reports green healthy, deregister blue, drain → 5 verify through each
 *     site's load balancer → 6 each site's DNS → its load balancer → 7 terminate blue by id.
 *
 * Every step looks at the world first, so a run stopped anywhere is finished by running it again.
 * A failure in steps 1–6 rolls back to blue (context.ts, rollBack).
 */
export type { FleetContext } from "./context";

const waitSeconds = (ctx: FleetContext, seconds: number) => sleep(Math.min(seconds, ctx.settings.timing.maxWaitSeconds) * 1000);
const allRecords = (ctx: FleetContext) => ctx.sites.flatMap(({ site }) => site.records);

// ---------------------------------------------------------------- prepared

export const launchGreenFleet: Step<FleetContext> = {
  id: "launch-green",
  title: "Launch the green fleet like blue (its launch template or instance), from the AMIs",
  async check(ctx) {
    const short = (["web", "worker"] as const).filter((role) => ctx.green[role].length < ctx.blue[role].length);
    return short.length === 0 ? `green is there: ${ids(all(ctx.green)).join(", ")}` : undefined;
  },
  async run(ctx) {
    const launched: string[] = [];
    for (const role of ["web", "worker"] as const) {
      const missing = ctx.blue[role].length - ctx.green[role].length;
      if (missing <= 0) continue;
      const blueGroup = ctx.groups.blue[role];
      if (blueGroup && !ctx.settings.green) {
        const group = await ensureGreenGroup(ctx.cloud, role, blueGroup);
        ctx.groups.green[role] = group;
        const inService = await waitGroupInService(ctx.cloud, group);
        ctx.green[role] = [...(await describeInstances(ctx.cloud, inService)).values()];
        launched.push(`${group} (${inService.join(", ")})`);
        continue;
      }
      if (ctx.settings.green) throw refused(`prepare the ${ctx.settings.release} fleet`, `green.${role} adopts ${ctx.green[role].length} instance(s), blue has ${ctx.blue[role].length}`, `adopt as many green ${role} instances as blue has; nothing was launched`);
      launched.push(...(await launchGreen(ctx.cloud, role, missing, ctx.blue[role][0]!)));
      ctx.green[role] = await findLaunchedGreen(ctx.cloud, role);
    }
    return `launched ${launched.join(", ")}`;
  },
};

export const waitGreenReachable: Step<FleetContext> = {
  id: "wait-green",
  title: "Wait until green runs and is reachable over SSH",
  async run(ctx) {
    const running = await waitRunning(ctx.cloud, ids(all(ctx.green)));
    for (const role of ["web", "worker"] as const) ctx.green[role] = ctx.green[role].map((i) => running.get(i.id) ?? i);
    const { bootSeconds, pollSeconds } = ctx.settings.timing;
    for (const instance of all(ctx.green)) await waitReachable(ctx.hosts, instance, bootSeconds * 1000, pollSeconds * 1000);
    return `${all(ctx.green).length} running and reachable`;
  },
};

export const smokeTestGreen: Step<FleetContext> = {
  id: "smoke-test",
  title: "Smoke-test each green web host (lms and cms heartbeats; the workers through ?extended)",
  async run(ctx) {
    // A host just booted answers 503 until its workers beat: wait for the heartbeats as the cut-over
    // does (timing.healthySeconds), and refuse with what they last said when the deadline passes.
    const { healthySeconds, pollSeconds } = ctx.settings.timing;
    await waitHeartbeats(ctx.hosts, ctx.green.web, {
      deadlineMs: healthySeconds * 1000,
      pollMs: pollSeconds * 1000,
      workers: ctx.green.worker.length > 0,
      info: ctx.info,
      onTimeout: (failures, deadlineMs) =>
        refused(
          `prepare the ${ctx.settings.release} fleet`,
          `the smoke test failed after ${Math.round(deadlineMs / 1000)}s: ${failures.join("; ")}; DNS was not touched and still points at the load balancers`,
          "fix or replace the failing green host (its app logs, its workers), then run the update again (timing.healthySeconds is how long a host may take to pass)",
        ),
    });
    return `${ctx.green.web.length} web host(s) pass their heartbeats`;
  },
};

export const stopGreenServices: Step<FleetContext> = {
  id: "stop-green",
  title: "Stop green's edX processes until the window",
  async check(ctx) {
    for (const i of all(ctx.green)) if (!(await ctx.hosts.allIn(i, "STOPPED"))) return undefined;
    return "already stopped";
  },
  async run(ctx) {
    for (const i of all(ctx.green)) await ctx.hosts.all(i, "stop");
  },
};

export const writeMaintenancePage: Step<FleetContext> = {
  id: "maintenance-page",
  title: "Write the maintenance page",
  async run(ctx) {
    const m = ctx.settings.maintenance;
    await putMaintenancePage(ctx.cloud, maintenancePage(m));
    return `s3://${m.bucket}/${m.key}`;
  },
};

export function maintenancePage(m: FleetSettings["maintenance"]): string {
  const start = new Date(m.windowStart);
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Scheduled maintenance</title></head>
<body><h1>We are upgrading the platform</h1>
<p>Maintenance window: <time datetime="${start.toISOString()}">${esc(start.toUTCString())}</time>, about ${m.windowMinutes} minutes.</p>
<p>Questions: ${esc(m.contact)}</p></body></html>
`;
}

export const prepareSteps: Array<Step<FleetContext>> = [launchGreenFleet, waitGreenReachable, smokeTestGreen, stopGreenServices, writeMaintenancePage];

// ---------------------------------------------------------------- live

/** Whether every site's load balancer already serves only green (steps 1–4 are behind us). */
async function switched(ctx: FleetContext): Promise<boolean> {
  for (const { site } of ctx.sites) {
    const registered = await registeredInstances(ctx.cloud, site);
    if (!ctx.green.web.every((i) => registered.has(i.id)) || ctx.blue.web.some((i) => registered.has(i.id))) return false;
  }
  return true;
}

export const dnsToMaintenance: Step<FleetContext> = {
  id: "1-dns-maintenance",
  title: "Point every site's DNS at the maintenance page",
  async check(ctx) {
    if (pointsAt(await readRecords(ctx.cloud, allRecords(ctx)), ctx.maintenanceDns)) return "already at the maintenance page";
    if (await switched(ctx)) return "the load balancers already serve green";
    return undefined;
  },
  async run(ctx) {
    const before = await readRecords(ctx.cloud, allRecords(ctx));
    const ttl = Math.max(...before.map((r) => r.ttl ?? 60));
    await pointRecords(ctx.cloud, allRecords(ctx), ctx.maintenanceDns, ttl);
    // Resolvers may hold the old answer for its TTL.
    await waitSeconds(ctx, ttl);
    return `${allRecords(ctx).join(", ")} → ${ctx.maintenanceDns} (INSYNC, waited the old TTL ${ttl}s)`;
  },
};

export const stopBlue: Step<FleetContext> = {
  id: "2-stop-blue",
  title: "Stop all edX processes on blue",
  async check(ctx) {
    if (await switched(ctx)) return "the load balancers already serve green";
    for (const i of all(ctx.blue)) if (!(await ctx.hosts.allIn(i, "STOPPED"))) return undefined;
    return "blue is stopped";
  },
  async run(ctx) {
    for (const i of all(ctx.blue)) await ctx.hosts.all(i, "stop");
    return `stopped on ${ids(all(ctx.blue)).join(", ")}`;
  },
};

export const migrateAndStartGreen: Step<FleetContext> = {
  id: "3-migrate-start-green",
  title: "Run the migrations (lms, cms) and the release's steps on one green web host, then start green",
  async check(ctx) {
    for (const i of all(ctx.green)) if (!(await ctx.hosts.allIn(i, "RUNNING"))) return undefined;
    return "green runs (migrated before it started)";
  },
  async run(ctx) {
    const first = ctx.green.web[0]!;
    const notes = [`lms: ${await ctx.hosts.migrate(first, "lms")}`, `cms: ${await ctx.hosts.migrate(first, "cms")}`];
    for (const name of releasesEntered(ctx.settings.blue.release, ctx.settings.release)) {
      for (const step of ctx.settings.releaseSteps[name as keyof FleetSettings["releaseSteps"]] ?? []) {
        notes.push(`${name} step ${step.id}: ${await ctx.hosts.releaseStep(first, name, step)}`);
      }
    }
    for (const i of all(ctx.green)) await ctx.hosts.all(i, "start");
    return `${notes.join("; ")}; started ${ids(all(ctx.green)).join(", ")}`;
  },
};

export const switchLoadBalancers: Step<FleetContext> = {
  id: "4-switch-load-balancer",
  title: "Per site: register green, wait until its load balancer reports green healthy, deregister blue, drain",
  async check(ctx) {
    return (await switched(ctx)) ? "the load balancers serve only green" : undefined;
  },
  async run(ctx) {
    const { healthySeconds, pollSeconds } = ctx.settings.timing;
    // The hosts' own heartbeats first (lms, cms, the workers): a clear message when green is broken.
    await waitHeartbeats(ctx.hosts, ctx.green.web, { deadlineMs: healthySeconds * 1000, pollMs: pollSeconds * 1000, workers: ctx.green.worker.length > 0, info: ctx.info });
    const notes: string[] = [];
    for (const { site } of ctx.sites) {
      // A group registers its own instances once attached; single instances are registered by id.
      const attached = ctx.groups.green.web ? await attachGroup(ctx.cloud, ctx.groups.green.web, site, true) : false;
      const added = attached ? [`group ${ctx.groups.green.web}`] : await register(ctx.cloud, site, ids(ctx.green.web));
      // Blue stays registered until the load balancer itself reports every green instance healthy.
      const polls = await waitInService(ctx.cloud, site, ids(ctx.green.web));
      notes.push(`${site.name}: registered ${added.join(", ") || "(already)"}, in service after ${polls} poll(s)`);
    }
    for (const { site } of ctx.sites) {
      // Blue's group is detached (or it would register its instances again), which deregisters them.
      const detached = ctx.groups.blue.web ? await attachGroup(ctx.cloud, ctx.groups.blue.web, site, false) : false;
      const removed = [...(detached ? [`group ${ctx.groups.blue.web}`] : []), ...(await deregister(ctx.cloud, site, ids(ctx.blue.web)))];
      const draining = await drainingSeconds(ctx.cloud, site);
      await waitDrained(ctx, site, ids(ctx.blue.web), draining);
      notes.push(`${site.name}: deregistered ${removed.join(", ") || "(already)"}, drained ${draining}s`);
    }
    return notes.join("; ");
  },
};

/** Waits out connection draining: until the load balancer lists none of `gone`, then the draining timeout. */
async function waitDrained(ctx: FleetContext, site: FleetContext["sites"][number]["site"], gone: string[], drainingSecs: number): Promise<void> {
  const started = Date.now();
  await pollUntil({
    intervalMs: ctx.settings.timing.pollSeconds * 1000,
    timeoutMs: (Math.min(drainingSecs, ctx.settings.timing.maxWaitSeconds) + 60) * 1000,
    poll: async () => {
      const left = [...(await registeredInstances(ctx.cloud, site))].filter((id) => gone.includes(id));
      return { done: left.length === 0, seen: left };
    },
    onTimeout: (left) => new UpgradeError({ what: `wait until blue is drained from ${site.name}`, why: `still registered: ${left?.join(", ")}` }),
  });
  const rest = drainingSecs * 1000 - (Date.now() - started);
  if (rest > 0) await sleep(Math.min(rest, ctx.settings.timing.maxWaitSeconds * 1000));
}

export const verifyThroughLoadBalancers: Step<FleetContext> = {
  id: "5-verify",
  title: "Verify through each site's load balancer",
  readOnly: true,
  async run(ctx) {
    const failures: string[] = [];
    let count = 0;
    for (const { site, dns } of ctx.sites) {
      if (!site.verify) continue;
      const base = fill(site.verify.baseUrl, { loadBalancerDns: dns }).replace(/\/$/, "");
      for (const check of site.verify.checks) {
        count++;
        const probe = await probeHttp(base + check.url, { hostHeader: check.host ?? site.records[0], timeoutMs: 10_000 });
        const failure = probeFailure(probe, check);
        if (failure) failures.push(`${site.name}: ${failure}`);
      }
    }
    if (failures.length > 0) {
      throw new UpgradeError({ what: "verify the new release through the load balancers", why: failures.join("; "), hint: "look at the green hosts; fix the sites' verify checks if they are wrong", permanent: true });
    }
    return `${count} check(s) passed`;
  },
};

export const dnsToLoadBalancers: Step<FleetContext> = {
  id: "6-dns-load-balancer",
  title: "Point each site's DNS back at its load balancer",
  async check(ctx) {
    for (const { site, dns } of ctx.sites) if (!pointsAt(await readRecords(ctx.cloud, site.records), dns)) return undefined;
    return "each site's DNS points at its load balancer";
  },
  async run(ctx) {
    return (await dnsToSites(ctx)).join("; ") + " (INSYNC)";
  },
};

export const terminateBlue: Step<FleetContext> = {
  id: "7-terminate-blue",
  title: "Terminate blue: by explicit instance id, or its Auto Scaling group scaled to zero",
  async check(ctx) {
    const seen = await describeInstances(ctx.cloud, ids(all(ctx.blue)));
    return all(ctx.blue).every((i) => (seen.get(i.id)?.state ?? "terminated") === "terminated") ? "blue is terminated" : undefined;
  },
  async run(ctx) {
    const notes: string[] = [];
    // A group's instances go with the group (scaled to zero: it launches no replacement).
    for (const role of ["web", "worker"] as const) {
      const group = ctx.groups.blue[role];
      if (group) notes.push(`${group} scaled to zero (${(await scaleToZero(ctx.cloud, group)).join(", ") || "no instance"})`);
    }
    // The rest by id, each checked again against the operator's selectors right before it goes.
    const recorded = { web: ctx.groups.blue.web ? [] : ids(ctx.blue.web), worker: ctx.groups.blue.worker ? [] : ids(ctx.blue.worker) };
    const selector = (role: "web" | "worker") => (recorded[role].length ? { ...ctx.settings.blue[role], autoScalingGroup: undefined, ids: recorded[role] } : { ids: [] });
    if (recorded.web.length + recorded.worker.length > 0) {
      const again = await resolveBlue(ctx.cloud, { web: selector("web"), worker: selector("worker") }, ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]);
      const live = all(again).filter((i) => !["terminated", "shutting-down"].includes(i.state)).map((i) => i.id);
      await terminate(ctx.cloud, live);
      notes.push(`terminated ${live.join(", ") || "(none left)"}`);
    }
    return notes.join("; ");
  },
};

export const liveSteps: Array<Step<FleetContext>> = [dnsToMaintenance, stopBlue, migrateAndStartGreen, switchLoadBalancers, verifyThroughLoadBalancers, dnsToLoadBalancers, terminateBlue];

/** Steps whose failure rolls back to blue (blue still exists). */
export const ROLLBACK_STEPS = new Set(liveSteps.slice(0, 6).map((s) => s.id));
