import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";

/**
 * A simulator of the Code Ocean services API (the vendor's software on the services machine,
 * port 8300), for the test bed. Like the real one it tracks running computations per worker ASG,
 * `POST /cancel_computations` stops them (draining over `drainMs`), and it publishes the
 * CodeOcean/SlotsUtilization metric per AutoScalingGroupName to CloudWatch every `publishMs`.
 * Failure modes on demand: answer 5xx, hang without answering, never drain.
 */
export interface ServicesSimulatorOptions {
  /** Worker ASG name → running computations (slots in use). */
  computations: Record<string, number>;
  /** Slots per ASG, for the utilisation percentage (default 8). */
  slots?: number;
  drainMs?: number;
  publishMs?: number;
  /** Environment with the AWS endpoint and credentials the metrics go to. */
  env: Record<string, string | undefined>;
  /** Port on 127.0.0.1 (default: a free one; the real service uses 8300). */
  port?: number;
  /** false: publish no SlotsUtilization at all (a services machine whose metric agent is broken). */
  publishMetrics?: boolean;
  /**
   * Worker ASGs that appear later (an update replaces the general one) and match this are published
   * too, with no computation on them yet (their workers are new), as the real services machine
   * publishes for the ASGs it schedules on.
   */
  laterAsgs?: RegExp;
}

export type SimulatorMode = { kind: "normal" } | { kind: "error"; status: number; times: number } | { kind: "hang" } | { kind: "never-drains" };

export interface ServicesSimulator {
  readonly port: number;
  readonly url: string;
  setMode(mode: SimulatorMode): void;
  /** Running computations per ASG now. */
  running(): Record<string, number>;
  /** When cancel_computations was last accepted. */
  cancelledAt(): Date | undefined;
  requests(): Array<{ method: string; path: string; status: number | "hung" }>;
  /** Back to the start: computations running, normal mode, no requests seen; publishes at once. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServicesSimulator(options: ServicesSimulatorOptions): Promise<ServicesSimulator> {
  const slots = options.slots ?? 8;
  const drainMs = options.drainMs ?? 5000;
  const initial = { ...options.computations };
  let cancelAt: number | undefined;
  let mode: SimulatorMode = { kind: "normal" };
  const seen: Array<{ method: string; path: string; status: number | "hung" }> = [];
  const hung = new Set<http.ServerResponse>();
  const aws = createAwsClients({ ...awsSettingsFromEnv(options.env), maxAttempts: 2 });

  const running = (): Record<string, number> => {
    if (cancelAt === undefined || mode.kind === "never-drains") return { ...initial };
    const left = Math.max(0, 1 - (Date.now() - cancelAt) / drainMs);
    return Object.fromEntries(Object.entries(initial).map(([asg, n]) => [asg, Math.ceil(n * left)]));
  };

  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    const reply = (status: number, body: unknown) => {
      seen.push({ method: req.method ?? "GET", path, status });
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (mode.kind === "hang") {
      seen.push({ method: req.method ?? "GET", path, status: "hung" });
      hung.add(res);
      return;
    }
    if (mode.kind === "error") {
      const status = mode.status;
      if (--mode.times <= 0) mode = { kind: "normal" };
      return reply(status, { error: status >= 500 ? "internal error (simulated)" : "rejected (simulated)" });
    }
    if (req.method === "POST" && path === "/cancel_computations") {
      const cancelled = Object.values(running()).reduce((a, b) => a + b, 0);
      cancelAt ??= Date.now();
      return reply(200, { cancelled });
    }
    if (req.method === "GET" && path === "/computations") return reply(200, running());
    reply(404, { error: `no route ${req.method} ${path}` });
  });

  const later = new Set<string>();
  // a publish still in flight when the bed stops would reach for an AWS client after
  // Jest has torn the test file's modules down (and fail whichever file runs next in
  // that worker): stop() sets `stopped` and waits for the one in flight
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const publish = () => {
    if (stopped) return inFlight;
    inFlight = inFlight.then(publishOnce).catch(() => undefined);
    return inFlight;
  };
  const publishOnce = async () => {
    const now = new Date();
    if (options.laterAsgs && !stopped) {
      const groups = await aws.autoScaling.send(new DescribeAutoScalingGroupsCommand({})).catch(() => undefined);
      for (const g of groups?.AutoScalingGroups ?? []) if (options.laterAsgs.test(g.AutoScalingGroupName!) && !(g.AutoScalingGroupName! in initial)) later.add(g.AutoScalingGroupName!);
    }
    const MetricData = [...Object.entries(running()), ...[...later].map((asg) => [asg, 0] as const)].map(([asg, n]) => ({
      MetricName: "SlotsUtilization",
      Dimensions: [{ Name: "AutoScalingGroupName", Value: asg }],
      Timestamp: now,
      Value: Math.round((100 * n) / slots),
      Unit: "Percent" as const,
    }));
    if (MetricData.length > 0 && options.publishMetrics !== false && !stopped) {
      await aws.cloudWatch.send(new PutMetricDataCommand({ Namespace: "CodeOcean", MetricData })).catch(() => undefined);
    }
  };
  await publish();
  const timer = setInterval(() => void publish(), options.publishMs ?? 2000);
  timer.unref();

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    setMode: (m) => {
      mode = m;
      if (m.kind !== "hang") for (const res of hung) res.destroy();
    },
    running,
    cancelledAt: () => (cancelAt === undefined ? undefined : new Date(cancelAt)),
    requests: () => [...seen],
    reset: async () => {
      mode = { kind: "normal" };
      for (const res of hung) res.destroy();
      cancelAt = undefined;
      seen.length = 0;
      await publish();
    },
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      for (const res of hung) res.destroy();
      aws.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
