import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { CloudFrontClient, CreateDistributionCommand } from "@aws-sdk/client-cloudfront";
import {
  CreateSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RegisterImageCommand,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  CreateLoadBalancerCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand,
  RegisterInstancesWithLoadBalancerCommand,
} from "@aws-sdk/client-elastic-load-balancing";
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from "@aws-sdk/client-route-53";
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { toolchainCache } from "../../lib/toolchain";
import { REPO_ROOT } from "./fixtures";
import { SANDBOX_REGION, type Sandbox } from "./index";
import { startMariaDb, type MariaDb } from "./mariadb";
import { delay, freePort, startGuarded, type ManagedProcess } from "./processes";

/**
 * A fixture MITx residential Open edX fleet on the bed (runbook 5).
 *
 * - AWS is moto (AMI validation on): the fixture registers one AMI per release and role, launches
 *   blue from redwood.3's, and creates the classic ELB, the Route 53 zone with the lms/studio
 *   CNAMEs, the maintenance bucket and CloudFront distribution.
 * - Instances "boot": a watcher polls moto and, for every running instance launched from a fixture
 *   AMI (by the bed or by the workflow), makes a host directory with a real supervisord (PyPI
 *   `supervisor`) supervising the fixture Django app (test/fixtures/openedx/app) at the AMI's
 *   release on a port of its own; a terminated instance's supervisord is stopped. Every host is
 *   reached through the bed's one sshd, told apart by its directory.
 * - The database is Debian's MariaDB, bed-local (test/sandbox/mariadb.ts).
 * - moto has no load-balancer data plane: a small one here forwards each request only to an
 *   instance moto lists as registered with the ELB (and running), so checks through it are real.
 *   The instances' own addresses are `http://127.0.0.1:<net>/i/<instance id>` (a loopback router).
 */
export const RELEASES = ["redwood.3", "sumac.3"] as const;
export type Release = (typeof RELEASES)[number];
export const FLEET = "mitx-residential";
export const ZONE = "mitx.example.edu";
export const RECORDS = [`lms.${ZONE}`, `studio.${ZONE}`];
export const LB_NAME = "mitx-lms";
export const BUCKET = "mitx-maintenance";

export interface OpenEdxHost {
  id: string;
  release: string;
  role: "web" | "worker";
  dir: string;
  port: number;
  supervisord: ManagedProcess;
  stopped: boolean;
}

export interface OpenEdxFixture {
  readonly db: MariaDb;
  readonly amis: Record<Release, { web: string; worker: string }>;
  readonly blue: { web: string[]; worker: string[] };
  readonly hostedZoneId: string;
  readonly distributionId: string;
  readonly distributionDomain: string;
  readonly lbDnsName: string;
  /** The load balancer's data plane on loopback. */
  readonly lbUrl: string;
  readonly hosts: Map<string, OpenEdxHost>;
  /** The own stack's `systems.<name>` entry (kind openedx); the SSH key named by a secret config key. */
  systemConfig(options: { release: string; phase: "prepared" | "live"; amis?: { web: string; worker: string }; keyConfig: string; blue?: { web: string[]; worker: string[] }; verifyText?: string; healthySeconds?: number }): Record<string, unknown>;
  /** What each record points at (CNAME value, no trailing dot). */
  records(): Promise<Record<string, string | undefined>>;
  registered(): Promise<string[]>;
  instanceStates(ids: string[]): Promise<Record<string, string>>;
  /** Applied Django migrations, "app.name". */
  migrations(): string[];
  maintenancePage(): Promise<string | undefined>;
  /** GET through the load balancer's data plane. */
  throughLb(pathname: string): Promise<{ status: number; body: string }>;
  /** Waits until the instance's host has booted. */
  waitBooted(id: string, timeoutMs?: number): Promise<OpenEdxHost>;
  supervisorStatus(id: string): Record<string, string>;
  /**
   * Breaks (or mends) hosts by a marker file the fixture app reads: HEARTBEAT_FAIL (its /heartbeat
   * answers 503) or FAIL_MIGRATION (sumac.3's new migration fails). Applies to the hosts of
   * `release` that exist and to those that boot later, until mended.
   */
  mark(release: string, marker: "HEARTBEAT_FAIL" | "FAIL_MIGRATION", on: boolean): void;
  /** Launches a web instance of another fleet (tagged so), for refusal tests. */
  launchForeign(): Promise<string>;
  stop(): Promise<void>;
}

