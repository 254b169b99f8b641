import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connectSsh, type SshTarget } from "../../lib/ssh";
import { sshTargetFromConfig } from "../../lib/sshConfig";
import { CASES, type OracleCase } from "./sshConfigCases";

// The oracle: this machine's OpenSSH client (Debian's openssh-client). For every config, the
// driver's target is held field by field against what OpenSSH itself says and does:
// - `ssh -G`: HostName, User, Port, UserKnownHostsFile, HostKeyAlias, IdentitiesOnly, ConnectTimeout;
// - `ssh -v` with the ProxyCommand replaced by `true`: the identity files it really loads (`~`,
//   tokens and ${VAR} expanded by OpenSSH);
// - `ssh -v` as configured: the ProxyCommand it executes ("Executing proxy command: exec …"), and
//   for ProxyJump the implicit `ssh -W` it builds, followed hop by hop with `ssh -v` again;
// - a recorder ProxyCommand run by both: the argv each produced, byte for byte.
// $HOME points at a decoy directory: OpenSSH takes `~` and %d from the passwd entry, ${HOME}
// from the environment. Every `ssh -v` runs in a network namespace of its own (`unshare -n`, no
// interface up): nothing can leave the machine, not even a DNS query.

const me = os.userInfo();
let work: string;
let decoyHome: string;
let inc: string;
let createdSshDir = false;
const savedHome = process.env.HOME;

function writeTree(base: string, marker: string) {
  const put = (rel: string, lines: string[]) => {
    const file = path.join(base, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, lines.join("\n") + "\n", { mode: 0o600 });
  };
  put("config.d/10-bastion", ["Host bastion", `  HostName bastion.${marker}.internal`, "  User jump"]);
  put("config.d/.old-bastion", ["Host bastion", "  HostName old-bastion.internal", "  User stale"]);
  put("envs/prod/config", ["Host web", `  HostName web.prod.${marker}`]);
  put("envs/stage/config", ["Host web", "  User stage-user"]);
  put("late/10-ssm.conf", ["Host i-*", `  User late-${marker}`, "  ProxyCommand none"]);
  put("outer.conf", [`Include ${inc}/inner.conf`]);
  put("inner.conf", ["Host nested-host", `  User nested-${marker}`]);
  put("user.conf", [`User included-${marker}`]);
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "uo-ssh-oracle-"));
  decoyHome = path.join(work, "decoy-home");
  inc = `uo-oracle-${process.pid}-${Date.now()}`;
  const sshDir = path.join(me.homedir, ".ssh");
  if (!fs.existsSync(sshDir)) {
    fs.mkdirSync(sshDir, { mode: 0o700 });
    createdSshDir = true;
  }
  // the same tree under the passwd home (what OpenSSH reads) and under $HOME (a decoy)
  writeTree(path.join(sshDir, inc), "passwd");
  writeTree(path.join(decoyHome, ".ssh", inc), "decoy");
  fs.mkdirSync(path.join(work, "abs"));
  fs.writeFileSync(path.join(work, "abs", "a.conf"), "Host abs-host\n  User from-abs\n");
  fs.writeFileSync(path.join(work, "rec"), '#!/bin/sh\nprintf "%s\\0" "$@" > "${UO_REC_OUT:-/dev/null}"\nexit 3\n', { mode: 0o755 });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(work, "key")]);
  fs.writeFileSync(path.join(work, "known_hosts"), "");
  process.env.HOME = decoyHome;
});

