import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ExitCode, UpgradeError } from "../../lib/errors";
import { resolveSshHost, sshTargetFromConfig } from "../../lib/sshConfig";

// What the driver adds around `ssh -G` (the real client of this machine): its policy refusals,
// the driver's default user, the built-in defaults without a config, and no ssh on PATH.
let dir: string;
const me = os.userInfo();
const defaults = { user: "ec2-user", port: 22 };
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-ssh-resolution-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

test("StrictHostKeyChecking no/off/accept-new: refused as the driver's policy (exit 3), before anything is spawned", () => {
  for (const value of ["no", "off", "accept-new"]) {
    const marker = path.join(dir, `spawned-${value}`);
    const file = config(`weak-${value}`, ["Host i-*", `  ProxyCommand touch ${marker}`, `  StrictHostKeyChecking ${value}`]);
    const err = (() => {
      try {
        sshTargetFromConfig(file, "i-1", {}, defaults);
      } catch (e) {
        return e as UpgradeError;
      }
    })();
    expect(err).toBeInstanceOf(UpgradeError);
    expect(err!.exitCode).toBe(ExitCode.Refused);
    expect(err!.message).toMatch(new RegExp(`^could not connect to i-1 with the SSH config ${file}: StrictHostKeyChecking ${value === "off" ? "no" : value} applies to i-1 and would accept an unknown or changed host key; the driver's policy is to check host keys strictly`));
    expect(err!.message).not.toMatch(/read the SSH config/);
    expect(fs.existsSync(marker)).toBe(false);
  }
  expect(resolveSshHost(config("strict", ["Host i-*", "  StrictHostKeyChecking yes"]), "i-1").strictHostKeyChecking).toBe("yes");
});

test("KnownHostsCommand is refused as policy; ProxyCommand - is refused", () => {
  expect(() => resolveSshHost(config("khc", ["Host *", "  KnownHostsCommand /bin/echo %H"]), "h")).toThrow(/KnownHostsCommand applies to h; the driver's policy is to verify host keys against known_hosts files only/);
  expect(() => resolveSshHost(config("dash", ["Host *", "  ProxyCommand -"]), "h")).toThrow(/ProxyCommand - \(the connection on stdin\/stdout\)/);
});

test("the driver's default user applies only when the config sets none, even if the config's User is the local user", () => {
  expect(sshTargetFromConfig(config("nouser", ["Host h", "  Port 2200"]), "h", {}, defaults).username).toBe("ec2-user");
  expect(sshTargetFromConfig(config("localuser", ["Host h", `  User ${me.username}`]), "h", {}, defaults).username).toBe(me.username);
  expect(sshTargetFromConfig(config("other", ["Host *", "  User ops"]), "h", { user: "flag" }, defaults).username).toBe("flag");
});

test("no config: OpenSSH's built-in defaults, as `ssh -G -F none` prints them (no ssh needed)", () => {
  const target = sshTargetFromConfig(undefined, "Mixed.Example", { port: 2200 }, { user: me.username, port: 22 });
  const g = execFileSync("ssh", ["-G", "-F", "none", "-p", "2200", "Mixed.Example"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const get = (k: string) => g.split("\n").filter((l) => l.startsWith(`${k} `)).map((l) => l.slice(k.length + 1));
  expect(target.host).toBe(get("hostname")[0]);
  expect(target.port).toBe(Number(get("port")[0]));
  expect(target.username).toBe(get("user")[0]);
  expect(target.knownHostsPaths).toEqual(get("userknownhostsfile")[0]!.split(" "));
  expect(target.globalKnownHostsPaths).toEqual(get("globalknownhostsfile")[0]!.split(" "));
  expect(target.privateKeyPaths).toEqual(get("identityfile").map((f) => f.replace(/^~\//, `${me.homedir}/`)));
  expect(target.defaultKeys).toBe(true);
});

test("ProxyJump: a loop through itself and an endless chain are refused", () => {
  expect(() => sshTargetFromConfig(config("loop", ["Host *", "  ProxyJump h"]), "h", {}, { user: me.username, port: 22 })).toThrow(/OpenSSH refuses .* for h: jumphost loop via h/);
  expect(() => sshTargetFromConfig(config("chain", ["Host a", "  ProxyJump b", "Host b", "  ProxyJump a"]), "a", {}, defaults)).toThrow(/ProxyJump chain to .* is longer than 8 hops/);
});

test("a config OpenSSH rejects: its own words; a missing file; no ssh on PATH", () => {
  expect(() => resolveSshHost(config("bad", ["Host h", "  NoSuchOption yes"]), "h")).toThrow(/OpenSSH refuses .*bad for h: .*Bad configuration option: nosuchoption/);
  expect(() => resolveSshHost(path.join(dir, "absent"), "h")).toThrow(/Can't open user config file .*absent: No such file or directory/);
  const saved = process.env.PATH;
  process.env.PATH = path.join(dir, "empty-bin");
  try {
    expect(() => resolveSshHost(config("any", ["Host h"]), "h")).toThrow(
      /OpenSSH's client \(ssh\) is not on PATH[\s\S]*hint: install OpenSSH's client \(Debian: apt-get install openssh-client\), or pass --ssh-config none/,
    );
    // without a config nothing needs ssh
    expect(sshTargetFromConfig(undefined, "h", {}, defaults)).toMatchObject({ host: "h", username: "ec2-user", port: 22 });
  } finally {
    process.env.PATH = saved;
  }
});
