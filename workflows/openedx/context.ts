import { refused } from "../../lib/errors";
import type { Progress } from "../../lib/progress";
import { pointRecords, pointsAt, maintenanceDomain, readRecords, type Cloud } from "./cloud";
import type { Hosts } from "./hosts";
import { waitHeartbeats } from "./hosts";
import { attachGroup, describeGroup, greenGroupName, groupInstanceIds } from "./autoScaling";
import { checkAmis, describeInstances, findLaunchedGreen, isEmptySelector, resolveBlue, resolveSelector, type FleetInstance } from "./instances";
import { deregister, loadBalancerDnsName, register, waitInService } from "./loadBalancers";
import type { FleetSettings, Role, Site } from "./settings";

/**
 * The cut-over's context (blue and green as found, each site's load balancer address), the
 * rollback to blue, and where DNS points for an error message.
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
  /** The Auto Scaling groups that own a role's instances, blue's (from its selector) and green's (given, or made from blue's). */
  groups: { blue: Partial<Record<Role, string>>; green: Partial<Record<Role, string>> };
  /** Each site's load balancer DNS name (where its records point outside the window). */
  sites: Array<{ site: Site; dns: string }>;
  maintenanceDns: string;
}

export const all = (fleet: Fleet) => [...fleet.web, ...fleet.worker];
export const ids = (list: FleetInstance[]) => list.map((i) => i.id);
const ttlOf = (records: Array<{ ttl?: number }>) => Math.max(...records.map((r) => r.ttl ?? 60));

/**
 * Builds the context. Blue: the ids recorded in the state when this release was prepared (`recorded`),
 * else the operator's selectors (refused, changing nothing, when they do not fit). Green: adopted by
 * selector, or what this workflow launched for the release (its bookkeeping tags).
 */
export async function fleetContext(settings: FleetSettings, cloud: Cloud, hosts: Hosts, info: Progress, warn: Progress, phase: "prepared" | "live", recorded?: Record<Role, string[]>): Promise<FleetContext> {
  const blue: Fleet = recorded ? await recordedBlue(cloud, recorded) : await resolveBlue(cloud, settings.blue, ["running"]);
  const green: Fleet = { web: [], worker: [] };
  const groups: FleetContext["groups"] = { blue: {}, green: {} };
  for (const role of ["web", "worker"] as Role[]) {
    const blueGroup = settings.blue[role].autoScalingGroup;
    if (blueGroup) groups.blue[role] = blueGroup;
    const adopt = settings.green?.[role];
    if (adopt?.autoScalingGroup) groups.green[role] = adopt.autoScalingGroup;
    else if (!adopt && blueGroup && (await describeGroup(cloud, greenGroupName(blueGroup, settings.release)))) groups.green[role] = greenGroupName(blueGroup, settings.release);
    if (groups.green[role] && !adopt) {
      const g = await describeGroup(cloud, groups.green[role]!);
      green[role] = g ? [...(await describeInstances(cloud, groupInstanceIds(g))).values()].filter((i) => ["pending", "running"].includes(i.state)) : [];
      continue;
    }
    if (adopt && !isEmptySelector(adopt)) {
      const { instances, problems } = await resolveSelector(cloud, adopt, ["pending", "running"]);
      const taken = instances.filter((i) => all(blue).some((b) => b.id === i.id)).map((i) => `${i.id} is blue`);
      if (problems.length || taken.length || instances.length === 0) {
        throw refused(`adopt the green ${role} instances`, [...problems, ...taken].join("; ") || `green.${role} matches no running instance`, `fix green.${role}; nothing was changed`);
      }
      green[role] = instances;
    } else if (!adopt) {
      green[role] = await findLaunchedGreen(cloud, role);
    }
  }
  if (phase === "prepared") await checkAmis(cloud);
  const sites = [];
  for (const site of settings.sites) sites.push({ site, dns: await loadBalancerDnsName(cloud, site) });
  return { settings, cloud, hosts, info, warn, blue, green, groups, sites, maintenanceDns: await maintenanceDomain(cloud) };
}

