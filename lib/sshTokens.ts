import { createHash } from "node:crypto";
import * as os from "node:os";
import { execFileSync } from "node:child_process";
import { badInput } from "./errors";

/**
 * OpenSSH's expansions of ssh_config values (ssh_config(5) "TOKENS" and "ENVIRONMENT VARIABLES";
 * misc.c tilde_expand and vdollar_percent_expand of OpenSSH 9.2): `~` and `~user` from the
 * password database (not $HOME), `${VAR}` from the environment, `%x` tokens, in one pass.
 */

/** The local user as OpenSSH sees it: getpwuid(getuid()), not $HOME/$USER. */
export function localUser(): { name: string; home: string; uid: number } {
  const info = os.userInfo();
  return { name: info.username, home: info.homedir, uid: info.uid };
}

/** `~` → the passwd home, `~user` → that user's home; anything else unchanged. */
export function tildeExpand(file: string): string {
  if (!file.startsWith("~")) return file;
  const rest = file.slice(1);
  let user: string | undefined;
  let tail: string;
  if (rest === "" || rest.startsWith("/")) tail = rest.replace(/^\/+/, "");
  else {
    const slash = rest.indexOf("/");
    user = slash < 0 ? rest : rest.slice(0, slash);
    tail = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+/, "");
  }
  const home = user === undefined ? localUser().home : homeOf(user);
  return `${home}${home.endsWith("/") ? "" : "/"}${tail}`;
}

function homeOf(user: string): string {
  if (user === localUser().name) return localUser().home;
  try {
    // getent reads the same name service switch as OpenSSH's getpwnam
    const line = execFileSync("getent", ["passwd", user], { encoding: "utf8", timeout: 5000 }).trim();
    const home = line.split(":")[5];
    if (home) return home;
  } catch {
    // not found: below
  }
  throw badInput("read the SSH config", `~${user} names no user of this machine`, "fix the path in the SSH config");
}

/** The values of ssh_config(5)'s tokens for one connection (ssh.c's ssh_conn_info). */
export interface ConnectionTokens {
  /** %h: the remote host name (HostName, expanded and lowercased). */
  host: string;
  /** %n: the name given on the command line. */
  hostArg: string;
  /** %p */
  port: number;
  /** %r */
  user: string;
  /** %k: HostKeyAlias, else the name given. */
  keyAlias: string;
}

/** The full token table of OpenSSH 9.2's DEFAULT_CLIENT_PERCENT_EXPAND_ARGS. */
export function clientTokens(c: ConnectionTokens): Record<string, string> {
  const me = localUser();
  const thisHost = os.hostname();
  const port = String(c.port);
  return {
    C: createHash("sha1").update(thisHost + c.host + port + c.user).digest("hex"),
    L: thisHost.split(".")[0]!,
    i: String(me.uid),
    k: c.keyAlias,
    l: thisHost,
    n: c.hostArg,
    p: port,
    d: me.home,
    h: c.host,
    r: c.user,
    u: me.name,
  };
}

/**
 * `%x` (and with `dollar`, `${VAR}`) expanded in one pass, as percent_expand/dollar_expand do:
 * an unknown token, a trailing `%`, or an unset variable is an error naming the keyword.
 */
export function expandTokens(value: string, tokens: Record<string, string>, keyword: string, options: { dollar?: boolean } = {}): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (options.dollar && c === "$" && value[i + 1] === "{") {
      const end = value.indexOf("}", i + 2);
      const name = end < 0 ? "" : value.slice(i + 2, end);
      if (end < 0 || name === "") throw badInput("read the SSH config", `${keyword} ${JSON.stringify(value)}: \${…} is not closed or is empty`, "write ${NAME}");
      const v = process.env[name];
      if (v === undefined) throw badInput("read the SSH config", `${keyword} ${JSON.stringify(value)} uses \${${name}}, which is not set`, `set ${name}, or write the path in full`);
      out += v;
      i = end;
      continue;
    }
    if (c !== "%") {
      out += c;
      continue;
    }
    const t = value[++i];
    if (t === "%") out += "%";
    else if (t !== undefined && t in tokens) out += tokens[t];
    else {
      throw badInput(
        "read the SSH config",
        `${keyword} ${JSON.stringify(value)} uses ${t === undefined ? "a lone %" : `the token %${t}`}, which OpenSSH does not expand there`,
        `use one of ${Object.keys(tokens).map((k) => `%${k}`).join(" ")} or %%`,
      );
    }
  }
  return out;
}

/** A file-name value (IdentityFile, IdentityAgent): `~`, then `${VAR}` and the client tokens. */
export function expandPath(value: string, tokens: Record<string, string>, keyword: string): string {
  return expandTokens(tildeExpand(value), tokens, keyword, { dollar: true });
}

/** ProxyCommand's tokens (sshconnect.c expand_proxy_command): %h %k %n %p %r %%, no ${VAR}. */
export function expandProxyCommand(command: string, c: ConnectionTokens): string {
  return expandTokens(command, { h: c.host, k: c.keyAlias, n: c.hostArg, p: String(c.port), r: c.user }, "ProxyCommand");
}
