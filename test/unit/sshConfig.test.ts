import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expandProxyCommand, parseJump, resolveSshHost, sshTargetFromConfig } from "../../lib/sshConfig";

// The operator's OpenSSH client config, read with the `ssh-config` parser plus what the driver
// adds: Include, ~, tokens, refusals.
let home: string;
const savedHome = process.env.HOME;
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "uo-sshconfig-"));
  process.env.HOME = home;
  fs.mkdirSync(path.join(home, ".ssh", "conf.d"), { recursive: true });
});
afterAll(() => {
  process.env.HOME = savedHome;
  fs.rmSync(home, { recursive: true, force: true });
});

function write(name: string, lines: string[]): string {
  const file = path.join(home, ".ssh", name);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

const SSM = [
  "# SSH over Session Manager",
  "Host i-* mi-*",
  "  ProxyCommand sh -c \"aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters 'portNumber=%p'\"",
  "  User ec2-user",
  "  IdentityFile ~/.ssh/codeocean.pem",
  "  IdentityFile ~/.ssh/second.pem",
  "  IdentitiesOnly yes",
  "  UserKnownHostsFile ~/.ssh/known_hosts_ssm ~/.ssh/known_hosts2",
  "Host *",
  "  User nobody",
  "  ServerAliveInterval 30",
];

test("a Host i-* block with ProxyCommand routes the instance id; ~ expanded; the first value wins; other names are not routed", () => {
  const file = write("config", SSM);
  const c = resolveSshHost(file, "i-0abc");
  expect(c).toMatchObject({
    routed: true,
    hostName: "i-0abc",
    user: "ec2-user",
    identityFiles: [path.join(home, ".ssh/codeocean.pem"), path.join(home, ".ssh/second.pem")],
    identitiesOnly: true,
    userKnownHostsFiles: [path.join(home, ".ssh/known_hosts_ssm"), path.join(home, ".ssh/known_hosts2")],
  });
  expect(c.proxyCommand).toContain("--target %h");
  const other = resolveSshHost(file, "10.0.1.5");
  expect(other).toMatchObject({ routed: false, hostName: "10.0.1.5", user: "nobody", proxyCommand: undefined });
  // no config at all: nothing routed
  expect(resolveSshHost(undefined, "i-0abc")).toMatchObject({ routed: false, hostName: "i-0abc", identityFiles: [] });
});

test("ProxyCommand tokens %h %p %r %n %% once user and port are final; flags win", () => {
  const file = write("config", SSM);
  const target = sshTargetFromConfig(file, "i-0abc", { port: 2222 }, { user: "ec2-user", port: 22 });
  expect(target.proxyCommand).toBe(
    "sh -c \"aws ssm start-session --target i-0abc --document-name AWS-StartSSHSession --parameters 'portNumber=2222'\"",
  );
  expect(target).toMatchObject({ username: "ec2-user", port: 2222, knownHostsPaths: [path.join(home, ".ssh/known_hosts_ssm"), path.join(home, ".ssh/known_hosts2")] });
  expect(sshTargetFromConfig(file, "i-0abc", { keyPath: "/k", knownHostsPath: "/kh", user: "admin" }, { user: "ec2-user", port: 22 })).toMatchObject({
    username: "admin",
    privateKeyPath: "/k",
    privateKeyPaths: undefined,
    knownHostsPath: "/kh",
    knownHostsPaths: undefined,
  });
  expect(expandProxyCommand("nc %h %p # %r %n 100%%", { host: "h", port: 22, user: "u", alias: "a" })).toBe("nc h 22 # u a 100%");
  expect(() => expandProxyCommand("connect %C", { host: "h", port: 22, user: "u", alias: "a" })).toThrow(/uses the token %C, which the driver does not expand[\s\S]*hint: use %h, %p, %r, %n or %%/);
});

test("Include (relative to ~/.ssh, globbed, sorted, nested) and Match host", () => {
  write("conf.d/10-ssm.conf", SSM.slice(0, 5));
  write("conf.d/20-extra.conf", ["Include ~/.ssh/nested.conf"]);
  write("nested.conf", ["Host bastion", "  HostName 203.0.113.10", "  User jump"]);
  const file = write("config", [
    "Include conf.d/*.conf",
    "Match host 10.0.*",
    "  ProxyJump bastion",
    "  User ec2-user",
    "Match exec \"touch " + path.join(home, "exec-ran") + "\"",
    "  User exec",
  ]);
  expect(resolveSshHost(file, "i-0abc")).toMatchObject({ routed: true, user: "ec2-user" });
  expect(resolveSshHost(file, "bastion")).toMatchObject({ routed: true, hostName: "203.0.113.10", user: "jump" });
  const viaJump = sshTargetFromConfig(file, "10.0.1.5", {}, { user: "ec2-user", port: 22 });
  expect(viaJump).toMatchObject({ host: "10.0.1.5", username: "ec2-user", proxyJump: { host: "203.0.113.10", username: "jump", port: 22 } });
  // Match exec is never run
  expect(fs.existsSync(path.join(home, "exec-ran"))).toBe(false);
});

test("refused with a hint: weak StrictHostKeyChecking, two jump hops, ProxyCommand and ProxyJump together, an unreadable file", () => {
  for (const value of ["no", "accept-new", "off"]) {
    const file = write("config", ["Host i-*", "  ProxyCommand nc %h %p", `  StrictHostKeyChecking ${value}`]);
    expect(() => resolveSshHost(file, "i-1")).toThrow(new RegExp(`StrictHostKeyChecking ${value} for i-1 would accept an unknown or changed host key`));
  }
  expect(resolveSshHost(write("config", ["Host i-*", "  StrictHostKeyChecking yes"]), "i-1").strictHostKeyChecking).toBe("yes");
  expect(() => resolveSshHost(write("config", ["Host i-*", "  ProxyJump a,b"]), "i-1")).toThrow(/has more than one hop/);
  expect(() => resolveSshHost(write("config", ["Host i-*", "  ProxyJump a", "  ProxyCommand nc %h %p"]), "i-1")).toThrow(/both ProxyCommand and ProxyJump/);
  expect(() => resolveSshHost(path.join(home, "absent"), "i-1")).toThrow(/cannot be read \(ENOENT\)[\s\S]*hint: pass --ssh-config/);
  expect(resolveSshHost(write("config", ["Host i-*", "  ProxyCommand none"]), "i-1")).toMatchObject({ proxyCommand: undefined, routed: false });
});

test("ProxyJump specs", () => {
  expect(parseJump("bastion")).toEqual({ host: "bastion" });
  expect(parseJump("ops@bastion:2222")).toEqual({ user: "ops", host: "bastion", port: 2222 });
  expect(parseJump("ssh://ops@[2001:db8::1]:22")).toEqual({ user: "ops", host: "2001:db8::1", port: 22 });
});
