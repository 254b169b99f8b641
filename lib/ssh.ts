import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NodeSSH } from "node-ssh";
import { UpgradeError } from "./errors";
import { lookupHostKeys, verifyHostKey } from "./knownHosts";
import { withRetry } from "./retry";

/** How to reach a host over SSH. Host keys are always checked against `knownHostsPath`. */
export interface SshTarget {
  host: string;
  port?: number;
  username: string;
  /** Path to the private key; its content never leaves this process. */
  privateKeyPath?: string;
  /** Or the key itself (e.g. from a Pulumi secret). */
  privateKey?: string;
  passphrase?: string;
  /** Default ~/.ssh/known_hosts. */
  knownHostsPath?: string;
  /** Handshake deadline, default 20 s. */
  readyTimeoutMs?: number;
}

export interface RemoteResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SshSession {
  /** Runs a command; rejects when it does not finish within timeoutMs (the session is then closed). */
  run(command: string, options?: { timeoutMs?: number; stdin?: string }): Promise<RemoteResult>;
  close(): void;
}

const where = (t: SshTarget) => `${t.username}@${t.host}:${t.port ?? 22}`;

export async function connectSsh(target: SshTarget): Promise<SshSession> {
  const port = target.port ?? 22;
  const knownHostsPath = target.knownHostsPath ?? path.join(os.homedir(), ".ssh", "known_hosts");
  let knownHosts: string;
  try {
    knownHosts = fs.readFileSync(knownHostsPath, "utf8");
  } catch {
    throw new UpgradeError({
      what: `connect to ${where(target)}`,
      why: `the known_hosts file ${knownHostsPath} cannot be read, so the host key cannot be verified`,
      hint: "pass --known-hosts <file> holding the host's key (ssh-keyscan it from a trusted network)",
      permanent: true,
    });
  }
  const lookup = lookupHostKeys(knownHosts, target.host, port);
  let refusal: string | undefined;
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      host: target.host,
      port,
      username: target.username,
      privateKeyPath: target.privateKeyPath,
      privateKey: target.privateKey,
      passphrase: target.passphrase,
      // without a key file, the operator's ssh-agent
      agent: target.privateKeyPath || target.privateKey ? undefined : process.env.SSH_AUTH_SOCK,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(lookup, key);
        if (!verdict.ok) refusal = verdict.reason;
        return verdict.ok;
      },
    } as Parameters<NodeSSH["connect"]>[0]);
  } catch (err) {
    ssh.dispose();
    if (refusal) {
      throw new UpgradeError({
        what: `connect to ${where(target)}`,
        why:
          refusal === "mismatch"
            ? `the host key it presented does not match the one in ${knownHostsPath}: refusing (possible man-in-the-middle, or the host was rebuilt)`
            : refusal === "revoked"
              ? `its host key is marked @revoked in ${knownHostsPath}`
              : `${knownHostsPath} has no key for ${port === 22 ? target.host : `[${target.host}]:${port}`}`,
        hint: "verify the host's key out of band, then update the known_hosts file",
        permanent: true,
        cause: err,
      });
    }
    const message = (err as Error)?.message ?? String(err);
    const auth = /authentication|auth methods/i.test(message);
    throw new UpgradeError({
      what: `connect to ${where(target)}`,
      why: message,
      hint: auth ? "check --ssh-user and --ssh-key (and the key's passphrase)" : "check that the host is up and the port is reachable",
      permanent: auth,
      cause: err,
    });
  }
  return {
    async run(command, options = {}) {
      const timeoutMs = options.timeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          ssh.dispose();
          reject(
            new UpgradeError({
              what: `run a command on ${where(target)}`,
              why: `it did not finish within ${Math.round(timeoutMs / 1000)}s`,
              hint: "check the host; the command may still be running there",
            }),
          );
        }, timeoutMs);
      });
      try {
        const result = await Promise.race([ssh.execCommand(command, { stdin: options.stdin }), timeout]);
        return { code: result.code, stdout: result.stdout, stderr: result.stderr };
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => ssh.dispose(),
  };
}

/** A host a workflow works on: commands that fail become UpgradeErrors naming the host and the command's last lines. */
export interface RemoteHost {
  readonly name: string;
  /** Runs a command; a non-zero exit throws (what: `<what> on <name>`, why: exit code and last lines). */
  run(what: string, command: string, options?: { stdin?: string; timeoutMs?: number }): Promise<string>;
  /** Runs a command and returns its result whatever the exit code. */
  exec(command: string, options?: { stdin?: string; timeoutMs?: number }): Promise<RemoteResult>;
  close(): void;
}

/** Connects (retrying a refused or dropped connection twice) and wraps the session as a RemoteHost. */
export async function connectRemote(target: SshTarget, options: { name: string; commandTimeoutMs: number }): Promise<RemoteHost> {
  const session = await withRetry(`connect to ${options.name}`, () => connectSsh(target), { retries: 2, minTimeoutMs: 500 });
  const exec = (command: string, o: { stdin?: string; timeoutMs?: number } = {}) =>
    session.run(command, { timeoutMs: o.timeoutMs ?? options.commandTimeoutMs, stdin: o.stdin });
  return {
    name: options.name,
    exec,
    async run(what, command, o = {}) {
      const result = await exec(command, o);
      if (result.code !== 0) {
        throw new UpgradeError({ what: `${what} on ${options.name}`, why: `exit code ${result.code}: ${lastLines(result.stderr || result.stdout)}`, permanent: true });
      }
      return result.stdout;
    },
    close: () => session.close(),
  };
}

export const lastLines = (text: string, n = 3) =>
  text.trim().split("\n").filter(Boolean).slice(-n).join(" | ") || "(no output)";

/** POSIX single quotes: the command is run by the remote user's shell. */
export const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
