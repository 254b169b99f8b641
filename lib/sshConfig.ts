import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import SSHConfig, { LineType, type Line, type Section } from "ssh-config";
import { badInput } from "./errors";
import type { SshTarget } from "./ssh";

/**
 * The operator's OpenSSH client config (ssh_config(5)), read with the maintained `ssh-config`
 * parser. What it does not do is done here: `Include` (relative to ~/.ssh, globs, nested up to
 * OpenSSH's depth of 16), `~` expansion, the ProxyCommand tokens, and the refusal of a weaker
 * than strict host-key policy. `Match exec` is never run (its block does not apply).
 */
export interface SshHostConfig {
  /** The config file read, or undefined when there is none. */
  source?: string;
  /** The name that was looked up (e.g. the instance id). */
  alias: string;
  /** A Host/Match block of the file set HostName, ProxyCommand or ProxyJump for this name. */
  routed: boolean;
  hostName: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly: boolean;
  userKnownHostsFiles: string[];
  strictHostKeyChecking?: string;
  hostKeyAlias?: string;
  /** With %h %p %r %n %% expanded (once user and port are final: see expandProxyCommand). */
  proxyCommand?: string;
  /** `[user@]host[:port]`, one hop. */
  proxyJump?: string;
  connectTimeoutSeconds?: number;
}

const MAX_INCLUDE_DEPTH = 16;

/** $HOME as OpenSSH reads it (os.homedir() falls back to the password database). */
function home(): string {
  return process.env.HOME || os.homedir();
}

export function defaultSshConfigPath(): string {
  return path.join(home(), ".ssh", "config");
}

export function expandHome(p: string): string {
  return p === "~" ? home() : p.startsWith("~/") ? path.join(home(), p.slice(2)) : p;
}

/** Parses a config file and splices in what its `Include` directives name. */
export function loadSshConfig(file: string): SSHConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw badInput("read the SSH config", `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`, "pass --ssh-config <file>, or none to use no config");
  }
  const config = parse(file, text);
  expandIncludes(config, file, 0);
  return config;
}

function parse(file: string, text: string): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (err) {
    throw badInput("read the SSH config", `${file}: ${(err as Error).message}`, "fix the file (ssh -G <host> -F <file> shows what OpenSSH makes of it)");
  }
}

function expandIncludes(lines: Line[], from: string, depth: number): void {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.type !== LineType.DIRECTIVE) continue;
    if ("config" in line) {
      expandIncludes((line as Section).config, from, depth);
      continue;
    }
    if (!/^include$/i.test(line.param)) continue;
    if (depth >= MAX_INCLUDE_DEPTH) throw badInput("read the SSH config", `Include nested deeper than ${MAX_INCLUDE_DEPTH} at ${from}`, "look for an Include loop");
    const patterns = Array.isArray(line.value) ? line.value.map((v) => v.val) : line.value.split(/\s+/);
    const included: Line[] = [];
    for (const pattern of patterns) {
      for (const file of globFiles(pattern)) {
        const sub = parse(file, fs.readFileSync(file, "utf8"));
        expandIncludes(sub, file, depth + 1);
        included.push(...sub);
      }
    }
    lines.splice(i, 1, ...included);
    i += included.length - 1;
  }
}

/** Include paths: `~` expanded, relative ones under ~/.ssh, `*`/`?` in the last part, sorted. */
function globFiles(pattern: string): string[] {
  let p = expandHome(pattern);
  if (!path.isAbsolute(p)) p = path.join(home(), ".ssh", p);
  const dir = path.dirname(p);
  const base = path.basename(p);
  if (!/[*?]/.test(base)) return fs.existsSync(p) ? [p] : [];
  const re = new RegExp("^" + base.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => re.test(n)).sort().map((n) => path.join(dir, n)).filter((f) => fs.statSync(f).isFile());
}

