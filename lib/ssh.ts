import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Duplex } from "node:stream";
import { NodeSSH } from "node-ssh";
import { UpgradeError } from "./errors";
import { hostKeyAlgorithms, knownHostsLookupName, lookupHostKeys, verifyHostKey, type HostKeyRefusal } from "./knownHosts";
import { planAuth } from "./sshAuth";
import { withRetry } from "./retry";

/** How to reach a host over SSH. Host keys are always checked strictly against known_hosts. */
export interface SshTarget {
  host: string;
  port?: number;
  username: string;
  /** Path to the private key; its content never leaves this process. The only key offered. */
  privateKeyPath?: string;
  /** Or the key itself (e.g. from a Pulumi secret). */
  privateKey?: string;
  passphrase?: string;
  /** The variable the passphrase comes from, named in errors (e.g. UPGRADE_SSH_KEY_PASSPHRASE). */
  passphraseName?: string;
  /** IdentityFiles, after ssh-agent's keys (OpenSSH's order, see sshAuth.ts); missing files are skipped. */
  privateKeyPaths?: string[];
  /** privateKeyPaths are OpenSSH's defaults (~/.ssh/id_*): one the passphrase does not open is skipped, not an error. */
  defaultKeys?: boolean;
  /** With privateKeyPaths: do not also offer ssh-agent's other keys. */
  identitiesOnly?: boolean;
  /** The agent's socket (IdentityAgent); default $SSH_AUTH_SOCK; null: no agent. */
  identityAgent?: string | null;
  /** Default ~/.ssh/known_hosts (of the passwd home). */
  knownHostsPath?: string;
  /** Several known_hosts files (UserKnownHostsFile); replaces knownHostsPath when given. */
  knownHostsPaths?: string[];
  /** GlobalKnownHostsFile, read after the user's files as OpenSSH does. */
  globalKnownHostsPaths?: string[];
  /** The name the host key is recorded under (HostKeyAlias), without a port. */
  hostKeyAlias?: string;
  /** A command whose stdin/stdout is the SSH transport (an SSH config's ProxyCommand, tokens expanded). */
  proxyCommand?: string;
  /** The jump host (ProxyJump; itself reached directly, by ProxyCommand or by its own jump). */
  proxyJump?: SshTarget;
  /** Handshake deadline, default 20 s (also covers a ProxyCommand that never answers). */
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

const where = (t: SshTarget) => `${t.username}@${t.host}:${t.port ?? 22}${t.proxyCommand ? " (through its ProxyCommand)" : t.proxyJump ? ` (through ${t.proxyJump.host})` : ""}`;

/** The name OpenSSH looks a host's key up under: HostKeyAlias as is, else host or [host]:port, lowercased. */
export function knownHostsName(target: SshTarget): string {
  return knownHostsLookupName(target.host, target.port ?? 22, target.hostKeyAlias);
}

/** The user's known_hosts files, then the global ones (OpenSSH reads both; missing ones are skipped). */
function readKnownHosts(target: SshTarget): { text: string; files: string } {
  // knownHostsPaths [] is UserKnownHostsFile none
  const user = target.knownHostsPaths
    ? target.knownHostsPaths
    : [target.knownHostsPath ?? path.join(os.userInfo().homedir, ".ssh", "known_hosts")];
  const texts: string[] = [];
  for (const file of [...user, ...(target.globalKnownHostsPaths ?? [])]) {
    try {
      texts.push(fs.readFileSync(file, "utf8"));
    } catch {
      // OpenSSH skips a missing file of several; none readable is refused below
    }
  }
  if (texts.length === 0) {
    throw new UpgradeError({
      what: `connect to ${where(target)}`,
      why: `no known_hosts file can be read (${[...user, ...(target.globalKnownHostsPaths ?? [])].join(", ") || "UserKnownHostsFile none"}), so the host key cannot be verified`,
      hint: "pass --known-hosts <file> holding the host's key (ssh-keyscan it from a trusted network)",
      permanent: true,
    });
  }
  return { text: texts.join("\n"), files: user.join(", ") };
}

/** A spawned ProxyCommand as a duplex stream, with its stderr kept for the error message. */
interface Transport {
  sock?: Duplex;
  /** Why the transport failed, when it did (the proxy's exit and stderr). */
  failure(): Promise<string | undefined>;
  close(): void;
}

/** As OpenSSH runs it (sshconnect.c ssh_proxy_connect): `$SHELL -c "exec <command>"`, /bin/sh without $SHELL. */
function spawnProxyCommand(command: string): Transport {
  const shell = process.env.SHELL || "/bin/sh";
  const child: ChildProcess = spawn(shell, ["-c", `exec ${command}`], { stdio: ["pipe", "pipe", "pipe"], detached: true, env: process.env });
  let stderr = "";
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  let closing = false;
  const exited = new Promise<void>((resolve) => {
    // "close": the exit and all of stderr read
    child.once("close", (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once("error", (err) => {
      spawnError = err;
      resolve();
    });
  });
  child.stderr!.on("data", (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString("utf8");
  });
  child.stdin!.on("error", () => undefined);
  child.stdout!.on("error", () => undefined);
  const sock = new Duplex({
    read: () => void child.stdout!.resume(),
    write: (chunk, _encoding, callback) => void child.stdin!.write(chunk, callback),
    final: (callback) => {
      child.stdin!.end();
      callback();
    },
    destroy: (err, callback) => {
      child.stdin!.destroy();
      child.stdout!.destroy();
      callback(err);
    },
  });
  child.stdout!.on("data", (d: Buffer) => {
    if (!sock.push(d)) child.stdout!.pause();
  });
  child.stdout!.on("end", () => sock.push(null));
  sock.on("error", () => undefined);
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const said = () => (stderr.trim() ? `; it said: ${stderr.trim().split("\n").slice(-3).join(" / ")}` : "");
  return {
    sock,
    async failure() {
      if (closing) return undefined;
      await Promise.race([exited, new Promise((r) => setTimeout(r, 500))]);
      if (spawnError) return `the ProxyCommand \`${command}\` could not be started (${spawnError.message})`;
      if (exit) {
        return `the ProxyCommand \`${command}\` exited ${exit.code !== null ? `with code ${exit.code}` : `on ${exit.signal}`} before the SSH handshake finished${said()}`;
      }
      return `no SSH handshake through the ProxyCommand \`${command}\`, which is still running${said() || " and said nothing"}; it was stopped`;
    },
    close() {
      closing = true;
      sock.destroy();
      if (exit) return;
      killGroup("SIGTERM");
      setTimeout(() => exit || killGroup("SIGKILL"), 2000).unref();
    },
  };
}

interface Connection {
  ssh: NodeSSH;
  close(): void;
}

const REFUSALS: Record<HostKeyRefusal, (name: string, files: string) => string> = {
  mismatch: (name, files) => `the host key it presented does not match the one recorded for ${name} in ${files}: refusing (possible man-in-the-middle, or the host was rebuilt)`,
  "other-type": (name, files) => `it presented a host key of a type not recorded for ${name} in ${files} (no common host key algorithm): refusing`,
  revoked: (name, files) => `its host key is marked @revoked for ${name} in ${files}`,
  "cert-authority": (name, files) => `${files} trusts a certificate authority (@cert-authority) for ${name} but records no plain key; the driver verifies plain host keys only`,
  "unknown-host": (name, files) => `${files} has no key for ${name}`,
};

/** ssh2's errors that retrying cannot fix: authentication, and keys it cannot parse. */
const isAuthFailure = (err: unknown) =>
  (err as { level?: string })?.level === "client-authentication" || /authentication methods failed|Cannot parse privateKey|passphrase/i.test((err as Error)?.message ?? "");

async function openConnection(target: SshTarget): Promise<Connection> {
  const port = target.port ?? 22;
  const what = `connect to ${where(target)}`;
  const known = readKnownHosts(target);
  const lookup = lookupHostKeys(known.text, target.host, port, target.hostKeyAlias);
  // keys are opened before anything is spawned: a wrong passphrase fails here, at once
  const auth = await planAuth(target, what);
  let refusal: HostKeyRefusal | undefined;
  let jump: Connection | undefined;
  let transport: Transport | undefined;
  const cleanup = () => {
    transport?.close();
    jump?.close();
  };
  const ssh = new NodeSSH();
  try {
    if (target.proxyCommand) transport = spawnProxyCommand(target.proxyCommand);
    else if (target.proxyJump) {
      jump = await openConnection(target.proxyJump);
      const stream = await new Promise<Duplex>((resolve, reject) =>
        jump!.ssh.connection!.forwardOut("127.0.0.1", 0, target.host, port, (err: Error | undefined, channel: Duplex) => (err ? reject(err) : resolve(channel))),
      ).catch((err: Error) => {
        throw new UpgradeError({
          what,
          why: `the jump host ${target.proxyJump!.host} could not open a connection to ${target.host}:${port} (${err.message})`,
          hint: "check that the jump host can reach the target, and that it allows TCP forwarding",
          cause: err,
        });
      });
      transport = { sock: stream, failure: async () => undefined, close: () => stream.destroy() };
    }
    await ssh.connect({
      host: target.host,
      port,
      sock: transport?.sock,
      username: target.username,
      authHandler: auth.methods,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      algorithms: { serverHostKey: hostKeyAlgorithms(lookup) },
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(lookup, key);
        if (!verdict.ok) refusal = verdict.reason;
        return verdict.ok;
      },
    } as Parameters<NodeSSH["connect"]>[0]);
  } catch (err) {
    ssh.dispose();
    if (err instanceof UpgradeError) {
      cleanup();
      throw err;
    }
    if (refusal) {
      cleanup();
      throw new UpgradeError({
        what,
        why: REFUSALS[refusal](lookup.name, known.files),
        hint: `verify the host's key out of band, then record it under ${lookup.name} in the known_hosts file`,
        permanent: true,
        cause: err,
      });
    }
    const message = (err as Error)?.message ?? String(err);
    if (isAuthFailure(err)) {
      cleanup();
      throw new UpgradeError({
        what,
        why: `${target.username} was not let in (${message}); offered: ${auth.offered.join(", ") || "nothing"}${auth.skipped.length ? `; skipped: ${auth.skipped.join(", ")}` : ""}`,
        hint: "check --ssh-user and --ssh-key (or the config's User and IdentityFile), and that the key is in the host's authorized_keys",
        permanent: true,
        cause: err,
      });
    }
    const proxyFailure = await transport?.failure();
    cleanup();
    throw new UpgradeError({
      what,
      why: proxyFailure ?? message,
      hint: proxyFailure ? "run the ProxyCommand by hand (ssh -v with the same config) to see why it does not reach the host" : "check that the host is up and the port is reachable",
      cause: err,
    });
  }
  return {
    ssh,
    close() {
      ssh.dispose();
      cleanup();
    },
  };
}

export async function connectSsh(target: SshTarget): Promise<SshSession> {
  const conn = await openConnection(target);
  return {
    async run(command, options = {}) {
      const timeoutMs = options.timeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          conn.close();
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
        const result = await Promise.race([conn.ssh.execCommand(command, { stdin: options.stdin }), timeout]);
        return { code: result.code, stdout: result.stdout, stderr: result.stderr };
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => conn.close(),
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

/**
 * Connects (retrying a refused or dropped connection twice, or `retries` times: a preview with a
 * short deadline does not retry) and wraps the session as a RemoteHost.
 */
export async function connectRemote(target: SshTarget, options: { name: string; commandTimeoutMs: number; retries?: number }): Promise<RemoteHost> {
  const session = await withRetry(`connect to ${options.name}`, () => connectSsh(target), { retries: options.retries ?? 2, minTimeoutMs: 500 });
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

/** POSIX single quotes, for a value in a command run by the remote user's shell. */
export const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
