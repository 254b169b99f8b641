import { UpgradeError } from "../../lib/errors";
import { describeProbe, probeHttp, type Probe } from "../../lib/http";
import { connectSsh, type SshSession } from "../../lib/ssh";
import { pollUntil } from "../../lib/wait";
import type { FleetInstance } from "./cloud";
import { fill, type FleetSettings } from "./settings";

/**
 * What the cut-over does on one Open edX host, over SSH: supervisorctl (status, stop, start),
 * the lms/cms migrations; and its own HTTP /heartbeat. One SSH session per host per run.
 */
export interface Host {
  readonly id: string;
  run(what: string, command: string, options?: { okCodes?: number[] }): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): void;
}

export class Hosts {
  private readonly open = new Map<string, Host>();
  constructor(private readonly settings: FleetSettings) {}

  async get(instance: FleetInstance): Promise<Host> {
    const existing = this.open.get(instance.id);
    if (existing) return existing;
    const ssh = this.settings.ssh;
    const address = ssh.host ?? instance.privateIp;
    if (!address) throw new UpgradeError({ what: `reach ${instance.id} over SSH`, why: "it has no private IP address yet", permanent: false });
    const session: SshSession = await connectSsh({ host: address, port: ssh.port, username: ssh.user, privateKey: ssh.privateKey, knownHostsPath: ssh.knownHostsPath, readyTimeoutMs: 10_000 });
    const timeoutMs = this.settings.timing.commandSeconds * 1000;
    const host: Host = {
      id: instance.id,
      async run(what, command, options = {}) {
        const r = await session.run(command, { timeoutMs });
        const code = r.code ?? -1;
        if (code !== 0 && !(options.okCodes ?? []).includes(code)) {
          throw new UpgradeError({ what: `${what} on ${instance.id}`, why: `exit code ${code}: ${lastLines(r.stderr || r.stdout)}`, permanent: true });
        }
        return { code, stdout: r.stdout, stderr: r.stderr };
      },
      close: () => session.close(),
    };
    this.open.set(instance.id, host);
    return host;
  }

  closeAll(): void {
    for (const host of this.open.values()) host.close();
    this.open.clear();
  }

  supervisorctl(instance: FleetInstance): string {
    return fill(this.settings.commands.supervisorctl, { instanceId: instance.id });
  }

  /** Each supervised process and its state (RUNNING, STOPPED, …). */
  async processes(instance: FleetInstance): Promise<Record<string, string>> {
    const host = await this.get(instance);
    // supervisorctl status exits 3 when a process is not running: that is an answer, not a failure.
    const { stdout } = await host.run("read the supervisor status", `${this.supervisorctl(instance)} status`, { okCodes: [3] });
    const states: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
      const [name, state] = line.trim().split(/\s+/);
      if (name && state) states[name] = state;
    }
    if (Object.keys(states).length === 0) {
      throw new UpgradeError({ what: `read the supervisor status on ${instance.id}`, why: "supervisorctl lists no process", hint: "check commands.supervisorctl", permanent: true });
    }
    return states;
  }

  /** `supervisorctl stop|start all`, verified from the status afterwards. */
  async all(instance: FleetInstance, action: "stop" | "start"): Promise<void> {
    const host = await this.get(instance);
    await host.run(`${action} all edX processes`, `${this.supervisorctl(instance)} ${action} all`, { okCodes: [1, 7] });
    const want = action === "stop" ? "STOPPED" : "RUNNING";
    const states = await this.processes(instance);
    const off = Object.entries(states).filter(([, s]) => (want === "STOPPED" ? !["STOPPED", "EXITED"].includes(s) : s !== "RUNNING"));
    if (off.length > 0) {
      throw new UpgradeError({
        what: `${action} all edX processes on ${instance.id}`,
        why: `after supervisorctl ${action} all: ${off.map(([n, s]) => `${n} ${s}`).join(", ")}`,
        hint: "look at the supervisor logs on the host",
      });
    }
  }

  async allIn(instance: FleetInstance, state: "RUNNING" | "STOPPED"): Promise<boolean> {
    const states = Object.values(await this.processes(instance));
    return states.every((s) => (state === "STOPPED" ? s === "STOPPED" || s === "EXITED" : s === state));
  }

  /** Runs the lms or cms migrations; a failure names the migration that failed. */
  async migrate(instance: FleetInstance, service: "lms" | "cms"): Promise<string> {
    const host = await this.get(instance);
    const r = await host.run(`migrate ${service}`, fill(this.settings.commands.migrate, { instanceId: instance.id, service }), { okCodes: [1] });
    const applied = [...r.stdout.matchAll(/Applying (\S+)\.\.\./g)].map((m) => m[1]!);
    if (r.code !== 0) {
      const failed = applied.at(-1);
      throw new UpgradeError({
        what: `migrate ${service} on ${instance.id}`,
        why: `${failed ? `migration ${failed} failed` : "the migrations failed"}: ${lastLines(r.stderr || r.stdout, 2)}`,
        hint: "fix the migration (migrations already applied are not reversed), then run the update again",
        permanent: true,
      });
    }
    return applied.length > 0 ? `applied ${applied.join(", ")}` : "nothing to apply";
  }

  heartbeatUrl(instance: FleetInstance): string {
    return fill(this.settings.instanceUrl, { instanceId: instance.id, privateIp: instance.privateIp ?? "" }).replace(/\/$/, "") + this.settings.heartbeatPath;
  }

  heartbeat(instance: FleetInstance): Promise<Probe> {
    return probeHttp(this.heartbeatUrl(instance), { timeoutMs: 5000 });
  }
}

/** Waits until a host answers over SSH (supervisorctl status): a booted instance's sshd and supervisord. */
export async function waitReachable(hosts: Hosts, instance: FleetInstance, deadlineMs: number, pollMs: number): Promise<void> {
  await pollUntil<string>({
    intervalMs: pollMs,
    timeoutMs: deadlineMs,
    poll: async () => {
      try {
        await hosts.processes(instance);
        return { done: true, seen: "reachable" };
      } catch (err) {
        return { done: false, seen: (err as Error).message };
      }
    },
    onTimeout: (seen) =>
      new UpgradeError({ what: `reach ${instance.id} over SSH`, why: `not reachable within ${Math.round(deadlineMs / 1000)}s; last: ${seen}`, hint: "check its security group, the SSH settings and that supervisord runs" }),
  });
}

/** Waits until every instance's /heartbeat answers 200. */
export async function waitHealthy(hosts: Hosts, instances: FleetInstance[], deadlineMs: number, pollMs: number, info: (m: string) => Promise<void>): Promise<void> {
  await pollUntil<Probe[]>({
    intervalMs: pollMs,
    timeoutMs: deadlineMs,
    poll: async () => {
      const seen = await Promise.all(instances.map((i) => hosts.heartbeat(i)));
      return { done: seen.every((p) => p.status === 200), seen };
    },
    onProgress: ({ seen, attempt }) => void (attempt % 10 === 1 ? info(`health: ${seen.map((p) => (p.status === 200 ? "ok" : describeProbe(p))).join("; ")}`) : undefined),
    onTimeout: (seen) =>
      new UpgradeError({
        what: `wait until the green web hosts are healthy`,
        why: `after ${Math.round(deadlineMs / 1000)}s: ${(seen ?? []).filter((p) => p.status !== 200).map(describeProbe).join("; ")}`,
        hint: "look at the green hosts' lms logs; raise timing.healthySeconds if they start slowly",
      }),
  });
}


const lastLines = (text: string, n = 3) => text.trim().split("\n").filter(Boolean).slice(-n).join(" | ") || "(no output)";
