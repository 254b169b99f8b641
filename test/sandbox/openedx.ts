import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { CloudFrontClient, CreateDistributionCommand } from "@aws-sdk/client-cloudfront";
import { CreateSecurityGroupCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, RegisterImageCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  ConfigureHealthCheckCommand,
  CreateLBCookieStickinessPolicyCommand,
  CreateLoadBalancerCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand,
  RegisterInstancesWithLoadBalancerCommand,
  SetLoadBalancerPoliciesOfListenerCommand,
} from "@aws-sdk/client-elastic-load-balancing";
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from "@aws-sdk/client-route-53";
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SANDBOX_REGION, type Sandbox } from "./index";
import { startMariaDb, type MariaDb } from "./mariadb";
import { bootHost, openEdxVenv, supervisorStatus, type OpenEdxHost } from "./openedxHosts";
import { startLbPlane } from "./openedxLb";
import { delay } from "./processes";

export { openEdxVenv, type OpenEdxHost } from "./openedxHosts";

/**
 * A fixture MITx residential Open edX fleet on the bed (runbook 5), tagged and laid out as the
 * Salt era ran it (mitodl/salt-ops: cloud maps and orchestrate.edx; RUNBOOKS.md): instances
 * tagged `environment`, `purpose`, `role=edx|edx-worker`, `edx_codename`, `release-version`,
 * named `edx-<env>-<purpose>-<n>-v<N>`, no `openedx:*` tag; one classic ELB per site, lms
 * (`edx-<purpose>-<env>`) and a separate Studio ELB with an LB-cookie stickiness policy, each
 * with its own CNAME; 300 s draining there, 1 s here.
 *
 * - AWS is moto (AMI validation on): one AMI per release and role; blue launched from redwood.3's.
 * - Instances "boot": a watcher polls moto and, for every running instance launched from a fixture
 *   AMI (by the bed or by the workflow), boots a host (openedxHosts.ts); a terminated one stops.
 *   Every host is reached through the bed's one sshd, told apart by its directory.
 * - The database is Debian's MariaDB, bed-local (test/sandbox/mariadb.ts).
 * - Load balancers: the bed's data plane and health compensation (openedxLb.ts).
 */
export const RELEASES = ["redwood.3", "sumac.3"] as const;
export type Release = (typeof RELEASES)[number];
export const FLEET = "mitx-residential";
export const ZONE = "mitx.example.edu";
export const ENVIRONMENT = "mitx-production";
export const PURPOSE = "current-residential-live";
export const SITES = {
  lms: { lb: `edx-${PURPOSE}-${ENVIRONMENT}`, record: `lms.${ZONE}`, service: "lms" as const },
  studio: { lb: `edx-studio-${ENVIRONMENT}`, record: `studio.${ZONE}`, service: "cms" as const },
};
export type SiteName = keyof typeof SITES;
export const RECORDS = Object.values(SITES).map((s) => s.record);
export const BUCKET = "mitx-maintenance";
export const SALT_ROLE = { web: "edx", worker: "edx-worker" } as const;

