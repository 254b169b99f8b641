import { refused, UpgradeError } from "../../lib/errors";
import { describeProbe } from "../../lib/http";
import type { Progress } from "../../lib/progress";
import type { Step } from "../../lib/steps";
import { pollUntil, sleep } from "../../lib/wait";
import {
  checkAmis,
  checkBlueOfFleet,
  deregister,
  describeInstances,
  drainingSeconds,
  findGreen,
  launchGreen,
  loadBalancerDnsName,
  maintenanceDomain,
  pointRecords,
  pointsAt,
  putMaintenancePage,
  readRecords,
  register,
  registeredInstances,
  terminate,
  waitRunning,
  type Cloud,
  type FleetInstance,
} from "./cloud";
import { waitHealthy, waitReachable, type Hosts } from "./hosts";
import { probeHttp } from "../../lib/http";
import type { FleetSettings, Role } from "./settings";

/**
 * Runbook 5 of RUNBOOKS.md (MITx residential Open edX), blue/green on EC2, as two phases.
 *
 *   prepared (days before): launch green from the AMIs → wait running and reachable → smoke-test
 *     each web host's /heartbeat → stop green's supervisor services → write the maintenance page.
 *   live (the window): 1 DNS → maintenance → 2 stop blue → 3 migrate (lms, cms) on one green web
 *     host, start green → 4 register green, healthy, deregister blue, drain → 5 verify through the
 *     load balancer → 6 DNS → load balancer → 7 terminate blue by id.
 *
 * Every step looks at the world first, so a run stopped anywhere is finished by running it again.
 * A failure in steps 1–6 rolls back to blue (rollBack).
 */
export interface Fleet {
  web: FleetInstance[];
  worker: FleetInstance[];
}

export interface FleetContext {
  settings: FleetSettings;
  cloud: Cloud;
  hosts: Hosts;
  info: Progress;
  warn: Progress;
  blue: Fleet;
  green: Fleet;
  /** Where DNS points when it does not point at the maintenance page. */
  loadBalancerDns: string;
  maintenanceDns: string;
}

const all = (fleet: Fleet) => [...fleet.web, ...fleet.worker];
const ids = (list: FleetInstance[]) => list.map((i) => i.id);
const waitSeconds = (ctx: FleetContext, seconds: number) => sleep(Math.min(seconds, ctx.settings.timing.maxWaitSeconds) * 1000);

// ---------------------------------------------------------------- prepared

