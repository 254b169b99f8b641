import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import type { Sandbox } from "./index";
import { startMariaDb, type MariaDb } from "./mariadb";
import { BUCKET, createAsgFleet, createMaintenance, createPlacement, createSiteLbs, createZone, ENVIRONMENT, FLEET, fleetAws, fleetAwsReads, groupInstances, launchForeign, launchSalt, PURPOSE, registerAmis, SALT_ROLE, SITES, type Amis, type AsgLayout, type Release, type SiteName } from "./openedxAws";
import { APP, bootHost, openEdxVenv, type ComposeEngine, type OpenEdxHost } from "./openedxHosts";
import { startLbPlane, type PlaneLb } from "./openedxLb";
import { delay } from "./processes";
import { toolchainCache } from "../../lib/toolchain";
import { COMPOSE_VERSION } from "./utilitarian";
import { startUtilitarianEngine } from "./utilitarianEngine";

export { openEdxVenv, type OpenEdxHost } from "./openedxHosts";
export { groupInstances } from "./openedxAws";
export { BUCKET, ENVIRONMENT, FLEET, PURPOSE, RECORDS, RELEASES, SALT_ROLE, SITES, ZONE, type Release, type SiteName } from "./openedxAws";

/**
 * A fixture MITx residential Open edX fleet on the bed (runbook 5), tagged and laid out as the
 * Salt era ran it (mitodl/salt-ops: cloud maps and orchestrate.edx; RUNBOOKS.md): instances
 * tagged `environment`, `purpose`, `role=edx|edx-worker`, `edx_codename`, `release-version`,
 * named `edx-<env>-<purpose>-<n>-v<N>`, no `openedx:*` tag; one classic ELB per site, lms
 * (`edx-<purpose>-<env>`) and a separate Studio ELB with an LB-cookie stickiness policy, each
 * with its own CNAME; 300 s draining there, 1 s here.
 *
 * - AWS is moto (AMI validation on): one AMI per release and role; blue launched from redwood.3's
 *   (openedxAws.ts).
 * - Instances "boot": a watcher polls moto and, for every running instance launched from a fixture
 *   AMI (by the bed or by the workflow), boots a host (openedxHosts.ts); a terminated one stops.
 *   Every host is reached through the bed's one sshd, told apart by its directory.
 * - The database is Debian's MariaDB, bed-local (test/sandbox/mariadb.ts).
 * - Load balancers: the bed's data plane and health compensation (openedxLb.ts).
 *
 * `layout: "asg"` lays the fleet out as the current deployment does instead (openedxAws.ts
 * createAsgFleet): web and worker Auto Scaling groups from launch templates, the web group in an
 * ALB's lms and studio target groups; the groups' instances boot like any other.
 */
