import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeAutoScalingGroupsCommand, type AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { DescribeLoadBalancersCommand, type ElasticLoadBalancingClient } from "@aws-sdk/client-elastic-load-balancing";
import { DescribeTargetHealthCommand, type ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { FaultProxy } from "./faultProxy";
import type { OpenEdxHost } from "./openedxHosts";

/**
 * Where moto is not a load balancer, for the Open edX fleet:
 *
 * - Data plane: moto has none. Each classic ELB, and each ALB target group, gets a loopback
 *   listener that forwards a request only to an instance moto lists as registered there (for a
 *   target group: not draining or unused) whose host runs (round robin), to the site's service on
 *   it (lms, or cms for studio); a "network" router reaches an instance's own services as
 *   /i/<instance id>/<lms|cms>/…, and records what was asked of it.
 * - Health: moto answers DescribeInstanceHealth with InService, and DescribeTargetHealth with
 *   healthy, for every running registered instance at once, and never health-checks. A real load
 *   balancer keeps a new instance OutOfService (a target `initial`, Elb.RegistrationInProgress)
 *   until it passed HealthyThreshold checks, and takes an instance out whose health check fails.
 *   The compensation (in the fault proxy, so the workflow meets it) rewrites moto's InService /
 *   healthy to OutOfService / initial (a) for the first `outOfServicePolls` answers about an
 *   instance after it was registered there (RegisterInstancesWithLoadBalancer, RegisterTargets, or
 *   an Auto Scaling group attached to the target group), (b) to OutOfService / unhealthy
 *   (Target.FailedHealthChecks) while the health check of it (the service's /heartbeat) does not
 *   answer 200. It only ever turns a success into a failure: never a success moto did not record.
 */
export type PlaneLb = { type: "classic"; name: string; service: "lms" | "cms" } | { type: "alb"; targetGroupArn: string; service: "lms" | "cms" };
const lbKey = (lb: PlaneLb) => (lb.type === "classic" ? lb.name : lb.targetGroupArn);

export interface LbPlane {
  /** The loopback URL of each load balancer's data plane, by ELB name or target group ARN. */
  urls: Record<string, string>;
  networkUrl: string;
  /** OutOfService / initial / unhealthy answers the compensation gave, oldest first (`lb`: ELB name or target group ARN). */
  outOfService(): Array<{ lb: string; instance: string; reason: string }>;
  setOutOfServicePolls(n: number): void;
  /** What was asked of each instance through the network router ("<id> <service><path>"), oldest first. */
  asked(): string[];
  close(): Promise<void>;
}

export interface PlaneClients {
  elb: ElasticLoadBalancingClient;
  elbv2: ElasticLoadBalancingV2Client;
  autoScaling: AutoScalingClient;
}

export async function startLbPlane(options: { aws: PlaneClients; proxy: FaultProxy; hosts: Map<string, OpenEdxHost>; lbs: PlaneLb[]; outOfServicePolls: number }): Promise<LbPlane> {
  const { aws, hosts } = options;
  const lbs = new Map(options.lbs.map((lb) => [lbKey(lb), lb]));
  const servers: http.Server[] = [];
  const listen = async (handler: http.RequestListener) => {
    const server = http.createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, port: number, pathname: string) => {
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: pathname, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", (err) => res.writeHead(502).end(`bed: instance unreachable: ${err.message}`));
    req.pipe(up);
  };
  const serving = (host: OpenEdxHost | undefined): host is OpenEdxHost => !!host && !host.stopped && host.role === "web";

  const asked: string[] = [];
  const networkUrl = await listen((req, res) => {
    const m = /^\/i\/(i-[0-9a-f]+)\/(lms|cms)(\/.*)?$/.exec(req.url ?? "");
    if (m) asked.push(`${m[1]} ${m[2]}${m[3] ?? "/"}`);
    const host = m ? hosts.get(m[1]!) : undefined;
    if (!serving(host)) return void res.writeHead(504).end("bed: no such instance answers");
    forward(req, res, host.ports[m![2] as "lms" | "cms"], m![3] ?? "/");
  });
  const registered = async (lb: PlaneLb): Promise<string[]> => {
    if (lb.type === "classic") {
      const out = await aws.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.name] }));
      return (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!);
    }
    const out = await aws.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: lb.targetGroupArn }));
    return (out.TargetHealthDescriptions ?? []).filter((d) => !["draining", "unused"].includes(d.TargetHealth?.State ?? "")).map((d) => d.Target!.Id!);
  };
  const urls: Record<string, string> = {};
  for (const [key, lb] of lbs) {
    let turn = 0;
    urls[key] = await listen(async (req, res) => {
      try {
        const live = (await registered(lb)).map((id) => hosts.get(id)).filter(serving);
        if (live.length === 0) return void res.writeHead(503).end(`bed load balancer ${key}: no registered instance`);
        forward(req, res, live[turn++ % live.length]!.ports[lb.service], req.url ?? "/");
      } catch (err) {
        res.writeHead(503).end(`bed load balancer ${key}: ${(err as Error).message}`);
      }
    });
  }

  // ---- health as the ELB would see it ----
  let outOfServicePolls = options.outOfServicePolls;
  const pollsSince = new Map<string, number>(); // "<lb>/<id>" → answers since registration
  const given: Array<{ lb: string; instance: string; reason: string }> = [];
  const healthCheck = (host: OpenEdxHost | undefined, service: "lms" | "cms") =>
    new Promise<boolean>((resolve) => {
      if (!serving(host)) return resolve(false);
      http.get({ host: "127.0.0.1", port: host.ports[service], path: "/heartbeat", timeout: 5000 }, (r) => {
        r.resume();
        resolve(r.statusCode === 200);
      }).on("error", () => resolve(false));
    });
  const registering = (lb: string, ids: string[]) => ids.forEach((id) => pollsSince.set(`${lb}/${id}`, 0));
  const members = (params: Record<string, string>, pattern: RegExp) => Object.entries(params).filter(([k]) => pattern.test(k)).map(([, v]) => v);
  // Rewrites the answer's members about healthy instances (see above); `healthy` and `ill` are the
  // protocol's states and the XML elements that carry the reason.
  const rewrite = async (lb: string, service: "lms" | "cms", text: string, form: { id: RegExp; healthy: string; starting: (m: string, reason: string) => string; failing: (m: string, reason: string) => string }) => {
    const rewrites: Array<Promise<[string, string]>> = [];
    for (const member of text.match(/<member>(?:(?!<member>)[\s\S])*?<\/member>/g) ?? []) {
      const id = form.id.exec(member)?.[1];
      if (!id || !member.includes(form.healthy)) continue;
      const key = `${lb}/${id}`;
      const n = pollsSince.get(key) ?? outOfServicePolls;
      pollsSince.set(key, n + 1);
      rewrites.push(
        (async () => {
          if (n < outOfServicePolls) {
            given.push({ lb, instance: id, reason: "Instance registration is still in progress." });
            return [member, form.starting(member, "Instance registration is still in progress.")] as [string, string];
          }
          if (await healthCheck(hosts.get(id), service)) return [member, member] as [string, string];
          const reason = "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.";
          given.push({ lb, instance: id, reason });
          return [member, form.failing(member, reason)] as [string, string];
        })(),
      );
    }
    for (const [from, to] of await Promise.all(rewrites)) text = text.replace(from, to);
    return text;
  };
  const classic = {
    id: /<InstanceId>([^<]+)<\/InstanceId>/,
    healthy: "<State>InService</State>",
    starting: (m: string, reason: string) => m.replace("<State>InService</State>", "<State>OutOfService</State>").replace(/<Description>[^<]*<\/Description>/, `<Description>${reason}</Description>`).replace(/<ReasonCode>[^<]*<\/ReasonCode>/, "<ReasonCode>ELB</ReasonCode>"),
    failing: (m: string, reason: string) => m.replace("<State>InService</State>", "<State>OutOfService</State>").replace(/<Description>[^<]*<\/Description>/, `<Description>${reason}</Description>`).replace(/<ReasonCode>[^<]*<\/ReasonCode>/, "<ReasonCode>Instance</ReasonCode>"),
  };
  // moto's healthy TargetHealth carries only <State>; AWS adds Reason and Description to the others.
  const targetHealth = (state: string, code: string, description: string) => `<TargetHealth><State>${state}</State><Reason>${code}</Reason><Description>${description}</Description></TargetHealth>`;
  const alb = {
    id: /<Target>[\s\S]*?<Id>([^<]+)<\/Id>/,
    healthy: "<State>healthy</State>",
    starting: (m: string) => m.replace(/<TargetHealth>[\s\S]*?<\/TargetHealth>/, targetHealth("initial", "Elb.RegistrationInProgress", "Target registration is in progress")),
    failing: (m: string) => m.replace(/<TargetHealth>[\s\S]*?<\/TargetHealth>/, targetHealth("unhealthy", "Target.FailedHealthChecks", "Health checks failed")),
  };
  const remove = options.proxy.intercept(async (call, forwardCall) => {
    const p = call.params;
    if (call.action === "RegisterInstancesWithLoadBalancer") registering(p.LoadBalancerName ?? "", members(p, /^Instances\.member\.\d+\.InstanceId$/));
    if (call.action === "RegisterTargets") registering(p.TargetGroupArn ?? "", members(p, /^Targets\.member\.\d+\.Id$/));
    if (call.action === "AttachLoadBalancerTargetGroups") {
      // the group registers its instances itself: each is new to each target group attached
      const out = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [p.AutoScalingGroupName ?? ""] }));
      const ids = (out.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => i.InstanceId!);
      for (const arn of members(p, /^TargetGroupARNs\.member\.\d+$/)) registering(arn, ids);
    }
    const lb = call.action === "DescribeInstanceHealth" ? lbs.get(p.LoadBalancerName ?? "") : call.action === "DescribeTargetHealth" ? lbs.get(p.TargetGroupArn ?? "") : undefined;
    if (!lb) return undefined;
    const reply = await forwardCall();
    if (reply.status !== 200) return reply;
    const text = await rewrite(lbKey(lb), lb.service, reply.body.toString(), lb.type === "classic" ? classic : alb);
    return { ...reply, body: Buffer.from(text) };
  });

  return {
    urls,
    networkUrl,
    outOfService: () => [...given],
    asked: () => [...asked],
    setOutOfServicePolls: (n) => void (outOfServicePolls = n),
    async close() {
      remove();
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    },
  };
}
