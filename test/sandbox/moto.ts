import * as path from "node:path";
import { pythonVenv } from "../../lib/toolchain";
import { freePort, httpProbe, startGuarded, waitUntilReady, type ManagedProcess } from "./processes";

/** moto in server mode: one port for every AWS service, state in memory. */
export interface Moto {
  readonly url: string;
  readonly port: number;
  readonly process: ManagedProcess;
  /** Forgets every resource (POST /moto-api/reset); used between test files. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** `env`: moto settings for this server, e.g. MOTO_ENABLE_AMI_VALIDATION=true. */
export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const venv = pythonVenv();
  const port = await freePort();
  const proc = startGuarded({
    name: "moto server",
    command: path.join(venv, "bin", "moto_server"),
    args: ["-H", "127.0.0.1", "-p", String(port)],
    env: { ...process.env, ...env, PYTHONUNBUFFERED: "1" },
  });
  const url = `http://127.0.0.1:${port}`;
  // moto's own API answers once its WSGI app serves requests.
  await waitUntilReady(proc, httpProbe(`${url}/moto-api/data.json`));
  return {
    url,
    port,
    process: proc,
    async reset() {
      const res = await fetch(`${url}/moto-api/reset`, { method: "POST" });
      if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
    },
    stop: () => proc.stop(),
  };
}
