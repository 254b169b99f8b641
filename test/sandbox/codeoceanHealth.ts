import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeTagsCommand } from "@aws-sdk/client-ec2";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";
import { probeHttp } from "../../lib/http";
import type { Interceptor } from "./faultProxy";

/**
 * The services machine's health endpoints, for the test bed (moto has no ELB data plane): one
 * loopback port per target group of the deployment's lb.ts, answering its health-check path.
 * Like the real services they are healthy unless the release the machine runs (its
 * `codeocean:release` tag, which the fixture's `up` writes) is one made bad here: then the chosen
 * services answer 503, as a release whose web service does not come up would.
 * The real ports (web 8001, gw 8080, …) may be taken on a shared machine: the bed uses free ones and
 * gives them to the fixture as config `targetPorts`.
 */
export const HEALTH_CHECKS: Array<{ service: string; path: string }> = [
  { service: "web", path: "/health" }, { service: "gw", path: "/api/health" }, { service: "file-proxy", path: "/health" },
  { service: "cw-proxy", path: "/health" }, { service: "git-proxy", path: "/health" }, { service: "s3-proxy", path: "/health" },
  { service: "registry", path: "/" },
];

export interface HealthEndpoints {
  /** service → loopback port. */
  readonly ports: Record<string, number>;
  /** The services instance whose release tag decides (set once the deployment is up). */
  setInstance(id: string): void;
  /** Make a release bad: these services fail their health check while the machine runs it. */
  failForRelease(release: string, services?: string[]): void;
  /** Back to healthy for every release. */
  heal(): void;
  /** The release the machine runs now, as its tag says (undefined: not tagged). */
  release(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startHealthEndpoints(env: Record<string, string | undefined>): Promise<HealthEndpoints> {
  const aws = createAwsClients({ ...awsSettingsFromEnv(env), maxAttempts: 2 });
  let instance: string | undefined;
  let bad: { release: string; services: Set<string> } | undefined;
  let cached: { at: number; release: string | undefined } | undefined;
  const release = async () => {
    if (!instance) return undefined;
    if (cached && Date.now() - cached.at < 500) return cached.release;
    const out = await aws.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: "resource-id", Values: [instance] }, { Name: "key", Values: ["codeocean:release"] }] }));
    cached = { at: Date.now(), release: out.Tags?.[0]?.Value };
    return cached.release;
  };
  const servers: http.Server[] = [];
  const ports: Record<string, number> = {};
  for (const { service, path } of HEALTH_CHECKS) {
    const server = http.createServer((req, res) => {
      void (async () => {
        if (req.url !== path) return res.writeHead(404).end();
        const running = await release().catch(() => undefined);
        const failing = bad && running === bad.release && bad.services.has(service);
        res.writeHead(failing ? 503 : 200, { "content-type": "application/json" }).end(JSON.stringify({ service, release: running, status: failing ? "failing" : "ok" }));
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    ports[service] = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  return {
    ports,
    setInstance: (id) => void ((instance = id), (cached = undefined)),
    failForRelease: (r, services = ["web"]) => void (bad = { release: r, services: new Set(services) }),
    heal: () => void (bad = undefined),
    release,
    stop: async () => {
      aws.destroy();
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

/**
 * moto reports every registered instance target `healthy` at once, whatever it serves. This
 * compensation (for the bed's fault proxy) probes the target group's health check on the bed's
 * endpoint, as the load balancer would, and turns moto's `healthy` into `unhealthy`
 * (Target.ResponseCodeMismatch) when it does not answer 2xx. It only ever fails a target moto
 * calls healthy, never the reverse. `groups`: target group name → its endpoint.
 */
export function targetHealthCompensation(groups: () => Map<string, { port: number; path: string }>): Interceptor {
  return async (call, forward) => {
    if (call.action !== "DescribeTargetHealth") return undefined;
    const name = /:targetgroup\/([^/]+)\//.exec(call.params.TargetGroupArn ?? "")?.[1];
    const endpoint = name ? groups().get(name) : undefined;
    if (!endpoint) return undefined;
    const reply = await forward();
    if (reply.status !== 200) return reply;
    const probe = await probeHttp(`http://127.0.0.1:${endpoint.port}${endpoint.path}`, { timeoutMs: 5000 });
    if (probe.status !== undefined && probe.status >= 200 && probe.status < 300) return reply;
    const why = probe.status !== undefined ? `Health checks failed with these codes: [${probe.status}]` : "Request timed out";
    const reason = probe.status !== undefined ? "Target.ResponseCodeMismatch" : "Target.Timeout";
    const body = reply.body.toString("utf8").replace(/<TargetHealth>\s*<State>healthy<\/State>[\s\S]*?<\/TargetHealth>/g, `<TargetHealth><State>unhealthy</State><Reason>${reason}</Reason><Description>${why}</Description></TargetHealth>`);
    return { ...reply, body: Buffer.from(body) };
  };
}