afterAll(() => {
  process.env.HOME = savedHome;
  fs.rmSync(path.join(me.homedir, ".ssh", inc), { recursive: true, force: true });
  if (createdSshDir) fs.rmSync(path.join(me.homedir, ".ssh"), { recursive: true, force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const fill = (line: string) =>
  line.replace(/\{W\}/g, work).replace(/\{INC\}/g, inc).replace(/\{REC\}/g, path.join(work, "rec")).replace(/\{LOCALUSER\}/g, me.username);

function env(c: OracleCase, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, HOME: decoyHome, ...c.env, ...extra };
}

function flagArgs(user?: string, port?: number, jumps?: string): string[] {
  return [...(user ? ["-l", user] : []), ...(port ? ["-p", String(port)] : []), ...(jumps ? ["-J", jumps] : [])];
}

function sshG(config: string, host: string, args: string[], e: NodeJS.ProcessEnv): Map<string, string> {
  const out = execFileSync("ssh", ["-G", "-F", config, ...args, "--", host], { env: e, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 15_000 });
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const [k, ...v] = line.split(" ");
    if (k && !m.has(k)) m.set(k, v.join(" "));
  }
  return m;
}

/** `ssh -v` in a network namespace of its own; its debug lines. */
function sshV(config: string, host: string, args: string[], e: NodeJS.ProcessEnv): string[] {
  const r = spawnSync("unshare", ["-n", "ssh", "-v", "-F", config, "-o", "BatchMode=yes", ...args, "--", host, "true"], { env: e, encoding: "utf8", stdio: ["ignore", "ignore", "pipe"], timeout: 15_000 });
  if (!/^OpenSSH_/.test(r.stderr ?? "")) throw new Error(`ssh -v did not run (${r.error?.message ?? r.status}): ${r.stderr}`);
  return r.stderr.split(/\r?\n/);
}

const identityFiles = (lines: string[]) =>
  lines.map((l) => /^debug1: identity file (.*) type -?\d+$/.exec(l)?.[1]).filter((f): f is string => f !== undefined && !f.endsWith("-cert"));
/** OpenSSH's log lines are strnvis(3)-encoded (VIS_SAFE|VIS_OCTAL): a backslash is doubled, odd bytes are \ooo. */
const unvis = (s: string) => s.replace(/\\(\\|[0-7]{3})/g, (_, x: string) => (x === "\\" ? "\\" : String.fromCharCode(parseInt(x, 8))));
const executed = (lines: string[]) => lines.map((l) => /^debug1: Executing proxy command: exec (.*)$/.exec(l)?.[1]).find((x) => x !== undefined);
const implicitJump = (lines: string[]) => {
  const line = lines.find((l) => l.includes("Setting implicit ProxyCommand from ProxyJump: "));
  if (!line) return undefined;
  const m = /: ssh(?: -l (\S+))?(?: -p (\d+))?(?: -J (\S+))?(?: -F \S+)?(?: -v+)? -W '\[%h\]:%p' (\S+)$/.exec(line);
  if (!m) throw new Error(`unexpected implicit ProxyCommand: ${line}`);
  return { user: m[1], port: m[2] ? Number(m[2]) : undefined, jumps: m[3], host: m[4]! };
};

/** One hop of a ProxyJump chain against what `ssh -G`/`ssh -v` make of the `ssh -W` OpenSSH runs. */
function expectJump(target: SshTarget | undefined, config: string, hop: ReturnType<typeof implicitJump>, e: NodeJS.ProcessEnv) {
  if (!hop) {
    expect(target).toBeUndefined();
    return;
  }
  expect(target).toBeDefined();
  const args = flagArgs(hop.user, hop.port, hop.jumps);
  const g = sshG(config, hop.host, args, e);
  expect({ host: target!.host, user: target!.username, port: target!.port }).toEqual({ host: g.get("hostname"), user: g.get("user"), port: Number(g.get("port")) });
  const v = sshV(config, hop.host, args, e);
  if (!implicitJump(v)) expect(target!.proxyCommand).toBe(executed(v) === undefined ? undefined : unvis(executed(v)!));
  expectJump(target!.proxyJump, config, implicitJump(v), e);
}

test(`at least 40 configs in the oracle set (${CASES.length})`, () => {
  expect(CASES.length).toBeGreaterThanOrEqual(40);
});

describe.each(CASES.map((c, i) => [i, c.title, c] as const))("config %i: %s", (i, _title, c) => {
  test("the driver resolves as OpenSSH does", async () => {
    const dir = path.join(work, "cases", String(i));
    fs.mkdirSync(dir, { recursive: true });
    const config = path.join(dir, "config");
    fs.writeFileSync(config, c.lines.map(fill).join("\n") + "\n");
    const e = env(c);
    const args = flagArgs(c.user, c.port);

    // the driver, in this process, with the case's environment
    const saved = { ...process.env };
    Object.assign(process.env, c.env ?? {});
    let target: SshTarget;
    try {
      target = sshTargetFromConfig(config, c.host, { user: c.user, port: c.port }, { user: me.username, port: 22 });
    } finally {
      for (const k of Object.keys(c.env ?? {})) if (saved[k] === undefined) delete process.env[k];
    }

    const g = sshG(config, c.host, args, e);
    expect(target.host).toBe(g.get("hostname"));
    expect(target.username).toBe(g.get("user"));
    expect(target.port).toBe(Number(g.get("port")));
    expect(target.knownHostsPaths).toEqual((g.get("userknownhostsfile") ?? "").split(" ").filter(Boolean));
    expect(target.hostKeyAlias).toBe(g.get("hostkeyalias"));
    expect(target.identitiesOnly).toBe(g.get("identitiesonly") === "yes");
    expect(target.readyTimeoutMs).toBe(g.get("connecttimeout") === "none" ? undefined : Number(g.get("connecttimeout")) * 1000);

    // identity files as OpenSSH loads them
    expect(target.privateKeyPaths).toEqual(identityFiles(sshV(config, c.host, [...args, "-o", "ProxyCommand=true"], e)));

    // the route: the ProxyCommand it executes, or the ssh -W it builds for ProxyJump
    const recSsh = path.join(dir, "rec-ssh");
    const v = sshV(config, c.host, args, env(c, { UO_REC_OUT: recSsh }));
    const jump = implicitJump(v);
    if (!jump) expect(target.proxyCommand).toBe(executed(v) === undefined ? undefined : unvis(executed(v)!));
    expectJump(target.proxyJump, config, jump, e);

    // a recorder ProxyCommand: the argv OpenSSH's run got is the argv the driver's run gets
    if (c.lines.some((l) => l.includes("{REC}")) && target.proxyCommand) {
      const recDriver = path.join(dir, "rec-driver");
      process.env.UO_REC_OUT = recDriver;
      try {
        const err = await connectSsh({ ...target, privateKeyPath: path.join(work, "key"), privateKeyPaths: undefined, knownHostsPaths: [path.join(work, "known_hosts")], readyTimeoutMs: 5000 }).catch((x) => x);
        expect(err).toBeInstanceOf(Error);
      } finally {
        delete process.env.UO_REC_OUT;
      }
      expect(fs.readFileSync(recDriver, "utf8")).toBe(fs.readFileSync(recSsh, "utf8"));
    }
  });
});

test("a Match exec behind a failing criterion is run by neither", () => {
  expect(fs.existsSync(path.join(work, "exec-ran"))).toBe(false);
});