/** Blue as recorded in the state (by id, whatever its state now: after step 7 it is terminated). */
async function recordedBlue(cloud: Cloud, recorded: Record<Role, string[]>): Promise<Fleet> {
  const seen = await describeInstances(cloud, [...recorded.web, ...recorded.worker]);
  const missing = [...recorded.web, ...recorded.worker].filter((id) => !seen.has(id));
  if (missing.length) throw refused("find the recorded blue fleet", `${missing.join(", ")} recorded as blue when green was prepared ${missing.length === 1 ? "does" : "do"} not exist`, "run phase: prepared again to record the fleet anew");
  return { web: recorded.web.map((id) => seen.get(id)!), worker: recorded.worker.map((id) => seen.get(id)!) };
}

/** Points each site's records at its load balancer, where they do not point there already. */
export async function dnsToSites(ctx: FleetContext): Promise<string[]> {
  const done: string[] = [];
  for (const { site, dns } of ctx.sites) {
    const before = await readRecords(ctx.cloud, site.records);
    if (pointsAt(before, dns)) continue;
    await pointRecords(ctx.cloud, site.records, dns, ttlOf(before));
    done.push(`${site.records.join(", ")} → ${dns}`);
  }
  return done;
}

/**
 * Back to blue: restart blue, wait until its heartbeats pass, re-register it in every site and wait
 * until each load balancer reports it healthy, deregister green, stop green, DNS → each site's load
 * balancer. Migrations are not reversed. Returns what it did; throws when a part fails.
 */
export async function rollBack(ctx: FleetContext): Promise<string[]> {
  const done: string[] = [];
  for (const i of all(ctx.blue)) if (!(await ctx.hosts.allIn(i, "RUNNING"))) await ctx.hosts.all(i, "start");
  done.push(`started blue (${ids(all(ctx.blue)).join(", ")})`);
  const { healthySeconds, pollSeconds } = ctx.settings.timing;
  await waitHeartbeats(ctx.hosts, ctx.blue.web, { deadlineMs: healthySeconds * 1000, pollMs: pollSeconds * 1000, workers: ctx.blue.worker.length > 0, info: ctx.info });
  for (const { site } of ctx.sites) {
    if (ctx.groups.blue.web && (await attachGroup(ctx.cloud, ctx.groups.blue.web, site, true))) done.push(`attached ${ctx.groups.blue.web} to ${site.name} again`);
    if (ctx.groups.green.web && (await attachGroup(ctx.cloud, ctx.groups.green.web, site, false))) done.push(`detached ${ctx.groups.green.web} from ${site.name}`);
    const added = await register(ctx.cloud, site, ids(ctx.blue.web));
    if (added.length) {
      await waitInService(ctx.cloud, site, added);
      done.push(`re-registered ${added.join(", ")} in ${site.name}`);
    }
    const removed = await deregister(ctx.cloud, site, ids(ctx.green.web));
    if (removed.length) done.push(`deregistered green ${removed.join(", ")} from ${site.name}`);
  }
  for (const i of all(ctx.green)) await ctx.hosts.all(i, "stop").catch(() => undefined);
  const dns = await dnsToSites(ctx);
  if (dns.length) done.push(`DNS ${dns.join("; ")}`);
  return done;
}

/** Where each site's records point now, for an error message. */
export async function whereDnsPoints(ctx: Pick<FleetContext, "cloud" | "sites" | "maintenanceDns">): Promise<string> {
  const parts: string[] = [];
  for (const { site, dns } of ctx.sites) {
    try {
      const records = await readRecords(ctx.cloud, site.records);
      if (pointsAt(records, dns)) parts.push(`${site.name}: DNS points at its load balancer (${dns})`);
      else if (pointsAt(records, ctx.maintenanceDns)) parts.push(`${site.name}: DNS STILL POINTS AT THE MAINTENANCE PAGE (${ctx.maintenanceDns}); point it back by hand if you do not run the update again`);
      else parts.push(`${site.name}: DNS points at ${records.map((r) => `${r.name} → ${r.value ?? "(no record)"}`).join(", ")}`);
    } catch (err) {
      parts.push(`${site.name}: where DNS points could not be read (${(err as Error).message})`);
    }
  }
  return parts.join("; ");
}