/** What the config says for `alias`, as `ssh -G alias` would (for the keys the driver uses). */
export function resolveSshHost(file: string | undefined, alias: string, options: { user?: string } = {}): SshHostConfig {
  const base: SshHostConfig = { source: file, alias, routed: false, hostName: alias, identityFiles: [], identitiesOnly: false, userKnownHostsFiles: [] };
  if (!file) return base;
  const config = loadSshConfig(file);
  const computed = config.compute({ Host: alias, User: options.user }, { ignoreCase: true, matchExec: false }) as Record<string, unknown>;
  const one = (key: string): string | undefined => {
    const v = computed[key];
    const s = Array.isArray(v) ? (v as string[]).join(" ") : (v as string | undefined);
    return s === undefined || s === "" ? undefined : String(s);
  };
  const many = (key: string): string[] => {
    const v = computed[key];
    return v === undefined ? [] : Array.isArray(v) ? (v as string[]).flatMap((x) => String(x).split(/\s+/)) : String(v).split(/\s+/);
  };
  const proxyCommand = one("proxycommand");
  const proxyJump = one("proxyjump");
  const hostName = one("hostname");
  const portText = one("port");
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw badInput("read the SSH config", `${file}: Port ${JSON.stringify(portText)} for ${alias} is not a TCP port`);
  }
  const timeout = one("connecttimeout");
  const result: SshHostConfig = {
    ...base,
    hostName: hostName ? expandHostTokens(hostName, alias) : alias,
    user: one("user"),
    port,
    identityFiles: many("identityfile").map(expandHome),
    identitiesOnly: one("identitiesonly")?.toLowerCase() === "yes",
    userKnownHostsFiles: many("userknownhostsfile").map(expandHome),
    strictHostKeyChecking: one("stricthostkeychecking")?.toLowerCase(),
    hostKeyAlias: one("hostkeyalias"),
    proxyCommand: proxyCommand && proxyCommand.toLowerCase() !== "none" ? proxyCommand : undefined,
    proxyJump: proxyJump && proxyJump.toLowerCase() !== "none" ? proxyJump : undefined,
    connectTimeoutSeconds: timeout ? Number(timeout) : undefined,
  };
  result.routed = Boolean(hostName || result.proxyCommand || result.proxyJump);
  if (result.proxyCommand && result.proxyJump) {
    throw badInput("read the SSH config", `${file}: both ProxyCommand and ProxyJump apply to ${alias}`, "keep one of them (OpenSSH uses the first it reads)");
  }
  if (result.proxyJump?.includes(",")) {
    throw badInput("read the SSH config", `${file}: ProxyJump ${result.proxyJump} for ${alias} has more than one hop`, "the driver follows one jump host; chain the others in the jump host's own config entry");
  }
  const strict = result.strictHostKeyChecking;
  if (strict && !["yes", "ask", "true"].includes(strict)) {
    throw badInput(
      "read the SSH config",
      `${file}: StrictHostKeyChecking ${strict} for ${alias} would accept an unknown or changed host key`,
      "the driver always checks host keys strictly: record the host's key in known_hosts (ssh-keyscan from a trusted network, or one interactive ssh) and set StrictHostKeyChecking yes for this host",
    );
  }
  return result;
}

/** %h in HostName is the name asked for (ssh_config(5)). */
function expandHostTokens(value: string, alias: string): string {
  return value.replace(/%(.)/g, (m, t: string) => (t === "h" ? alias : t === "%" ? "%" : m));
}

/** The ProxyCommand tokens: %h host name, %p port, %r user, %n the name asked for, %% a percent sign. */
export function expandProxyCommand(command: string, values: { host: string; port: number; user: string; alias: string }): string {
  return command.replace(/%(.)?/g, (m, t: string | undefined) => {
    switch (t) {
      case "h": return values.host;
      case "p": return String(values.port);
      case "r": return values.user;
      case "n": return values.alias;
      case "%": return "%";
      default:
        throw badInput("read the SSH config", `ProxyCommand ${JSON.stringify(command)} uses the token ${m}, which the driver does not expand`, "use %h, %p, %r, %n or %%");
    }
  });
}

/** `[user@]host[:port]` of a ProxyJump. */
export function parseJump(spec: string): { user?: string; host: string; port?: number } {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec.replace(/^ssh:\/\//, ""));
  if (!m) throw badInput("read the SSH config", `ProxyJump ${JSON.stringify(spec)} is not [user@]host[:port]`);
  return { user: m[1], host: m[2]!.replace(/^\[|\]$/g, ""), port: m[3] ? Number(m[3]) : undefined };
}

/** What flags (or API options) say; each wins over the config. */
export interface SshFlags {
  user?: string;
  port?: number;
  keyPath?: string;
  passphrase?: string;
  knownHostsPath?: string;
}

/**
 * The SshTarget for `alias` as OpenSSH would connect with `ssh [flags] alias` and this config:
 * flags first, then the config, then the defaults.
 */
export function sshTargetFromConfig(
  file: string | undefined,
  alias: string,
  flags: SshFlags,
  defaults: { user: string; port: number },
): SshTarget {
  const c = resolveSshHost(file, alias, { user: flags.user });
  const username = flags.user ?? c.user ?? defaults.user;
  const port = flags.port ?? c.port ?? defaults.port;
  const target: SshTarget = {
    host: c.hostName,
    port,
    username,
    privateKeyPath: flags.keyPath,
    privateKeyPaths: flags.keyPath ? undefined : c.identityFiles,
    identitiesOnly: c.identitiesOnly,
    passphrase: flags.passphrase,
    knownHostsPath: flags.knownHostsPath,
    knownHostsPaths: flags.knownHostsPath || c.userKnownHostsFiles.length === 0 ? undefined : c.userKnownHostsFiles,
    hostKeyAlias: c.hostKeyAlias,
    proxyCommand: c.proxyCommand ? expandProxyCommand(c.proxyCommand, { host: c.hostName, port, user: username, alias }) : undefined,
    readyTimeoutMs: c.connectTimeoutSeconds ? c.connectTimeoutSeconds * 1000 : undefined,
  };
  if (c.proxyJump) {
    const jump = parseJump(c.proxyJump);
    const hop = resolveSshHost(file, jump.host);
    if (hop.proxyJump || hop.proxyCommand) {
      throw badInput(
        "read the SSH config",
        `${file}: the jump host ${jump.host} of ${alias} has its own ${hop.proxyJump ? "ProxyJump" : "ProxyCommand"}`,
        "the driver follows one jump host; run it from a machine that reaches the jump host directly",
      );
    }
    target.proxyJump = sshTargetFromConfig(
      file,
      jump.host,
      { user: jump.user, port: jump.port, keyPath: hop.identityFiles.length ? undefined : flags.keyPath, passphrase: flags.passphrase, knownHostsPath: flags.knownHostsPath },
      { user: os.userInfo().username, port: 22 },
    );
  }
  return target;
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
