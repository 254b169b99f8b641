import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import type { Sandbox } from "./index";
import { startMariaDb, type MariaDb } from "./mariadb";
import { BUCKET, createMaintenance, createPlacement, createSiteLbs, createZone, ENVIRONMENT, FLEET, fleetAws, fleetAwsReads, launchForeign, launchSalt, PURPOSE, registerAmis, SALT_ROLE, SITES, type Amis, type Release, type SiteName } from "./openedxAws";
import { bootHost, openEdxVenv, supervisorStatus, type OpenEdxHost } from "./openedxHosts";
import { startLbPlane } from "./openedxLb";
import { delay } from "./processes";

export { openEdxVenv, type OpenEdxHost } from "./openedxHosts";
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
 */
export interface OpenEdxFixture {
  readonly db: MariaDb;
  readonly amis: Amis;
  readonly blue: { web: string[]; worker: string[] };
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
  /** OutOfService answers the bed's health compensation gave. */
  outOfService(): Array<{ lb: string; instance: string; reason: string }>;
  /** How many answers after registration report an instance OutOfService (default 3). */
  setOutOfServicePolls(n: number): void;
  /** Waits until the instance's host has booted. */
  waitBooted(id: string, timeoutMs?: number): Promise<OpenEdxHost>;
  supervisorStatus(id: string): Record<string, string>;
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

export async function startOpenEdxFleet(bed: Sandbox, options: { release?: Release; web?: number; worker?: number; outOfServicePolls?: number } = {}): Promise<OpenEdxFixture> {
  if (!bed.moto || !bed.sshd || !bed.aws) throw new Error("the Open edX fixture needs the bed's moto, fault proxy and sshd");
  const sshd = bed.sshd;
  const python = path.join(openEdxVenv(), "bin", "python");
  const root = path.join(bed.dir, "openedx");
  fs.mkdirSync(path.join(root, "hosts"), { recursive: true });
  const aws = fleetAws(bed.moto.url);
  const { ec2, elb } = aws;
  const db = await startMariaDb();
  const hosts = new Map<string, OpenEdxHost>();
  const markers = new Set<string>();
  const amiRelease = new Map<string, { release: string; role: "web" | "worker" }>();
  let watching = true;
  let watcher: Promise<void> = Promise.resolve();
  const plane = await startLbPlane({ elb, proxy: bed.aws, hosts, sites: Object.fromEntries(Object.values(SITES).map((s) => [s.lb, s.service])), outOfServicePolls: options.outOfServicePolls ?? 3 });

  const stopHost = async (host: OpenEdxHost) => {
    host.stopped = true;
    await host.supervisord.stop();
  };
  const stop = async () => {
    watching = false;
    await watcher;
    for (const host of hosts.values()) await stopHost(host);
    await plane.close();
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
        hosts.set(id, await bootHost({ root, id, release, role, python, db, markers: hostMarkers }));
      } else if (host && !host.stopped && (state === "terminated" || state === "shutting-down" || state === "stopped")) {
        await stopHost(host);
      }
    }
  }
  const watch = async () => {
    while (watching) {
      await watchOnce().catch(() => undefined);
      await delay(250);
    }
  };

  try {
    const amis = await registerAmis(ec2, amiRelease);
    const placement = await createPlacement(ec2, bed.moto.url);
    const release = options.release ?? "redwood.3";
    const blue = { web: await launchSalt(ec2, placement, amis, release, "web", options.web ?? 2, "t3.large"), worker: await launchSalt(ec2, placement, amis, release, "worker", options.worker ?? 1, "t3.medium") };
    watcher = watch();
    const waitBooted = async (id: string, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const host = hosts.get(id);
        if (host) return host;
        await delay(100);
      }
      throw new Error(`fixture instance ${id} did not boot within ${timeoutMs} ms`);
    };
    for (const id of [...blue.web, ...blue.worker]) await waitBooted(id);
    // The database at blue's release.
    const first = hosts.get(blue.web[0]!)!;
    for (const service of ["lms", "cms"]) execFileSync(path.join(first.dir, "bin", `edxapp-migrate-${service}`), { stdio: ["ignore", "ignore", "pipe"] });

    const lbDnsNames = await createSiteLbs(elb, placement, blue.web);
    const { distributionId, distributionDomain } = await createMaintenance(aws);
    const hostedZoneId = await createZone(aws.route53, lbDnsNames);
    const lbUrls = Object.fromEntries((Object.keys(SITES) as SiteName[]).map((site) => [site, plane.urls[SITES[site].lb]!])) as Record<SiteName, string>;
    const hostBin = `${root}/hosts/{instanceId}/bin`;
    const saltSelector = (role: "web" | "worker", ids?: string[]) => ({ ...(ids ? { ids } : {}), tags: { environment: ENVIRONMENT, purpose: PURPOSE, role: SALT_ROLE[role] } });

    return {
      db,
      amis,
      blue,
      hostedZoneId,
      distributionId,
      distributionDomain,
      lbDnsNames,
      lbUrls,
      hosts,
      systemConfig(o) {
        const site = (name: SiteName, title: string, text?: string) => ({
          name,
          loadBalancer: { type: "classic", name: SITES[name].lb },
          records: [SITES[name].record],
          verify: { baseUrl: lbUrls[name], checks: [{ url: "/heartbeat", json: { "sql.status": true } }, { url: "/", text: text ?? title }] },
        });
        return {
          kind: "openedx",
          release: o.release,
          phase: o.phase,
          fleet: FLEET,
          amis: o.amis ?? amis[o.release as Release] ?? amis["sumac.3"],
          blue: { release: o.blueRelease ?? release, web: saltSelector("web", o.blueIds?.web), worker: saltSelector("worker", o.blueIds?.worker) },
          launchTags: { edx_codename: "{name}", "release-version": "{number}" },
          sites: [site("lms", "MITx residential", o.verifyText ?? `release ${o.release}`), site("studio", "MITx Studio")],
          dns: { hostedZoneId },
          maintenance: { distributionId, bucket: BUCKET, windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "residential-support@mitx.example.edu" },
          ssh: { host: sshd.host, port: sshd.port, user: sshd.user, knownHostsPath: sshd.knownHostsPath, privateKeyConfig: o.keyConfig },
          // The supervisor layout's commands, at the fixture hosts' bin/ instead of /edx/bin.
          host: {
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
            lms: { url: `${plane.networkUrl}/i/{instanceId}/lms/heartbeat` },
            cms: { url: `${plane.networkUrl}/i/{instanceId}/cms/heartbeat` },
            workers: { url: `${plane.networkUrl}/i/{instanceId}/lms/heartbeat?extended` },
          },
          timing: { pollSeconds: 0.2, bootSeconds: 30, healthySeconds: o.healthySeconds ?? 20, dnsSyncSeconds: 20, maxWaitSeconds: 5 },
        };
      },
      ...fleetAwsReads(aws, hostedZoneId),
      migrations: () => db.query("SELECT CONCAT(app, '.', name) FROM django_migrations ORDER BY app, name;").split("\n").filter(Boolean),
      throughLb: (pathname, site = "lms") =>
        new Promise((resolve, reject) => {
          http.get(`${lbUrls[site]}${pathname}`, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          }).on("error", reject);
        }),
      outOfService: () => plane.outOfService(),
      setOutOfServicePolls: (n) => plane.setOutOfServicePolls(n),
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
      supervisorStatus: (id) => supervisorStatus(hosts.get(id)!),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
