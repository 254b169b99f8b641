import { execFileSync } from "node:child_process";
import * as amqp from "amqplib";
import * as fs from "node:fs";
import * as path from "node:path";
import { delay, freePort, startGuarded, type ManagedProcess } from "./processes";

/**
 * Debian's RabbitMQ on loopback with a node of its own: its own node name, epmd port, AMQP and
 * distribution ports, data, logs and Erlang cookie (HOME) in the bed's dir, so it never meets the
 * system's broker or another bed's. `ctl` is a rabbitmqctl wrapper script with that environment.
 */
export interface RabbitMq {
  readonly port: number;
  /** amqp://guest:guest@127.0.0.1:<port>// (guest may only connect from loopback). */
  readonly url: string;
  readonly node: string;
  /** A script running rabbitmqctl against this node (as an operator's wrapper would). */
  readonly ctl: string;
  /**
   * Messages ready in a queue, or undefined when the queue does not exist: asked over AMQP (a
   * passive queue.declare, as a client sees it), not with rabbitmqctl, whose Erlang VM takes
   * seconds of CPU to boot per call (over 30 s on a loaded 2-core machine).
   */
  depth(queue: string): Promise<number | undefined>;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

const BIN = "/usr/lib/rabbitmq/bin";

export async function startRabbitMq(dir: string): Promise<RabbitMq> {
  if (!fs.existsSync(path.join(BIN, "rabbitmq-server"))) {
    throw new Error(`${BIN}/rabbitmq-server not found: run \`npm run provision\` (installs rabbitmq-server)`);
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const node = `uo${port}@localhost`;
  fs.writeFileSync(path.join(dir, "enabled_plugins"), "[].\n");
  fs.writeFileSync(path.join(dir, "rabbitmq.conf"), `listeners.tcp.1 = 127.0.0.1:${port}\nloopback_users.guest = true\n`);
  fs.writeFileSync(path.join(dir, "rabbitmq-env.conf"), "");
  const env: Record<string, string> = {
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    ERL_EPMD_ADDRESS: "127.0.0.1",
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(dir, "log"),
    RABBITMQ_LOGS: "-",
    RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq"),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, "advanced.config"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, "rabbitmq-env.conf"),
    RABBITMQ_PID_FILE: path.join(dir, "pid"),
  };
  const ctl = path.join(dir, "rabbitmqctl");
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join("\n");
  fs.writeFileSync(ctl, `#!/bin/sh\n${exports}\nexec ${BIN}/rabbitmqctl -n ${node} "$@"\n`, { mode: 0o755 });
  const proc = startGuarded({ name: "rabbitmq", command: path.join(BIN, "rabbitmq-server"), args: [], env: { ...process.env, ...env } });
  const stopEpmd = () => {
    try {
      execFileSync("epmd", ["-port", String(epmdPort), "-kill"], { stdio: "ignore", env: { ...process.env, ...env }, timeout: 5000 });
    } catch {
      /* not running */
    }
  };
  const stop = async () => {
    try {
      execFileSync(ctl, ["-q", "stop"], { stdio: "ignore", timeout: 30_000 });
    } catch {
      /* stopped below */
    }
    await proc.stop();
    stopEpmd();
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exited()) throw new Error(`rabbitmq-server exited while starting:\n${proc.output()}`);
    try {
      execFileSync(ctl, ["-q", "await_startup", "--timeout", "5"], { stdio: "pipe", timeout: 20_000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`rabbitmq did not start within 90s: ${String((err as { stderr?: Buffer }).stderr ?? err)}\n${proc.output()}`);
      }
      await delay(500);
    }
  }
  return {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}//`,
    node,
    ctl,
    async depth(queue) {
      const connection = await amqp.connect({ protocol: "amqp", hostname: "127.0.0.1", port, username: "guest", password: "guest", vhost: "/" }, { timeout: 10_000 });
      try {
        const channel = await connection.createChannel();
        channel.on("error", () => undefined); // a 404 closes the channel: answered below
        return (await channel.checkQueue(queue)).messageCount;
      } catch (err) {
        if (/NOT_FOUND|404/.test(String((err as Error).message))) return undefined;
        throw err;
      } finally {
        await connection.close().catch(() => undefined);
      }
    },
    process: proc,
    stop,
  };
}