export interface OpenEdxFixture {
  readonly db: MariaDb;
  readonly amis: Amis;
  readonly blue: { web: string[]; worker: string[] };
  /** The ASG layout's groups, target groups and ALB (undefined in the Salt layout). */
  readonly asg?: AsgLayout;
  readonly hostedZoneId: string;
  readonly distributionId: string;
  readonly distributionDomain: string;
  /** Each site's ELB DNS name. */
  readonly lbDnsNames: Record<SiteName, string>;
  /** Each site's load-balancer data plane on loopback. */
  readonly lbUrls: Record<SiteName, string>;
  readonly hosts: Map<string, OpenEdxHost>;
  /** The own stack's `systems.<name>` entry (kind openedx); the SSH key named by a secret config key. */
  systemConfig(options: { release: string; phase: "prepared" | "live"; amis?: { web: string; worker: string }; keyConfig: string; blueIds?: { web: string[]; worker: string[] }; verifyText?: string; healthySeconds?: number; blueRelease?: string }): Record<string, unknown>;
  /** What each record points at (CNAME value, no trailing dot). */
  records(): Promise<Record<string, string | undefined>>;
  registered(site: SiteName): Promise<string[]>;
  /** The ELB's policies (stickiness) on its listener. */
  listenerPolicies(site: SiteName): Promise<string[]>;
  instanceStates(ids: string[]): Promise<Record<string, string>>;
  instanceTags(id: string): Promise<Record<string, string>>;
  /** Applied Django migrations, "app.name". */
  migrations(): string[];
  maintenancePage(): Promise<string | undefined>;
  /** GET through a site's load-balancer data plane. */
  throughLb(pathname: string, site?: SiteName): Promise<{ status: number; body: string }>;
  /** What was asked of each instance's own services ("<id> <lms|cms><path>"), oldest first. */
  asked(): string[];
  /** OutOfService answers the bed's health compensation gave. */
  outOfService(): Array<{ lb: string; instance: string; reason: string }>;
  /** How many answers after registration report an instance OutOfService (default 3). */
  setOutOfServicePolls(n: number): void;
  /** Waits until the instance's host has booted. */
  waitBooted(id: string, timeoutMs?: number): Promise<OpenEdxHost>;
  /** Each program (supervisor) or service (compose) of the instance's host and its state: RUNNING, STOPPED, … */
  processStatus(id: string): Record<string, string>;
  /**
   * Breaks (or mends) hosts by a marker file the fixture app reads: HEARTBEAT_FAIL (its heartbeat's
   * sql check fails: 503) or FAIL_MIGRATION (sumac.3's new migration fails). Applies to the hosts
   * of `release` that exist and to those that boot later, until mended.
   */
  mark(release: string, marker: "HEARTBEAT_FAIL" | "FAIL_MIGRATION", on: boolean): void;
  /** Launches a web instance of another environment (tagged so), for refusal tests. */
  launchForeign(): Promise<string>;
  stop(): Promise<void>;
}