/** The hosts' own Python environment (Django, supervisor, PyMySQL), cached by its requirements. */
export function openEdxVenv(): string {
  const requirements = path.join(REPO_ROOT, "test", "fixtures", "openedx", "requirements.txt");
  const hash = createHash("sha256").update(fs.readFileSync(requirements)).digest("hex").slice(0, 12);
  const dir = path.join(toolchainCache(), `openedx-venv-${hash}`);
  if (fs.existsSync(path.join(dir, ".complete"))) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.build-`);
  execFileSync("python3", ["-m", "venv", tmp]);
  execFileSync(path.join(tmp, "bin", "python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements], { stdio: ["ignore", "ignore", "pipe"] });
  fs.writeFileSync(path.join(tmp, ".complete"), "");
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
  return dir;
}

const APP = path.join(REPO_ROOT, "test", "fixtures", "openedx", "app");

export async function startOpenEdxFleet(bed: Sandbox, options: { release?: Release; web?: number; worker?: number } = {}): Promise<OpenEdxFixture> {
  if (!bed.moto || !bed.sshd) throw new Error("the Open edX fixture needs the bed's moto and sshd");
  const sshd = bed.sshd;
  const venv = openEdxVenv();
  const python = path.join(venv, "bin", "python");
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
  const servers: http.Server[] = [];
  let watching = true;
  let watcher: Promise<void> = Promise.resolve();

  const stopHost = async (host: OpenEdxHost) => {
    host.stopped = true;
    await host.supervisord.stop();
  };
  const stop = async () => {
    watching = false;
    await watcher;
    for (const host of hosts.values()) await stopHost(host);
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    for (const c of [ec2, elb, route53, cloudFront, s3]) c.destroy();
    await db.stop();
    fs.rmSync(root, { recursive: true, force: true });
  };

  async function boot(id: string, release: string, role: "web" | "worker"): Promise<void> {
    const dir = path.join(root, "hosts", id);
    fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
    const port = await freePort();
    fs.writeFileSync(path.join(dir, "release"), `${release}\n`);
    for (const m of markers) if (m.startsWith(`${release}/`)) fs.writeFileSync(path.join(dir, m.split("/")[1]!), "");
    fs.writeFileSync(path.join(dir, "db.json"), JSON.stringify({ host: db.host, port: db.port, name: db.database, user: db.user, password: db.password }), { mode: 0o600 });
    const conf = path.join(dir, "supervisord.conf");
    const env = `EDXAPP_HOST_DIR="${dir}",PYTHONUNBUFFERED="1"`;
    const program = (name: string, command: string) =>
      `[program:${name}]\ncommand=${command}\nenvironment=${env}\ndirectory=${APP}\nautostart=true\nstartsecs=1\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=5\nredirect_stderr=true\nstdout_logfile=${dir}/${name}.log\n`;
    // cms and the worker are stand-ins (a process that idles): only lms serves HTTP in the fixture.
    const idle = `${python} -c "import time; [time.sleep(60) for _ in iter(int, 1)]"`;
    const programs =
      role === "web"
        ? program("lms", `${python} ${APP}/manage.py lms runserver 127.0.0.1:${port} --noreload --skip-checks`) + program("cms", idle)
        : program("lms_default_worker", idle);
    fs.writeFileSync(
      conf,
      `[unix_http_server]\nfile=${dir}/supervisor.sock\n[supervisord]\nlogfile=${dir}/supervisord.log\npidfile=${dir}/supervisord.pid\nnodaemon=true\nuser=root\n` +
        `[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n[supervisorctl]\nserverurl=unix://${dir}/supervisor.sock\n` +
        programs,
    );
    fs.writeFileSync(path.join(dir, "bin", "supervisorctl"), `#!/bin/sh\nexec ${python} -m supervisor.supervisorctl -c ${conf} "$@"\n`, { mode: 0o755 });
    for (const service of ["lms", "cms"]) {
      fs.writeFileSync(path.join(dir, "bin", `edxapp-migrate-${service}`), `#!/bin/sh\ncd ${APP} && EDXAPP_HOST_DIR=${dir} exec ${python} manage.py ${service} migrate --noinput\n`, { mode: 0o755 });
    }
    const supervisord = startGuarded({ name: `supervisord ${id}`, command: python, args: ["-m", "supervisor.supervisord", "-c", conf] });
    for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, "supervisor.sock")); i++) await delay(100);
    hosts.set(id, { id, release, role, dir, port, supervisord, stopped: false });
  }

  // The instances' "boot": every running instance from a fixture AMI gets a host; terminated ones stop.
  async function watchOnce(): Promise<void> {
    const out = await ec2.send(new DescribeInstancesCommand({}));
    for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const id = i.InstanceId!;
      const host = hosts.get(id);
      const state = i.State?.Name;
      if (!host && state === "running" && amiRelease.has(i.ImageId ?? "")) {
        const { release, role } = amiRelease.get(i.ImageId!)!;
        await boot(id, release, role);
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

  // Loopback "network": /i/<id>/… reaches that instance's lms port.
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, port: number, pathname: string) => {
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: pathname, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", (err) => res.writeHead(502).end(`bed: instance unreachable: ${err.message}`));
    req.pipe(up);
  };
  const listen = async (handler: http.RequestListener) => {
    const server = http.createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as AddressInfo).port;
  };
  const netPort = await listen((req, res) => {
    const m = /^\/i\/(i-[0-9a-f]+)(\/.*)?$/.exec(req.url ?? "");
    const host = m ? hosts.get(m[1]!) : undefined;
    if (!host || host.stopped || host.role !== "web") return void res.writeHead(504).end("bed: no such instance answers");
    forward(req, res, host.port, m![2] ?? "/");
  });
  let turn = 0;
  const lbPort = await listen(async (req, res) => {
    try {
      const out = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [LB_NAME] }));
      const registered = (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!);
      const live = registered.map((id) => hosts.get(id)).filter((h): h is OpenEdxHost => !!h && !h.stopped && h.role === "web");
      if (live.length === 0) return void res.writeHead(503).end("bed load balancer: no registered instance");
      forward(req, res, live[turn++ % live.length]!.port, req.url ?? "/");
    } catch (err) {
      res.writeHead(503).end(`bed load balancer: ${(err as Error).message}`);
    }
  });

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
    const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: "edxapp", Description: "Open edX app servers", VpcId: subnet.VpcId }));
    const release = options.release ?? "redwood.3";
    const launch = async (role: "web" | "worker", count: number, type: "t3.large" | "t3.medium") => {
      if (count === 0) return [];
      const out = await ec2.send(
        new RunInstancesCommand({
          ImageId: amis[release][role],
          InstanceType: type,
          MinCount: count,
          MaxCount: count,
          SubnetId: subnet.SubnetId,
          SecurityGroupIds: [sg.GroupId!],
          TagSpecifications: [
            {
              ResourceType: "instance",
              Tags: [
                { Key: "Name", Value: `${FLEET}-${release}-${role}` },
                { Key: "openedx:fleet", Value: FLEET },
                { Key: "openedx:release", Value: release },
                { Key: "openedx:role", Value: role },
              ],
            },
          ],
        }),
      );
      return out.Instances!.map((i) => i.InstanceId!);
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

    const lb = await elb.send(
      new CreateLoadBalancerCommand({
        LoadBalancerName: LB_NAME,
        Listeners: [{ Protocol: "HTTP", LoadBalancerPort: 80, InstanceProtocol: "HTTP", InstancePort: 8000 }],
        Subnets: [subnet.SubnetId!],
        SecurityGroups: [sg.GroupId!],
      }),
    );
    await elb.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerName: LB_NAME, LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 1 } } }));
    await elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: LB_NAME, Instances: blue.web.map((InstanceId) => ({ InstanceId })) }));

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
        ChangeBatch: { Changes: RECORDS.map((name) => ({ Action: "UPSERT", ResourceRecordSet: { Name: `${name}.`, Type: "CNAME", TTL: 1, ResourceRecords: [{ Value: lb.DNSName! }] } })) },
      }),
    );
    const lbUrl = `http://127.0.0.1:${lbPort}`;
    const privateKey = fs.readFileSync(sshd.privateKeyPath, "utf8");
    void privateKey;

    return {
      db,
      amis,
      blue,
      hostedZoneId,
      distributionId: dist.Distribution!.Id!,
      distributionDomain: dist.Distribution!.DomainName!,
      lbDnsName: lb.DNSName!,
      lbUrl,
      hosts,
      systemConfig(o) {
        return {
          kind: "openedx",
          release: o.release,
          phase: o.phase,
          fleet: FLEET,
          amis: o.amis ?? amis[o.release as Release] ?? amis["sumac.3"],
          blue: { release, ...(o.blue ?? blue) },
          loadBalancer: { type: "classic", name: LB_NAME },
          dns: { hostedZoneId, records: RECORDS },
          maintenance: { distributionId: dist.Distribution!.Id!, bucket: BUCKET, windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "residential-support@mitx.example.edu" },
          ssh: { host: sshd.host, port: sshd.port, user: sshd.user, knownHostsPath: sshd.knownHostsPath, privateKeyConfig: o.keyConfig },
          commands: { supervisorctl: `${root}/hosts/{instanceId}/bin/supervisorctl`, migrate: `${root}/hosts/{instanceId}/bin/edxapp-migrate-{service}` },
          instanceUrl: `http://127.0.0.1:${netPort}/i/{instanceId}`,
          verify: { baseUrl: lbUrl, checks: [{ path: "/heartbeat", status: 200, text: o.verifyText ?? o.release }, { path: "/", status: 200, text: "MITx residential" }] },
          timing: { pollSeconds: 0.2, bootSeconds: 30, healthySeconds: o.healthySeconds ?? 20, dnsSyncSeconds: 20, maxWaitSeconds: 5, commandSeconds: 120 },
        };
      },
      async records() {
        const out = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId }));
        return Object.fromEntries(RECORDS.map((name) => [name, out.ResourceRecordSets?.find((s) => s.Name === `${name}.` && s.Type === "CNAME")?.ResourceRecords?.[0]?.Value?.replace(/\.$/, "")]));
      },
      async registered() {
        const out = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [LB_NAME] }));
        return (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!);
      },
      async instanceStates(ids) {
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
        return Object.fromEntries((out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i.State!.Name!]));
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
      throughLb: (pathname) =>
        new Promise((resolve, reject) => {
          http.get(`${lbUrl}${pathname}`, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          }).on("error", reject);
        }),
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
        const out = await ec2.send(
          new RunInstancesCommand({
            ImageId: amis[release].web,
            InstanceType: "t3.large",
            MinCount: 1,
            MaxCount: 1,
            SubnetId: subnet.SubnetId,
            TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "openedx:fleet", Value: "mitx-online" }, { Key: "openedx:role", Value: "web" }] }],
          }),
        );
        return out.Instances![0]!.InstanceId!;
      },
      supervisorStatus(id) {
        const host = hosts.get(id)!;
        let out: string;
        try {
          out = execFileSync(path.join(host.dir, "bin", "supervisorctl"), ["status"], { encoding: "utf8" });
        } catch (err) {
          out = String((err as { stdout?: string }).stdout ?? "");
        }
        return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/).slice(0, 2) as [string, string]));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
