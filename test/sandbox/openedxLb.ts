import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeLoadBalancersCommand, type ElasticLoadBalancingClient } from "@aws-sdk/client-elastic-load-balancing";
import type { FaultProxy } from "./faultProxy";
import type { OpenEdxHost } from "./openedxHosts";

/**
 * Where moto is not a load balancer, for the Open edX fleet:
 *
 * - Data plane: moto has none. Each classic ELB gets a loopback listener that forwards a request
 *   only to an instance moto lists as registered with that ELB whose host runs (round robin), to
 *   the site's service on it (lms, or cms for studio); a "network" router reaches an instance's own
 *   services as /i/<instance id>/<lms|cms>/….
 * - Health: moto answers DescribeInstanceHealth with InService for every running registered
 *   instance at once and never health-checks. A real ELB keeps a new instance OutOfService until it
 *   passed HealthyThreshold checks, and takes an instance out whose health check fails. The
 *   compensation (in the fault proxy, so the workflow meets it) rewrites moto's InService to
 *   OutOfService (a) for the first `outOfServicePolls` answers about an instance after it was
 *   registered with that ELB, (b) while the ELB's health check of it (the service's /heartbeat)
 *   does not answer 200. It only ever turns InService into OutOfService: never a success moto did
 *   not record.
 */
export interface LbPlane {
  /** The loopback URL of each ELB's data plane, by ELB name. */
  urls: Record<string, string>;
  networkUrl: string;
  /** OutOfService answers the compensation gave, oldest first. */
  outOfService(): Array<{ lb: string; instance: string; reason: string }>;
  setOutOfServicePolls(n: number): void;
  close(): Promise<void>;
}

export async function startLbPlane(options: { elb: ElasticLoadBalancingClient; proxy: FaultProxy; hosts: Map<string, OpenEdxHost>; sites: Record<string, "lms" | "cms">; outOfServicePolls: number }): Promise<LbPlane> {
  const { elb, hosts, sites } = options;
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

  const networkUrl = await listen((req, res) => {
    const m = /^\/i\/(i-[0-9a-f]+)\/(lms|cms)(\/.*)?$/.exec(req.url ?? "");
    const host = m ? hosts.get(m[1]!) : undefined;
    if (!serving(host)) return void res.writeHead(504).end("bed: no such instance answers");
    forward(req, res, host.ports[m![2] as "lms" | "cms"], m![3] ?? "/");
  });
  const urls: Record<string, string> = {};
  for (const [name, service] of Object.entries(sites)) {
    let turn = 0;
    urls[name] = await listen(async (req, res) => {
      try {
        const out = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [name] }));
        const live = (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => hosts.get(i.InstanceId!)).filter(serving);
        if (live.length === 0) return void res.writeHead(503).end(`bed load balancer ${name}: no registered instance`);
        forward(req, res, live[turn++ % live.length]!.ports[service], req.url ?? "/");
      } catch (err) {
        res.writeHead(503).end(`bed load balancer ${name}: ${(err as Error).message}`);
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
  const remove = options.proxy.intercept(async (call, forwardCall) => {
    if (call.action === "RegisterInstancesWithLoadBalancer") {
      for (const [k, v] of Object.entries(call.params)) if (/^Instances\.member\.\d+\.InstanceId$/.test(k)) pollsSince.set(`${call.params.LoadBalancerName}/${v}`, 0);
      return undefined;
    }
    if (call.action !== "DescribeInstanceHealth") return undefined;
    const lb = call.params.LoadBalancerName ?? "";
    const reply = await forwardCall();
    if (reply.status !== 200 || !sites[lb]) return reply;
    let text = reply.body.toString();
    const rewrites: Array<Promise<[string, string]>> = [];
    for (const member of text.match(/<member>[\s\S]*?<\/member>/g) ?? []) {
      const id = /<InstanceId>([^<]+)<\/InstanceId>/.exec(member)?.[1];
      if (!id || !member.includes("<State>InService</State>")) continue;
      const key = `${lb}/${id}`;
      const n = pollsSince.get(key) ?? outOfServicePolls;
      pollsSince.set(key, n + 1);
      rewrites.push(
        (async () => {
          const reason = n < outOfServicePolls ? "Instance registration is still in progress." : (await healthCheck(hosts.get(id), sites[lb]!)) ? "" : "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.";
          if (!reason) return [member, member] as [string, string];
          given.push({ lb, instance: id, reason });
          const out = member.replace("<State>InService</State>", "<State>OutOfService</State>").replace(/<Description>[^<]*<\/Description>/, `<Description>${reason}</Description>`).replace(/<ReasonCode>[^<]*<\/ReasonCode>/, `<ReasonCode>${n < outOfServicePolls ? "ELB" : "Instance"}</ReasonCode>`);
          return [member, out] as [string, string];
        })(),
      );
    }
    for (const [from, to] of await Promise.all(rewrites)) text = text.replace(from, to);
    return { ...reply, body: Buffer.from(text) };
  });

  return {
    urls,
    networkUrl,
    outOfService: () => [...given],
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