export interface OpenEdxFixture {
  readonly db: MariaDb;
  readonly amis: Record<Release, { web: string; worker: string }>;
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

const saltTags = (release: string, role: "web" | "worker", n: number) => {
  const [codename, number] = release.split(".") as [string, string];
  return [
    { Key: "Name", Value: `edx-${ENVIRONMENT}-${PURPOSE}${role === "worker" ? "-worker" : ""}-${n}-v${number}` },
    { Key: "environment", Value: ENVIRONMENT },
    { Key: "purpose", Value: PURPOSE },
    { Key: "role", Value: SALT_ROLE[role] },
    { Key: "edx_codename", Value: codename },
    { Key: "release-version", Value: number },
  ];
};

export async function startOpenEdxFleet(bed: Sandbox, options: { release?: Release; web?: number; worker?: number; outOfServicePolls?: number } = {}): Promise<OpenEdxFixture> {
  if (!bed.moto || !bed.sshd || !bed.aws) throw new Error("the Open edX fixture needs the bed's moto, fault proxy and sshd");
  const sshd = bed.sshd;
  const python = path.join(openEdxVenv(), "bin", "python");
  const root = path.join(bed.dir, "openedx");
  fs.mkdirSync(path.join(root, "hosts"), { recursive: true });
  // Straight to moto (not through the fault proxy): the bed's own view of AWS.
  const config = { region: SANDBOX_REGION, endpoint: bed.moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  const ec2 = new EC2Client(config);
  const elb = new ElasticLoadBalancingClient(config);
  const route53 = new Route53Client(config);
  const cloudFront = new CloudFrontClient(config);
  const s3 = new S3Client({ ...config, forcePathStyle: true });
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
    for (const c of [ec2, elb, route53, cloudFront, s3]) c.destroy();
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
    const amis = {} as OpenEdxFixture["amis"];
    for (const release of RELEASES) {
      amis[release] = { web: "", worker: "" };
      for (const role of ["web", "worker"] as const) {
        const image = await ec2.send(new RegisterImageCommand({ Name: `edxapp-${release}-${role}`, Description: `Open edX ${release} ${role}` }));
        amis[release][role] = image.ImageId!;
        amiRelease.set(image.ImageId!, { release, role });
      }
    }
    const subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets![0]!;
    const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: `edx-${ENVIRONMENT}`, Description: "Open edX app servers", VpcId: subnet.VpcId }));
    // The instance profile the Salt era gave edxapp (orchestrate.edx: edx-instance-role). The repo
    // has no IAM client (nothing else needs one): one query-protocol call, straight to moto.
    const iam = await fetch(bed.moto.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0" },
      body: "Action=CreateInstanceProfile&Version=2010-05-08&InstanceProfileName=edx-instance-role",
    });
    if (!iam.ok) throw new Error(`moto IAM CreateInstanceProfile: ${iam.status} ${await iam.text()}`);
    const profileArn = /<Arn>([^<]+)<\/Arn>/.exec(await iam.text())?.[1] ?? "";
    const release = options.release ?? "redwood.3";
    const launch = async (role: "web" | "worker", count: number, type: "t3.large" | "t3.medium") => {
      const ids: string[] = [];
      // One call per instance: each has its own Salt-era name (…-<n>-v<N>).
      for (let n = 0; n < count; n++) {
        const out = await ec2.send(
          new RunInstancesCommand({
            ImageId: amis[release][role],
            InstanceType: type,
            MinCount: 1,
            MaxCount: 1,
            SubnetId: subnet.SubnetId,
            SecurityGroupIds: [sg.GroupId!],
            IamInstanceProfile: { Arn: profileArn },
            UserData: Buffer.from("#cloud-config\nsalt_minion:\n  conf:\n    master: salt.mitx.example.edu\n").toString("base64"),
            BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 25, VolumeType: "gp3", Encrypted: true, DeleteOnTermination: true } }],
            TagSpecifications: [{ ResourceType: "instance", Tags: saltTags(release, role, n) }],
          }),
        );
        ids.push(out.Instances![0]!.InstanceId!);
      }
      return ids;
    };
    const blue = { web: await launch("web", options.web ?? 2, "t3.large"), worker: await launch("worker", options.worker ?? 1, "t3.medium") };
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

    const lbDnsNames = {} as Record<SiteName, string>;
    for (const [site, { lb, service }] of Object.entries(SITES) as Array<[SiteName, (typeof SITES)[SiteName]]>) {
      const created = await elb.send(
        new CreateLoadBalancerCommand({
          LoadBalancerName: lb,
          Listeners: [{ Protocol: "HTTP", LoadBalancerPort: 80, InstanceProtocol: "HTTP", InstancePort: service === "lms" ? 8000 : 8010 }],
          Subnets: [subnet.SubnetId!],
          SecurityGroups: [sg.GroupId!],
        }),
      );
      lbDnsNames[site] = created.DNSName!;
      // Salt's ELBs checked HTTPS:443/heartbeat; the bed's hosts serve HTTP on their own ports.
      await elb.send(new ConfigureHealthCheckCommand({ LoadBalancerName: lb, HealthCheck: { Target: `HTTP:${service === "lms" ? 8000 : 8010}/heartbeat`, Interval: 30, Timeout: 5, HealthyThreshold: 3, UnhealthyThreshold: 2 } }));
      await elb.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerName: lb, LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 1 } } }));
      if (site === "studio") {
        await elb.send(new CreateLBCookieStickinessPolicyCommand({ LoadBalancerName: lb, PolicyName: "studio-sticky", CookieExpirationPeriod: 3600 }));
        await elb.send(new SetLoadBalancerPoliciesOfListenerCommand({ LoadBalancerName: lb, LoadBalancerPort: 80, PolicyNames: ["studio-sticky"] }));
      }
      await elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: lb, Instances: blue.web.map((InstanceId) => ({ InstanceId })) }));
    }

    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const dist = await cloudFront.send(
      new CreateDistributionCommand({
        DistributionConfig: {
          CallerReference: `maintenance-${Date.now()}`,
          Comment: "MITx maintenance page",
          Enabled: true,
          DefaultRootObject: "index.html",
          Origins: { Quantity: 1, Items: [{ Id: "maintenance", DomainName: `${BUCKET}.s3.amazonaws.com`, S3OriginConfig: { OriginAccessIdentity: "" } }] },
          DefaultCacheBehavior: { TargetOriginId: "maintenance", ViewerProtocolPolicy: "redirect-to-https", MinTTL: 0, ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } }, TrustedSigners: { Enabled: false, Quantity: 0 } },
        },
      }),
    );
    const zone = await route53.send(new CreateHostedZoneCommand({ Name: ZONE, CallerReference: `zone-${Date.now()}` }));
    const hostedZoneId = zone.HostedZone!.Id!.replace(/^\/hostedzone\//, "");
    await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: hostedZoneId,
        ChangeBatch: { Changes: (Object.keys(SITES) as SiteName[]).map((site) => ({ Action: "UPSERT", ResourceRecordSet: { Name: `${SITES[site].record}.`, Type: "CNAME", TTL: 1, ResourceRecords: [{ Value: lbDnsNames[site] }] } })) },
      }),
    );
    const lbUrls = Object.fromEntries((Object.keys(SITES) as SiteName[]).map((site) => [site, plane.urls[SITES[site].lb]!])) as Record<SiteName, string>;
    const hostBin = `${root}/hosts/{instanceId}/bin`;
    const saltSelector = (role: "web" | "worker", ids?: string[]) => ({ ...(ids ? { ids } : {}), tags: { environment: ENVIRONMENT, purpose: PURPOSE, role: SALT_ROLE[role] } });

    return {
      db,
      amis,
      blue,
      hostedZoneId,
      distributionId: dist.Distribution!.Id!,
      distributionDomain: dist.Distribution!.DomainName!,
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
          maintenance: { distributionId: dist.Distribution!.Id!, bucket: BUCKET, windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "residential-support@mitx.example.edu" },
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
      async records() {
        const out = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId }));
        return Object.fromEntries(RECORDS.map((name) => [name, out.ResourceRecordSets?.find((s) => s.Name === `${name}.` && s.Type === "CNAME")?.ResourceRecords?.[0]?.Value?.replace(/\.$/, "")]));
      },
      async registered(site) {
        const out = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [SITES[site].lb] }));
        return (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!).sort();
      },
      async listenerPolicies(site) {
        const out = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [SITES[site].lb] }));
        return (out.LoadBalancerDescriptions?.[0]?.ListenerDescriptions ?? []).flatMap((l) => l.PolicyNames ?? []);
      },
      async instanceStates(ids) {
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
        return Object.fromEntries((out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i.State!.Name!]));
      },
      async instanceTags(id) {
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
        return Object.fromEntries((out.Reservations?.[0]?.Instances?.[0]?.Tags ?? []).map((t) => [t.Key!, t.Value!]));
      },
      migrations: () => db.query("SELECT CONCAT(app, '.', name) FROM django_migrations ORDER BY app, name;").split("\n").filter(Boolean),
      async maintenancePage() {
        try {
          const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "index.html" }));
          return await out.Body!.transformToString();
        } catch {
          return undefined;
        }
      },
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
      async launchForeign() {
        const tags = saltTags(release, "web", 0).map((t) => (t.Key === "environment" ? { ...t, Value: "mitx-online-production" } : t.Key === "Name" ? { ...t, Value: "edx-mitx-online-production-0-v3" } : t));
        const out = await ec2.send(new RunInstancesCommand({ ImageId: amis[release].web, InstanceType: "t3.large", MinCount: 1, MaxCount: 1, SubnetId: subnet.SubnetId, TagSpecifications: [{ ResourceType: "instance", Tags: tags }] }));
        return out.Instances![0]!.InstanceId!;
      },
      supervisorStatus: (id) => supervisorStatus(hosts.get(id)!),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