export const launchGreenFleet: Step<FleetContext> = {
  id: "launch-green",
  title: "Launch the green fleet from the AMIs",
  async check(ctx) {
    const short = (["web", "worker"] as const).filter((role) => ctx.green[role].length < ctx.blue[role].length);
    return short.length === 0 ? `green is there: ${ids(all(ctx.green)).join(", ")}` : undefined;
  },
  async run(ctx) {
    const launched: string[] = [];
    for (const role of ["web", "worker"] as const) {
      const missing = ctx.blue[role].length - ctx.green[role].length;
      if (missing <= 0) continue;
      launched.push(...(await launchGreen(ctx.cloud, role, missing, ctx.blue[role][0]!)));
      ctx.green[role] = await findGreen(ctx.cloud, role);
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
  title: "Smoke-test each green web host (/heartbeat)",
  async run(ctx) {
    const probes = await Promise.all(ctx.green.web.map(async (i) => ({ i, probe: await ctx.hosts.heartbeat(i) })));
    const failing = probes.filter(({ probe }) => probe.status !== 200);
    if (failing.length > 0) {
      throw refused(
        `prepare the ${ctx.settings.release} fleet`,
        `the smoke test failed on ${failing.map(({ i, probe }) => `${i.id} (${describeProbe(probe)})`).join("; ")}; DNS was not touched and still points at the load balancer (${ctx.loadBalancerDns})`,
        "fix or replace the failing green host (its app logs), then run the update again",
      );
    }
    return `${probes.length} web host(s) answer 200`;
  },
};

export const stopGreenServices: Step<FleetContext> = {
  id: "stop-green",
  title: "Stop green's supervisor services until the window",
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

/** Whether the load balancer already serves only green (steps 1–4 are behind us). */
async function switched(ctx: FleetContext): Promise<boolean> {
  const registered = await registeredInstances(ctx.cloud);
  return ctx.green.web.every((i) => registered.has(i.id)) && !ctx.blue.web.some((i) => registered.has(i.id));
}

export const dnsToMaintenance: Step<FleetContext> = {
  id: "1-dns-maintenance",
  title: "Point DNS at the maintenance page",
  async check(ctx) {
    if (pointsAt(await readRecords(ctx.cloud), ctx.maintenanceDns)) return "already at the maintenance page";
    if (await switched(ctx)) return "the load balancer already serves green";
    return undefined;
  },
  async run(ctx) {
    const before = await readRecords(ctx.cloud);
    const ttl = Math.max(...before.map((r) => r.ttl ?? 60));
    await pointRecords(ctx.cloud, ctx.maintenanceDns, ttl);
    // Resolvers may hold the old answer for its TTL.
    await waitSeconds(ctx, ttl);
    return `${ctx.settings.dns.records.join(", ")} → ${ctx.maintenanceDns} (INSYNC, waited the old TTL ${ttl}s)`;
  },
};

export const stopBlue: Step<FleetContext> = {
  id: "2-stop-blue",
  title: "Stop all edX processes on blue",
  async check(ctx) {
    if (await switched(ctx)) return "the load balancer already serves green";
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
  title: "Run the migrations (lms, cms) on one green web host, then start green",
  async check(ctx) {
    for (const i of all(ctx.green)) if (!(await ctx.hosts.allIn(i, "RUNNING"))) return undefined;
    return "green runs (migrated before it started)";
  },
  async run(ctx) {
    const first = ctx.green.web[0]!;
    const notes = [`lms: ${await ctx.hosts.migrate(first, "lms")}`, `cms: ${await ctx.hosts.migrate(first, "cms")}`];
    for (const i of all(ctx.green)) await ctx.hosts.all(i, "start");
    return `${notes.join("; ")}; started ${ids(all(ctx.green)).join(", ")}`;
  },
};

export const switchLoadBalancer: Step<FleetContext> = {
  id: "4-switch-load-balancer",
  title: "Register green in the load balancer, wait until healthy, deregister blue, drain",
  async check(ctx) {
    return (await switched(ctx)) ? "the load balancer serves only green" : undefined;
  },
  async run(ctx) {
    const added = await register(ctx.cloud, ids(ctx.green.web));
    const { healthySeconds, pollSeconds } = ctx.settings.timing;
    // The load balancer's own health view is not trusted: green's /heartbeat is probed directly.
    await waitHealthy(ctx.hosts, ctx.green.web, healthySeconds * 1000, pollSeconds * 1000, ctx.info);
    const removed = await deregister(ctx.cloud, ids(ctx.blue.web));
    const draining = await drainingSeconds(ctx.cloud);
    await waitDrained(ctx, ids(ctx.blue.web), draining);
    return `registered ${added.join(", ") || "(already)"}; deregistered ${removed.join(", ") || "(already)"}; drained ${draining}s`;
  },
};

/** Waits out connection draining: until the load balancer lists none of `gone`, then the draining timeout. */
async function waitDrained(ctx: FleetContext, gone: string[], drainingSecs: number): Promise<void> {
  const started = Date.now();
  await pollUntil({
    intervalMs: ctx.settings.timing.pollSeconds * 1000,
    timeoutMs: (Math.min(drainingSecs, ctx.settings.timing.maxWaitSeconds) + 60) * 1000,
    poll: async () => {
      const left = [...(await registeredInstances(ctx.cloud))].filter((id) => gone.includes(id));
      return { done: left.length === 0, seen: left };
    },
    onTimeout: (left) => new UpgradeError({ what: "wait until blue is drained", why: `still registered: ${left?.join(", ")}` }),
  });
  const rest = drainingSecs * 1000 - (Date.now() - started);
  if (rest > 0) await sleep(Math.min(rest, ctx.settings.timing.maxWaitSeconds * 1000));
}

export const verifyThroughLoadBalancer: Step<FleetContext> = {
  id: "5-verify",
  title: "Verify through the load balancer",
  readOnly: true,
  async run(ctx) {
    const { baseUrl, checks } = ctx.settings.verify;
    const failures: string[] = [];
    for (const check of checks) {
      const probe = await probeHttp(baseUrl.replace(/\/$/, "") + check.path, { hostHeader: check.host, timeoutMs: 10_000 });
      const status = check.status ?? 200;
      if (probe.status !== status) failures.push(`${describeProbe(probe)} (expected HTTP ${status})`);
      else if (check.text !== undefined && !probe.body.includes(check.text)) failures.push(`${probe.url}: the body lacks ${JSON.stringify(check.text)}`);
    }
    if (failures.length > 0) {
      throw new UpgradeError({ what: "verify the new release through the load balancer", why: failures.join("; "), hint: "look at the green hosts; fix the checks under verify if they are wrong", permanent: true });
    }
    return `${checks.length} check(s) passed`;
  },
};

export const dnsToLoadBalancer: Step<FleetContext> = {
  id: "6-dns-load-balancer",
  title: "Point DNS back at the load balancer",
  async check(ctx) {
    return pointsAt(await readRecords(ctx.cloud), ctx.loadBalancerDns) ? "DNS points at the load balancer" : undefined;
  },
  async run(ctx) {
    const before = await readRecords(ctx.cloud);
    await pointRecords(ctx.cloud, ctx.loadBalancerDns, Math.max(...before.map((r) => r.ttl ?? 60)));
    return `${ctx.settings.dns.records.join(", ")} → ${ctx.loadBalancerDns} (INSYNC)`;
  },
};

export const terminateBlue: Step<FleetContext> = {
  id: "7-terminate-blue",
  title: "Terminate blue by explicit instance id",
  async check(ctx) {
    const seen = await describeInstances(ctx.cloud, ids(all(ctx.blue)));
    return all(ctx.blue).every((i) => (seen.get(i.id)?.state ?? "terminated") === "terminated") ? "blue is terminated" : undefined;
  },
  async run(ctx) {
    // Each id again against the recorded blue fleet and its tags, right before it goes.
    const recorded = { web: ids(ctx.blue.web), worker: ids(ctx.blue.worker) };
    const seen = await checkBlueOfFleet(ctx.cloud, recorded, true);
    const live = [...recorded.web, ...recorded.worker].filter((id) => !["terminated", "shutting-down"].includes(seen.get(id)?.state ?? "terminated"));
    await terminate(ctx.cloud, live);
    return `terminated ${live.join(", ") || "(none left)"}`;
  },
};

export const liveSteps: Array<Step<FleetContext>> = [
  dnsToMaintenance,
  stopBlue,
  migrateAndStartGreen,
  switchLoadBalancer,
  verifyThroughLoadBalancer,
  dnsToLoadBalancer,
  terminateBlue,
];

/** Steps whose failure rolls back to blue (blue still exists). */
export const ROLLBACK_STEPS = new Set(liveSteps.slice(0, 6).map((s) => s.id));

/**
 * Back to blue: re-register and restart blue, deregister green, DNS → load balancer. Migrations
 * are not reversed. Returns what it did; throws when a part fails (the caller names where DNS is).
 */
export async function rollBack(ctx: FleetContext): Promise<string[]> {
  const done: string[] = [];
  for (const i of all(ctx.blue)) if (!(await ctx.hosts.allIn(i, "RUNNING"))) await ctx.hosts.all(i, "start");
  done.push(`started blue (${ids(all(ctx.blue)).join(", ")})`);
  const { healthySeconds, pollSeconds } = ctx.settings.timing;
  await waitHealthy(ctx.hosts, ctx.blue.web, healthySeconds * 1000, pollSeconds * 1000, ctx.info);
  const added = await register(ctx.cloud, ids(ctx.blue.web));
  if (added.length) done.push(`re-registered ${added.join(", ")}`);
  const removed = await deregister(ctx.cloud, ids(ctx.green.web));
  if (removed.length) done.push(`deregistered green ${removed.join(", ")}`);
  for (const i of all(ctx.green)) await ctx.hosts.all(i, "stop").catch(() => undefined);
  if (!pointsAt(await readRecords(ctx.cloud), ctx.loadBalancerDns)) {
    const before = await readRecords(ctx.cloud);
    await pointRecords(ctx.cloud, ctx.loadBalancerDns, Math.max(...before.map((r) => r.ttl ?? 60)));
    done.push(`DNS → ${ctx.loadBalancerDns}`);
  }
  return done;
}

/** Where the records point now, for an error message. */
export async function whereDnsPoints(ctx: Pick<FleetContext, "cloud" | "loadBalancerDns" | "maintenanceDns">): Promise<string> {
  try {
    const records = await readRecords(ctx.cloud);
    if (pointsAt(records, ctx.loadBalancerDns)) return `DNS points at the load balancer (${ctx.loadBalancerDns})`;
    if (pointsAt(records, ctx.maintenanceDns)) return `DNS STILL POINTS AT THE MAINTENANCE PAGE (${ctx.maintenanceDns}); point it back by hand if you do not run the update again`;
    return `DNS points at ${records.map((r) => `${r.name} → ${r.value ?? "(no record)"}`).join(", ")}`;
  } catch (err) {
    return `where DNS points could not be read (${(err as Error).message})`;
  }
}

/** Builds the context: the blue fleet (refused unless each id is this fleet's), green by tag or by id. */
export async function fleetContext(settings: FleetSettings, cloud: Cloud, hosts: Hosts, info: Progress, warn: Progress, phase: "prepared" | "live"): Promise<FleetContext> {
  const blueIds = { web: settings.blue.web, worker: settings.blue.worker };
  const seen = await checkBlueOfFleet(cloud, blueIds, phase === "live");
  const blue: Fleet = { web: blueIds.web.map((id) => seen.get(id)!), worker: blueIds.worker.map((id) => seen.get(id)!) };
  const green: Fleet = { web: [], worker: [] };
  for (const role of ["web", "worker"] as Role[]) {
    const adopt = settings.green?.[role];
    if (adopt && adopt.length > 0) {
      const found = await describeInstances(cloud, adopt);
      const bad = adopt.filter((id) => !found.get(id) || found.get(id)!.state !== "running" && found.get(id)!.state !== "pending");
      if (bad.length > 0) throw refused(`adopt the green ${role} instances`, `${bad.join(", ")} ${bad.length === 1 ? "is" : "are"} not running`, `fix green.${role}; nothing was changed`);
      green[role] = adopt.map((id) => found.get(id)!);
    } else {
      green[role] = await findGreen(cloud, role);
    }
  }
  if (phase === "prepared") await checkAmis(cloud);
  return { settings, cloud, hosts, info, warn, blue, green, loadBalancerDns: await loadBalancerDnsName(cloud), maintenanceDns: await maintenanceDomain(cloud) };
}