export async function startOpenEdxFleet(bed: Sandbox, options: { release?: Release; web?: number; worker?: number; outOfServicePolls?: number; layout?: "salt" | "asg"; hostLayout?: "supervisor" | "compose" } = {}): Promise<OpenEdxFixture> {
  if (!bed.moto || !bed.sshd || !bed.aws) throw new Error("the Open edX fixture needs the bed's moto, fault proxy and sshd");
  const sshd = bed.sshd;
  const python = path.join(openEdxVenv(), "bin", "python");
  const root = path.join(bed.dir, "openedx");
  fs.mkdirSync(path.join(root, "hosts"), { recursive: true });
  const aws = fleetAws(bed.moto.url);
  const { ec2, elb } = aws;
  const layout = options.layout ?? "salt";
  const db = await startMariaDb();
  const hosts = new Map<string, OpenEdxHost>();
  const markers = new Set<string>();
  const amiRelease = new Map<string, { release: string; role: "web" | "worker" }>();
  let watching = true;
  let watcher: Promise<void> = Promise.resolve();
  let watchError: string | undefined; // the last boot's failure, for waitBooted's message
  let plane: Awaited<ReturnType<typeof startLbPlane>> | undefined;

  const stopHost = (host: OpenEdxHost) => host.stop();
  const engineStops: Array<() => Promise<void>> = [];
  let compose: ComposeEngine | undefined;
  const stop = async () => {
    watching = false;
    await watcher;
    for (const host of hosts.values()) if (!host.stopped) await stopHost(host).catch(() => undefined);
    for (const s of engineStops.reverse()) await s().catch(() => undefined);
    await plane?.close();
    aws.destroy();
    await db.stop();
    fs.rmSync(root, { recursive: true, force: true });
  };

  // The instances' "boot": every running instance from a fixture AMI gets a host; terminated ones stop.
  async function watchOnce(): Promise<void> {
    const out = await ec2.send(new DescribeInstancesCommand({}));
    for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const id = i.InstanceId!;
      const host = hosts.get(id);
      const state = i.State?.Name;
      if (!host && state === "running" && amiRelease.has(i.ImageId ?? "")) {
        const { release, role } = amiRelease.get(i.ImageId!)!;
        const hostMarkers = [...markers].filter((m) => m.startsWith(`${release}/`)).map((m) => m.split("/")[1]!);
        hosts.set(id, await bootHost({ root, id, release, role, python, db, markers: hostMarkers, compose }));
      } else if (host && !host.stopped && (state === "terminated" || state === "shutting-down" || state === "stopped")) {
        await stopHost(host);
      }
    }
  }
  const watch = async () => {
    while (watching) {
      await watchOnce().then(
        () => void (watchError = undefined),
        (err: Error) => void (watchError = err.message),
      );
      await delay(250);
    }
  };

  try {
    if (options.hostLayout === "compose") {
      // The bed's engine (podman service, registry of the fixture images) and Docker Compose.
      const engine = await startUtilitarianEngine({ root, layout: "legacy", stops: engineStops });
      compose = { binary: path.join(toolchainCache(), "compose", COMPOSE_VERSION, "docker-compose"), dockerHost: engine.dockerHost, image: "quay.io/pwit/utilitarian:1.0.0" };
    }
    const amis = await registerAmis(ec2, amiRelease);
    const placement = await createPlacement(ec2, bed.moto.url);
    const release = options.release ?? "redwood.3";
    const size = { web: options.web ?? 2, worker: options.worker ?? 1 };
    const asg = layout === "asg" ? await createAsgFleet(aws, placement, amis, release, size) : undefined;
    const blue = asg
      ? { web: await groupInstances(aws.autoScaling, asg.groups.web), worker: await groupInstances(aws.autoScaling, asg.groups.worker) }
      : { web: await launchSalt(ec2, placement, amis, release, "web", size.web, "t3.large"), worker: await launchSalt(ec2, placement, amis, release, "worker", size.worker, "t3.medium") };
    const lbs: PlaneLb[] = (Object.keys(SITES) as SiteName[]).map((site) => (asg ? { type: "alb", targetGroupArn: asg.targetGroupArns[site], service: SITES[site].service } : { type: "classic", name: SITES[site].lb, service: SITES[site].service }));
    plane = await startLbPlane({ aws, proxy: bed.aws, hosts, lbs, outOfServicePolls: options.outOfServicePolls ?? 3 });
    watcher = watch();
    const waitBooted = async (id: string, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const host = hosts.get(id);
        if (host) return host;
        await delay(100);
      }
      throw new Error(`fixture instance ${id} did not boot within ${timeoutMs} ms${watchError ? `: ${watchError}` : ""}`);
    };
    for (const id of [...blue.web, ...blue.worker]) await waitBooted(id);
    // The database at blue's release.
    const first = hosts.get(blue.web[0]!)!;
    for (const service of ["lms", "cms"]) execFileSync(python, ["manage.py", service, "migrate", "--noinput"], { cwd: APP, env: { ...process.env, EDXAPP_HOST_DIR: first.dir }, stdio: ["ignore", "ignore", "pipe"] });

    const lbDnsNames = asg ? { lms: asg.albDnsName, studio: asg.albDnsName } : await createSiteLbs(elb, placement, blue.web);
    const { distributionId, distributionDomain } = await createMaintenance(aws);
    const hostedZoneId = await createZone(aws.route53, lbDnsNames);
    const lbUrls = Object.fromEntries((Object.keys(SITES) as SiteName[]).map((site) => [site, plane!.urls[asg ? asg.targetGroupArns[site] : SITES[site].lb]!])) as Record<SiteName, string>;
    const hostBin = `${root}/hosts/{instanceId}/bin`;
    const saltSelector = (role: "web" | "worker", ids?: string[]) => ({ ...(ids ? { ids } : {}), tags: { environment: ENVIRONMENT, purpose: PURPOSE, role: SALT_ROLE[role] } });
    const selector = (role: "web" | "worker", ids?: string[]) => (asg ? { autoScalingGroup: asg.groups[role] } : saltSelector(role, ids));
    const networkUrl = plane.networkUrl;

    return {
      db,
      amis,
      blue,
      asg,
      hostedZoneId,
      distributionId,
      distributionDomain,
      lbDnsNames,
      lbUrls,
      hosts,
      systemConfig(o) {
        const site = (name: SiteName, title: string, text?: string) => ({
          name,
          loadBalancer: asg ? { type: "alb", targetGroupArns: [asg.targetGroupArns[name]], port: SITES[name].service === "lms" ? 8000 : 8010 } : { type: "classic", name: SITES[name].lb },
          records: [SITES[name].record],
          verify: { baseUrl: lbUrls[name], checks: [{ url: "/heartbeat", json: { "sql.status": true } }, { url: "/", text: text ?? title }] },
        });
        return {
          kind: "openedx",
          release: o.release,
          phase: o.phase,
          fleet: FLEET,
          amis: o.amis ?? amis[o.release as Release] ?? amis["sumac.3"],
          blue: { release: o.blueRelease ?? release, web: selector("web", o.blueIds?.web), worker: selector("worker", o.blueIds?.worker) },
          launchTags: asg ? { edxapp_release: "{release}" } : { edx_codename: "{name}", "release-version": "{number}" },
          sites: [site("lms", "MITx residential", o.verifyText ?? `release ${o.release}`), site("studio", "MITx Studio")],
          dns: { hostedZoneId },
          maintenance: { distributionId, bucket: BUCKET, windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "residential-support@mitx.example.edu" },
          ssh: { host: sshd.host, port: sshd.port, user: sshd.user, knownHostsPath: sshd.knownHostsPath, privateKeyConfig: o.keyConfig },
          host: compose
            ? {
                // The compose layout's commands with the bed's Compose (bin/compose) for `docker compose`,
                // and each host's compose file in its own directory (the bed's hosts share one machine).
                layout: "compose",
                composeFile: `${root}/hosts/{instanceId}/docker-compose.yaml`,
                commands: {
                  status: `${hostBin}/compose -f {composeFile} ps --all --format json`,
                  stop: `${hostBin}/compose -f {composeFile} stop`,
                  start: `${hostBin}/compose -f {composeFile} up -d`,
                  migrate: `${hostBin}/compose -f {composeFile} run --rm {service} python manage.py {service} migrate --noinput`,
                  manage: `${hostBin}/compose -f {composeFile} run --rm {service} python manage.py {service} {args}`,
                },
                deadlines: { status: 30, stop: 60, start: 120, migrate: 180, releaseStep: 180 },
              }
            : {
                // The supervisor layout's commands, at the fixture hosts' bin/ instead of /edx/bin.
                layout: "supervisor",
                commands: {
                  status: `${hostBin}/supervisorctl status`,
                  stop: `${hostBin}/supervisorctl stop all`,
                  start: `${hostBin}/supervisorctl start all`,
                  migrate: `${hostBin}/edxapp-migrate-{service}`,
                  manage: `${hostBin}/manage {service} {args}`,
                },
                deadlines: { status: 30, stop: 60, start: 60, migrate: 120, releaseStep: 120 },
              },
          heartbeats: {
            lms: { url: `${networkUrl}/i/{instanceId}/lms/heartbeat` },
            cms: { url: `${networkUrl}/i/{instanceId}/cms/heartbeat` },
            workers: { url: `${networkUrl}/i/{instanceId}/lms/heartbeat?extended` },
          },
          timing: { pollSeconds: 0.2, bootSeconds: 30, healthySeconds: o.healthySeconds ?? 20, dnsSyncSeconds: 20, maxWaitSeconds: 5 },
        };
      },
      ...fleetAwsReads(aws, hostedZoneId, asg),
      migrations: () => db.query("SELECT CONCAT(app, '.', name) FROM django_migrations ORDER BY app, name;").split("\n").filter(Boolean),
      throughLb: (pathname, site = "lms") =>
        new Promise((resolve, reject) => {
          http.get(`${lbUrls[site]}${pathname}`, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          }).on("error", reject);
        }),
      asked: () => plane!.asked(),
      outOfService: () => plane!.outOfService(),
      setOutOfServicePolls: (n) => plane!.setOutOfServicePolls(n),
      waitBooted,
      mark(release, marker, on) {
        if (on) markers.add(`${release}/${marker}`);
        else markers.delete(`${release}/${marker}`);
        for (const h of hosts.values()) {
          if (h.release !== release) continue;
          if (on) fs.writeFileSync(path.join(h.dir, marker), "");
          else fs.rmSync(path.join(h.dir, marker), { force: true });
        }
      },
      launchForeign: () => launchForeign(ec2, placement, amis, release),
      processStatus: (id) => hosts.get(id)!.status(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
