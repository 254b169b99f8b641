import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { badInput, ExitCode, UpgradeError } from "./errors";
import type { SshTarget } from "./ssh";
import { clientTokens, expandPath, expandProxyCommand, localUser, tildeExpand, type ConnectionTokens } from "./sshTokens";

/**
 * The operator's OpenSSH client config, resolved by OpenSSH itself: `ssh -G -F <file> [-l user]
 * [-p port] [-J hops] <name>` prints the configuration `ssh` would use (Host/Match, Include,
 * first value wins, HostName's %h, lowercasing, defaults). `ssh -G` connects nowhere and runs no
 * ProxyCommand or KnownHostsCommand; it does run `Match exec` commands, as the operator's own
 * `ssh` would for this connection (accepted: skipping them would resolve another config). Left to
 * the driver is what `ssh` does after -G prints: IdentityFile's `~`/tokens/${VAR}, the ProxyCommand
 * tokens, and the jump hosts (each resolved by `ssh -G` again, as `ssh -J` does).
 */
export interface SshHostConfig {
  /** The config file read, or undefined when there is none (OpenSSH's built-in defaults). */
  source?: string;
  /** The name that was looked up (e.g. the instance id). */
  alias: string;
  /** The config gives this name a HostName, ProxyCommand or ProxyJump of its own. */
  routed: boolean;
  /** HostName, %h expanded, lowercased unless an address (as `ssh -G` prints it). */
  hostName: string;
  /** User, when the config (or -l) sets one; undefined: the caller's default applies. */
  user?: string;
  port: number;
  /** IdentityFile values as written (`~`, tokens, ${VAR} not yet expanded: see identityPaths). */
  identityFiles: string[];
  /** No IdentityFile configured: these are OpenSSH's defaults (~/.ssh/id_rsa, …). */
  defaultIdentities: boolean;
  identitiesOnly: boolean;
  /** IdentityAgent: undefined for $SSH_AUTH_SOCK, null for none, else the socket (expanded by ssh). */
  identityAgent?: string | null;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  /** As OpenSSH normalises it: yes, ask (never no/accept-new: refused). */
  strictHostKeyChecking: string;
  hostKeyAlias?: string;
  /** The template, tokens unexpanded (expandProxyCommand). */
  proxyCommand?: string;
  /** As `ssh -G` prints it: `[hops,][user@]host[:port]`, the last hop next to the target. */
  proxyJump?: string;
  connectTimeoutSeconds?: number;
}

const SSH_G_TIMEOUT_MS = 20_000;
const MAX_JUMPS = 8;
const DEFAULT_IDENTITIES = ["id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"].map((f) => `~/.ssh/${f}`);
/** A User no config sets: it tells a User from the config apart from OpenSSH's default. */
const NO_USER = "uo-no-user-in-config";

/** ~/.ssh/config of the passwd home, the file OpenSSH reads by default (not $HOME's). */
export function defaultSshConfigPath(): string {
  return path.join(localUser().home, ".ssh", "config");
}

/** `~` and `~user` as OpenSSH expands them (the password database, not $HOME). */
export const expandHome = tildeExpand;

const readError = (why: string, hint?: string) => badInput("read the SSH config", why, hint);

