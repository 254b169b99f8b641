import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startFaultProxy, type FaultProxy } from "./faultProxy";
import { startMoto, type Moto } from "./moto";
import { pulumiBed, useS3Backend, type PulumiBed } from "./pulumi";
import { startSshd, type Sshd } from "./sshd";

export type { Fault, FaultKind, FaultProxy, ProxiedCall } from "./faultProxy";
export type { Moto } from "./moto";
export type { PulumiBed } from "./pulumi";
export type { Sshd } from "./sshd";

/**
 * The test bed: real peers on loopback. Every part is optional so a test file starts only what
 * it uses; everything it started is stopped by stop(), also when starting a later part failed.
 */
export interface SandboxOptions {
  aws?: boolean;
  ssh?: boolean;
  pulumi?: boolean;
  /** moto settings (environment) for this bed's moto, e.g. { MOTO_ENABLE_AMI_VALIDATION: "true" }. */
  motoEnv?: Record<string, string>;
  /** Where keys, state and the env file go (default: a new temp dir, removed by stop()). */
  dir?: string;
  /**
   * The Pulumi backend: "file" (default) a directory in the bed, "s3" a bucket in moto's S3 reached
   * through the fault proxy by its s3:// URL (needs aws).
   */
  backend?: "file" | "s3";
}

export interface Sandbox {
  readonly dir: string;
  readonly moto?: Moto;
  /** The fault-injecting proxy in front of moto; AWS_ENDPOINT_URL points here. */
  readonly aws?: FaultProxy;
  readonly sshd?: Sshd;
  readonly pulumi?: PulumiBed;
  /** The environment a client of the bed needs: AWS endpoint and dummy credentials, Pulumi, SSH. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

export const SANDBOX_REGION = "us-east-1";

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const { aws = true, ssh = true, pulumi = true } = options;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "uo-sandbox-"));
  fs.mkdirSync(dir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const env: Record<string, string> = {};
    let moto: Moto | undefined;
    let proxy: FaultProxy | undefined;
    let sshd: Sshd | undefined;
    let bed: PulumiBed | undefined;
    if (pulumi) {
      bed = pulumiBed(path.join(dir, "pulumi"));
      Object.assign(env, bed.env);
    }
    // run journals of the driver under test stay inside the bed
    env.UPGRADE_ORCHESTRATOR_STATE = path.join(dir, "state");
    if (aws) {
      moto = await startMoto(options.motoEnv);
      stops.push(() => moto!.stop());
      proxy = await startFaultProxy(moto.url);
      stops.push(() => proxy!.close());
      if (bed && options.backend === "s3") {
        bed = await useS3Backend(bed, proxy.url, SANDBOX_REGION);
        Object.assign(env, bed.env);
      }
      Object.assign(env, {
        AWS_ENDPOINT_URL: proxy.url,
        AWS_REGION: SANDBOX_REGION,
        AWS_DEFAULT_REGION: SANDBOX_REGION,
        AWS_ACCESS_KEY_ID: "testing",
        AWS_SECRET_ACCESS_KEY: "testing",
        UO_MOTO_URL: moto.url,
      });
    }
    if (ssh) {
      sshd = await startSshd(path.join(dir, "ssh"));
      stops.push(() => sshd!.stop());
      Object.assign(env, {
        UO_SSH_HOST: sshd.host,
        UO_SSH_PORT: String(sshd.port),
        UO_SSH_USER: sshd.user,
        UO_SSH_KEY: sshd.privateKeyPath,
        UO_SSH_KNOWN_HOSTS: sshd.knownHostsPath,
      });
    }
    return { dir, moto, aws: proxy, sshd, pulumi: bed, env, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The bed's environment as a file a shell can `source`. */
export function envFileText(env: Record<string, string>): string {
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${quote(v)}`)
    .join("\n") + "\n";
}
