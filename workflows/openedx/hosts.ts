import { UpgradeError } from "../../lib/errors";
import { probeHttp, type Probe } from "../../lib/http";
import { connectSsh, lastLines, type SshSession } from "../../lib/ssh";
import { pollUntil } from "../../lib/wait";
import { probeFailure } from "./checks";
import { parseStatus, type CommandKind } from "./hostSettings";
import type { FleetInstance } from "./instances";
import { fill, type FleetSettings, type ProbeSettings, type ReleaseStep } from "./settings";

/**
 * What the cut-over does on one Open edX host, over SSH, with the layout's commands (host.commands:
 * status, stop, start, migrate, manage) and a deadline per kind (host.deadlines); and the host's
 * own heartbeats over HTTP. One SSH session per host per run (a new one after a deadline closed it).
 */
export interface Host {
  readonly id: string;
  run(what: string, kind: CommandKind, command: string, options?: { okCodes?: number[] }): Promise<{ code: number; stdout: string; stderr: string }>;
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
    const deadlines = this.settings.host.deadlines;
    const forget = () => this.open.delete(instance.id);
    const host: Host = {
      id: instance.id,
      async run(what, kind, command, options = {}) {
        let r;
        try {
          r = await session.run(command, { timeoutMs: deadlines[kind] * 1000 });
        } catch (err) {
          forget(); // the deadline closed the session
          throw new UpgradeError({ what: `${what} on ${instance.id}`, why: `${(err as Error).message.split("\n")[0]} (host.deadlines.${kind}: ${deadlines[kind]}s)`, hint: `the command may still run on the host; look at it, or raise host.deadlines.${kind}` });
        }
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

  private command(name: keyof FleetSettings["host"]["commands"], instance: FleetInstance, extra: Record<string, string> = {}): string {
    const composeFile = fill(this.settings.host.composeFile ?? "", { instanceId: instance.id });
    return fill(this.settings.host.commands[name], { instanceId: instance.id, composeFile, ...extra });
  }

  /** Each process (supervisor program / compose service) and its state: RUNNING, STOPPED, … */
  async processes(instance: FleetInstance): Promise<Record<string, string>> {
    const host = await this.get(instance);
    // supervisorctl status exits 3 when a process is not running: that is an answer, not a failure.
    const { stdout } = await host.run("read the process status", "status", this.command("status", instance), { okCodes: [3] });
    let states: Record<string, string>;
    try {
      states = parseStatus(this.settings.host.layout, stdout);
    } catch (err) {
      throw new UpgradeError({ what: `read the process status on ${instance.id}`, why: `the ${this.settings.host.layout} status is not readable: ${(err as Error).message}`, hint: "check host.commands.status", permanent: true });
    }
    if (Object.keys(states).length === 0) {
      throw new UpgradeError({ what: `read the process status on ${instance.id}`, why: "the status lists no process", hint: "check host.commands.status", permanent: true });
    }
    return states;
  }

  /** The layout's stop or start of every edX process, verified from the status afterwards. */
  async all(instance: FleetInstance, action: "stop" | "start"): Promise<void> {
    const host = await this.get(instance);
    await host.run(`${action} all edX processes`, action, this.command(action, instance), { okCodes: this.settings.host.layout === "supervisor" ? [1, 7] : [] });
    const want = action === "stop" ? "STOPPED" : "RUNNING";
    const states = await this.processes(instance);
    const off = Object.entries(states).filter(([, s]) => s !== want);
    if (off.length > 0) {
      throw new UpgradeError({ what: `${action} all edX processes on ${instance.id}`, why: `after ${action}: ${off.map(([n, s]) => `${n} ${s}`).join(", ")}`, hint: `look at the host's ${this.settings.host.layout} logs` });
    }
  }

  async allIn(instance: FleetInstance, state: "RUNNING" | "STOPPED"): Promise<boolean> {
    return Object.values(await this.processes(instance)).every((s) => s === state);
  }

  /** Runs the lms or cms migrations; a failure names the migration that failed. */
  async migrate(instance: FleetInstance, service: "lms" | "cms"): Promise<string> {
    const host = await this.get(instance);
    const r = await host.run(`migrate ${service}`, "migrate", this.command("migrate", instance, { service }), { okCodes: [1] });
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

  /** A release's step after the migrations (releaseSteps): manage.py's `args` for `service`, or a whole command. */
  async releaseStep(instance: FleetInstance, release: string, step: ReleaseStep): Promise<string> {
    const host = await this.get(instance);
    const command = step.command ? fill(step.command, { instanceId: instance.id }) : this.command("manage", instance, { service: step.service!, args: step.args! });
    const r = await host.run(`run ${release}'s step ${step.id}`, "releaseStep", command);
    return lastLines(r.stdout, 1);
  }

  probe(instance: FleetInstance, spec: ProbeSettings): Promise<Probe> {
    const url = fill(spec.url, { instanceId: instance.id, privateIp: instance.privateIp ?? "" });
    return probeHttp(url, { timeoutMs: 10_000, hostHeader: spec.host });
  }

  /**
   * The web host's heartbeats: lms and cms (each check of edx-platform's JSON must be true), and,
   * with `workers`, the extended one whose Celery check runs a task on the workers. Returns the
   * failures (empty: healthy).
   */
  async heartbeatFailures(instance: FleetInstance, options: { workers: boolean }): Promise<string[]> {
    const h = this.settings.heartbeats;
    const specs = [h.lms, h.cms, options.workers ? h.workers : false].filter((s): s is ProbeSettings => s !== false);
    const failures: string[] = [];
    for (const spec of specs) {
      const probe = await this.probe(instance, spec);
      const failure = probeFailure(probe, spec, { allChecksTrue: true });
      if (failure) failures.push(`${instance.id} ${failure}`);
    }
    return failures;
  }
}

/** Waits until a host answers over SSH (its process status): a booted instance's sshd and process manager. */
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
      new UpgradeError({ what: `reach ${instance.id} over SSH`, why: `not reachable within ${Math.round(deadlineMs / 1000)}s; last: ${seen}`, hint: "check its security group, the SSH settings (known_hosts) and that its process manager runs" }),
  });
}

/**
 * Waits until every web host's heartbeats pass (lms, cms; with `workers`, the extended check on the
 * first one). A freshly started host answers 503 until its workers beat: a check that passes within
 * the deadline is ready, one that is still failing at it is reported with what it last said.
 */
export async function waitHeartbeats(
  hosts: Hosts,
  web: FleetInstance[],
  options: { deadlineMs: number; pollMs: number; workers: boolean; info: (m: string) => Promise<void>; onTimeout?: (failures: string[], deadlineMs: number) => Error },
): Promise<void> {
  const { deadlineMs, pollMs, workers, info } = options;
  await pollUntil<string[]>({
    intervalMs: pollMs,
    timeoutMs: deadlineMs,
    poll: async () => {
      const seen = (await Promise.all(web.map((i, n) => hosts.heartbeatFailures(i, { workers: workers && n === 0 })))).flat();
      return { done: seen.length === 0, seen };
    },
    onProgress: ({ seen, attempt }) => void (attempt % 10 === 1 && seen.length ? info(`heartbeats: ${seen.join("; ")}`) : undefined),
    onTimeout: (seen) =>
      options.onTimeout?.(seen ?? [], deadlineMs) ??
      new UpgradeError({ what: "wait until the web hosts' heartbeats pass", why: `after ${Math.round(deadlineMs / 1000)}s: ${(seen ?? []).join("; ")}`, hint: "look at the hosts' lms/cms logs and the workers; raise timing.healthySeconds if they start slowly" }),
  });
}