/** Runs `ssh -G`; its output as keyword → values (keywords lowercase, in order). */
function sshG(args: string[], name: string, file: string): Map<string, string[]> {
  let out: string;
  try {
    out = execFileSync("ssh", ["-G", ...args, "--", name], {
      encoding: "utf8",
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: SSH_G_TIMEOUT_MS,
      maxBuffer: 4 << 20,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; status?: number | null; signal?: string };
    if (e.code === "ENOENT") {
      throw new UpgradeError({
        what: "read the SSH config",
        why: `OpenSSH's client (ssh) is not on PATH, and the driver resolves ${file} with \`ssh -G\` so that it connects exactly as OpenSSH would`,
        hint: "install OpenSSH's client (Debian: apt-get install openssh-client), or pass --ssh-config none with --ssh-host, --ssh-user, --ssh-key and --known-hosts",
        exitCode: ExitCode.BadInput,
        permanent: true,
      });
    }
    if (e.code === "ETIMEDOUT" || e.signal === "SIGTERM") {
      throw readError(`\`ssh -G ${name}\` with ${file} did not finish within ${SSH_G_TIMEOUT_MS / 1000}s (a Match exec command that does not return?)`, "run `ssh -G` with the same config by hand");
    }
    const said = String(e.stderr ?? "").split("\n").filter((l) => l.trim() && !/^Pseudo-terminal/.test(l)).slice(-3).join(" / ");
    throw readError(`OpenSSH refuses ${file} for ${name}: ${said || `ssh -G exited ${e.status}`}`, `fix the file (ssh -G -F ${file} ${name} shows the same)`);
  }
  const values = new Map<string, string[]>();
  for (const line of out.split("\n")) {
    const m = /^(\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    values.set(key, [...(values.get(key) ?? []), m[2]!]);
  }
  return values;
}

/** What OpenSSH computes for `name`: `ssh -G` with the config, or its built-in defaults without one. */
export function resolveSshHost(
  file: string | undefined,
  name: string,
  options: { user?: string; port?: number; jumps?: string; /** false: the local user is the fallback anyway */ userSource?: boolean } = {},
): SshHostConfig {
  if (!file) return builtinDefaults(name, options);
  const args = ["-F", file];
  if (options.user !== undefined) args.push("-l", options.user);
  if (options.port !== undefined) args.push("-p", String(options.port));
  if (options.jumps !== undefined) args.push("-J", options.jumps);
  const g = sshG(args, name, file);
  const one = (key: string) => g.get(key)?.[0];
  const none = (v: string | undefined) => (v === undefined || v.toLowerCase() === "none" ? undefined : v);
  let user = options.user ?? one("user");
  if (options.user === undefined && user === localUser().name && options.userSource !== false) user = userFromConfig(file, name, args) ? user : undefined;
  const strict = ({ true: "yes", false: "no" } as Record<string, string>)[one("stricthostkeychecking") ?? "ask"] ?? one("stricthostkeychecking")!;
  const identityFiles = (g.get("identityfile") ?? []).filter((f) => f.toLowerCase() !== "none");
  const agent = one("identityagent");
  const timeout = one("connecttimeout");
  const c: SshHostConfig = {
    source: file,
    alias: name,
    routed: false,
    hostName: one("hostname") ?? name,
    user,
    port: Number(one("port") ?? 22),
    identityFiles,
    defaultIdentities: identityFiles.length === DEFAULT_IDENTITIES.length && identityFiles.every((f, i) => f === DEFAULT_IDENTITIES[i]),
    identitiesOnly: one("identitiesonly") === "yes",
    identityAgent: agent === undefined || agent === "SSH_AUTH_SOCK" ? undefined : agent.toLowerCase() === "none" ? null : agent,
    userKnownHostsFiles: (one("userknownhostsfile") ?? "").split(" ").filter(Boolean),
    globalKnownHostsFiles: (one("globalknownhostsfile") ?? "").split(" ").filter(Boolean).map(tildeExpand),
    strictHostKeyChecking: strict,
    hostKeyAlias: one("hostkeyalias"),
    proxyCommand: none(one("proxycommand")),
    proxyJump: none(one("proxyjump")),
    connectTimeoutSeconds: timeout === undefined || timeout === "none" ? undefined : Number(timeout),
  };
  c.routed = c.hostName !== defaultHostName(name) || Boolean(c.proxyCommand || c.proxyJump);
  refuseWhatTheDriverCannotHonour(c, g);
  return c;
}

/** ssh.c: the name is lowercased unless it is an address. */
const defaultHostName = (name: string) => (net.isIP(name) ? name : name.toLowerCase());

/** `ssh -G -F none`: OpenSSH's defaults, without running ssh (it may not be installed). */
function builtinDefaults(name: string, options: { user?: string; port?: number }): SshHostConfig {
  return {
    alias: name,
    routed: false,
    hostName: defaultHostName(name),
    user: options.user,
    port: options.port ?? 22,
    identityFiles: DEFAULT_IDENTITIES,
    defaultIdentities: true,
    identitiesOnly: false,
    userKnownHostsFiles: ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"].map(tildeExpand),
    globalKnownHostsFiles: ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
    strictHostKeyChecking: "ask",
  };
}

/**
 * `ssh -G` prints the local user name whether the config set it or not; the driver's default
 * user (ec2-user) applies only when it did not. A wrapper that includes the config and then sets
 * a User no config sets tells the two apart (first value wins).
 */
function userFromConfig(file: string, name: string, args: string[]): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-ssh-g-"));
  try {
    const wrapper = path.join(dir, "config");
    fs.writeFileSync(wrapper, `Include "${path.resolve(file)}"\nMatch all\n  User ${NO_USER}\n`, { mode: 0o600 });
    const g = sshG(["-F", wrapper, ...args.slice(2)], name, file);
    return g.get("user")?.[0] !== NO_USER;
  } catch {
    // e.g. the file's permissions pass -F but not Include: OpenSSH's answer stands
    return true;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The driver's policy (strict host keys, plain known_hosts) and what its transport cannot do. */
function refuseWhatTheDriverCannotHonour(c: SshHostConfig, g: Map<string, string[]>): void {
  const policy = (why: string, hint: string) =>
    new UpgradeError({ what: `connect to ${c.alias} with the SSH config ${c.source}`, why, hint, exitCode: ExitCode.Refused, permanent: true });
  if (c.strictHostKeyChecking === "no" || c.strictHostKeyChecking === "accept-new") {
    throw policy(
      `StrictHostKeyChecking ${c.strictHostKeyChecking} applies to ${c.alias} and would accept an unknown or changed host key; the driver's policy is to check host keys strictly, with no trust on first use`,
      "record the host's key in known_hosts (ssh-keyscan from a trusted network, or one interactive ssh) and set StrictHostKeyChecking yes for this host",
    );
  }
  const khc = g.get("knownhostscommand")?.[0];
  if (khc && khc.toLowerCase() !== "none") {
    throw policy(`KnownHostsCommand applies to ${c.alias}; the driver's policy is to verify host keys against known_hosts files only, and it does not run that command`, "record the host's key in a UserKnownHostsFile for this host");
  }
  if (c.proxyCommand === "-") throw policy(`ProxyCommand - (the connection on stdin/stdout) applies to ${c.alias}, which the driver cannot use`, "use a ProxyCommand that runs a command, or ProxyJump");
  if (g.get("proxyusefdpass")?.[0] === "yes" && c.proxyCommand) {
    throw policy(`ProxyUseFdpass yes applies to ${c.alias}; the driver reads the ProxyCommand's stdout and does not accept a passed descriptor`, "remove ProxyUseFdpass for this host");
  }
}

/** `[user@]host[:port]` (or `ssh://[user@]host[:port]`) of one ProxyJump hop. */
export function parseJump(spec: string): { user?: string; host: string; port?: number } {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec.replace(/^ssh:\/\//, ""));
  if (!m) throw readError(`ProxyJump ${JSON.stringify(spec)} is not [user@]host[:port]`);
  return { user: m[1], host: m[2]!.replace(/^\[|\]$/g, ""), port: m[3] ? Number(m[3]) : undefined };
}

/** What flags (or API options) say; each wins over the config. */
export interface SshFlags {
  user?: string;
  port?: number;
  keyPath?: string;
  passphrase?: string;
  /** The variable the passphrase came from, for error messages (e.g. UPGRADE_SSH_KEY_PASSPHRASE). */
  passphraseName?: string;
  knownHostsPath?: string;
  /** Earlier ProxyJump hops (`ssh -J`), when resolving a jump host. */
  jumps?: string;
}

/**
 * The SshTarget for `name` as OpenSSH would connect with `ssh [-l user] [-p port] name` and this
 * config: flags first, then the config, then `defaults` (where OpenSSH would use the local user).
 * A ProxyJump chain becomes nested targets, each hop resolved as the `ssh -J` OpenSSH runs would:
 * the same config, the hop's own user and port, no flags but the passphrase.
 */
export function sshTargetFromConfig(file: string | undefined, name: string, flags: SshFlags, defaults: { user: string; port: number }, depth = 0): SshTarget {
  const c = resolveSshHost(file, name, { user: flags.user, port: flags.port, jumps: flags.jumps, userSource: defaults.user !== localUser().name });
  const username = c.user ?? defaults.user;
  const port = flags.port ?? (file ? c.port : defaults.port);
  const tokens: ConnectionTokens = { host: c.hostName, hostArg: name, port, user: username, keyAlias: c.hostKeyAlias ?? name };
  const table = clientTokens(tokens);
  const target: SshTarget = {
    host: c.hostName,
    port,
    username,
    privateKeyPath: flags.keyPath,
    privateKeyPaths: flags.keyPath ? undefined : c.identityFiles.map((f) => expandPath(f, table, "IdentityFile")),
    defaultKeys: !flags.keyPath && c.defaultIdentities,
    identitiesOnly: c.identitiesOnly,
    identityAgent: c.identityAgent === undefined || c.identityAgent === null ? c.identityAgent : identityAgentPath(c.identityAgent),
    passphrase: flags.passphrase,
    passphraseName: flags.passphraseName,
    knownHostsPaths: flags.knownHostsPath ? [flags.knownHostsPath] : c.userKnownHostsFiles,
    globalKnownHostsPaths: c.globalKnownHostsFiles,
    hostKeyAlias: c.hostKeyAlias,
    proxyCommand: c.proxyCommand ? expandProxyCommand(c.proxyCommand, tokens) : undefined,
    readyTimeoutMs: c.connectTimeoutSeconds ? c.connectTimeoutSeconds * 1000 : undefined,
  };
  if (c.proxyJump) {
    const comma = c.proxyJump.lastIndexOf(",");
    const jump = parseJump(c.proxyJump.slice(comma + 1));
    const jumps = comma < 0 ? undefined : c.proxyJump.slice(0, comma);
    if (depth >= MAX_JUMPS) throw readError(`${file}: the ProxyJump chain to ${name} is longer than ${MAX_JUMPS} hops`, "look for a ProxyJump loop (e.g. Host * ProxyJump without ProxyJump none for the jump host)");
    const jumpUser = jump.user ?? username;
    if (jump.host === c.hostName && (jump.port ?? 22) === port && jumpUser === username) {
      throw readError(`${file}: ${name} jumps through itself (jumphost loop via ${jump.host}, as OpenSSH says)`, "set ProxyJump none for the jump host's own block");
    }
    target.proxyJump = sshTargetFromConfig(file, jump.host, { user: jump.user, port: jump.port, jumps, passphrase: flags.passphrase, passphraseName: flags.passphraseName }, { user: localUser().name, port: 22 }, depth + 1);
  }
  return target;
}

/** IdentityAgent as `ssh -G` prints it (already expanded): `$VAR` names a variable holding the socket. */
function identityAgentPath(value: string): string | null {
  return value.startsWith("$") ? (process.env[value.slice(1)] ?? null) : value;
}

/** How a target is reached, for notes and plans. */
export function describeRoute(target: SshTarget, file?: string): string {
  const via = target.proxyCommand
    ? `through the ProxyCommand \`${target.proxyCommand}\``
    : target.proxyJump
      ? `through the jump host ${target.proxyJump.username}@${target.proxyJump.host}:${target.proxyJump.port ?? 22}`
      : "directly";
  return `${target.username}@${target.host}:${target.port ?? 22} ${via}${file ? ` (SSH config ${file})` : ""}`;
}
