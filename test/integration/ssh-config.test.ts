import * as fs from "node:fs";
import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { connectSsh } from "../../lib/ssh";
import { sshTargetFromConfig } from "../../lib/sshConfig";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli } from "../sandbox/cli";
import { ssmLikeSshConfig } from "../sandbox/sshProxy";
import { runbookContext } from "../sandbox/fleet";
import { servicesSshTarget } from "../../stacks/runbooks/codeocean/cancelComputations";

// The operator's OpenSSH config against the bed's real sshd, through a real ProxyCommand (an
// OpenSSH `ssh -W` standing in for Session Manager) and a real ProxyJump.
let bed: Sandbox;
let dir: string;
const ID = "i-0123456789abcdef0";
const defaults = { user: "ec2-user", port: 22 };

beforeAll(async () => {
  bed = await startSandbox({ pulumi: false });
  dir = path.join(bed.dir, "ssh-config");
}, 120_000);
afterAll(() => bed?.stop());

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("the instance id through the config's ProxyCommand: host key under the id, User/IdentityFile/UserKnownHostsFile from the config", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "ok"), [ID]);
  const target = sshTargetFromConfig(ssm.configPath, ID, {}, defaults);
  expect(target).toMatchObject({ host: ID, port: 22, username: bed.sshd!.user, proxyCommand: `${ssm.proxyPath} ${ID} 22`, knownHostsPaths: [ssm.knownHostsPath] });
  const session = await connectSsh(target);
  try {
    expect((await session.run("echo through-proxy")).stdout).toBe("through-proxy");
  } finally {
    session.close();
  }
  // the proxy (an `ssh -W`) is gone once the session is closed
  const pid = Number(fs.readFileSync(ssm.pidPath, "utf8"));
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  expect(alive(pid)).toBe(false);
  // flags win over the config
  expect(sshTargetFromConfig(ssm.configPath, ID, { user: "root", port: 2222 }, defaults)).toMatchObject({ username: "root", port: 2222, proxyCommand: `${ssm.proxyPath} ${ID} 2222` });
});

test("HostKeyAlias: the key is looked up under the alias; Include and Match host are followed", async () => {
  const sub = path.join(dir, "alias");
  const ssm = ssmLikeSshConfig(bed.sshd!, sub, [ID], { recordKeys: false });
  fs.writeFileSync(ssm.knownHostsPath, `services-prod ${bed.sshd!.hostPublicKey}\n`);
  // the Host block moves to an included file; a Match host block sets the alias
  fs.writeFileSync(path.join(sub, "ssm.conf"), fs.readFileSync(ssm.configPath, "utf8"));
  fs.writeFileSync(path.join(sub, "config"), `Include ${sub}/*.conf\n\nMatch host ${ID}\n  HostKeyAlias services-prod\n`);
  const target = sshTargetFromConfig(ssm.configPath, ID, {}, defaults);
  expect(target.hostKeyAlias).toBe("services-prod");
  expect(target.proxyCommand).toBe(`${ssm.proxyPath} ${ID} 22`);
  const session = await connectSsh(target);
  session.close();
});

test("a ProxyCommand that exits at once: its exit code and stderr are the error", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "exits"), [ID]);
  const target = sshTargetFromConfig(ssm.configPath, "i-0ffffffffffffffff", {}, defaults);
  const error = await connectSsh(target).catch((e) => e);
  expect(error).toBeInstanceOf(UpgradeError);
  expect(error.message).toMatch(/ProxyCommand `.*ssm-start-session i-0ffffffffffffffff 22` exited with code 254 before the SSH handshake finished/);
  expect(error.message).toContain("TargetNotConnected");
  expect(error.message).toMatch(/hint: run the ProxyCommand by hand/);
});

test("a ProxyCommand that hangs: the handshake deadline (ConnectTimeout) ends it, and the command is killed", async () => {
  const pidFile = path.join(dir, "hang.pid");
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "hangs"), [ID], {
    proxyCommand: `sh -c 'echo $$ > ${pidFile}; echo connecting to %h >&2; exec sleep 300'`,
    extra: ["  ConnectTimeout 2"],
  });
  const target = sshTargetFromConfig(ssm.configPath, ID, {}, defaults);
  expect(target.readyTimeoutMs).toBe(2000);
  const started = Date.now();
  const error = await connectSsh(target).catch((e) => e);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(error.message).toMatch(/no SSH handshake through the ProxyCommand .* which is still running; it said: connecting to i-0123456789abcdef0; it was stopped/);
  const pid = Number(fs.readFileSync(pidFile, "utf8"));
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  expect(alive(pid)).toBe(false);
});

test("an unknown host key through the proxy is refused, naming the instance id", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "unknown"), [ID], { recordKeys: false });
  const error = await connectSsh(sshTargetFromConfig(ssm.configPath, ID, {}, defaults)).catch((e) => e);
  expect(error).toMatchObject({ permanent: true });
  expect(error.message).toContain(`${ssm.knownHostsPath} has no key for ${ID}`);
  expect(error.message).toContain(`record it under ${ID}`);
});

test("StrictHostKeyChecking no / accept-new is refused before anything is spawned", async () => {
  for (const value of ["no", "accept-new"]) {
    const marker = path.join(dir, `spawned-${value}`);
    const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, `weak-${value}`), [ID], { proxyCommand: `touch ${marker}` });
    fs.writeFileSync(ssm.configPath, fs.readFileSync(ssm.configPath, "utf8").replace("StrictHostKeyChecking yes", `StrictHostKeyChecking ${value}`));
    expect(() => sshTargetFromConfig(ssm.configPath, ID, {}, defaults)).toThrow(
      new RegExp(`StrictHostKeyChecking ${value} for ${ID} would accept an unknown or changed host key[\\s\\S]*hint: the driver always checks host keys strictly`),
    );
    expect(fs.existsSync(marker)).toBe(false);
  }
});

test("ProxyJump, one hop: a direct-tcpip channel of the bed's sshd as jump host is the transport", async () => {
  const sshd = bed.sshd!;
  const config = path.join(dir, "jump.config");
  fs.writeFileSync(
    config,
    [
      "Host bastion",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.privateKeyPath}`,
      `  UserKnownHostsFile ${sshd.knownHostsPath}`,
      "Host i-*",
      "  ProxyJump bastion",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.privateKeyPath}`,
      `  UserKnownHostsFile ${sshd.knownHostsPath}`,
      "",
    ].join("\n"),
  );
  const target = sshTargetFromConfig(config, ID, {}, defaults);
  expect(target).toMatchObject({ host: "127.0.0.1", proxyJump: { host: "127.0.0.1", port: sshd.port, username: sshd.user } });
  const session = await connectSsh(target);
  try {
    expect((await session.run("echo jumped")).stdout).toBe("jumped");
  } finally {
    session.close();
  }
});

test("--help says which SSH config applies and that flags win", async () => {
  const help = await runCli(["upgrade", "--help"], bed.env);
  expect(help.code).toBe(0);
  const text = help.stdout.replace(/\s+/g, " ");
  expect(text).toMatch(/--ssh-config <file> OpenSSH client config for the services machine .* default ~\/\.ssh\/config when it exists, `none` for no config\. The --ssh-\* and --known-hosts flags win over it/);
  expect(text).toMatch(/--ssh-host <host> SSH host \(default: the services instance id when the SSH config has a Host\/Match for it with HostName, ProxyCommand or ProxyJump/);
});

test("no --ssh-host and no SSH config that routes the instance: the services machine by its private IP from EC2", async () => {
  const ctx = runbookContext(bed.env, []);
  try {
    const sshd = bed.sshd!;
    const images = await ctx.aws().ec2.send(new DescribeImagesCommand({ MaxResults: 5 }));
    // moto records the private IP asked for; the bed's sshd listens on that loopback address
    const launched = await ctx.aws().ec2.send(
      new RunInstancesCommand({ ImageId: images.Images![0]!.ImageId!, InstanceType: "m5.xlarge", MinCount: 1, MaxCount: 1, PrivateIpAddress: sshd.host }),
    );
    const id = launched.Instances![0]!.InstanceId!;
    ctx.deployment!.servicesInstanceId = id;
    const flags = { user: sshd.user, port: sshd.port, keyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath };
    // an SSH config that routes another host only
    const other = path.join(dir, "other.config");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(other, "Host bastion\n  HostName 192.0.2.10\n  ProxyCommand /bin/false\n");
    bed.aws!.clearCalls();
    for (const configPath of [undefined, other]) {
      ctx.options = { ssh: { ...flags, configPath } } as typeof ctx.options;
      const { target, how } = await servicesSshTarget(ctx);
      expect(target).toMatchObject({ host: sshd.host, port: sshd.port, username: sshd.user });
      expect(how.startsWith(`${sshd.host} (the private IP of ${id} (${configPath ? `no Host/Match in ${configPath} routes ${id}` : "no SSH config"}))`)).toBe(true);
      const session = await connectSsh(target);
      try {
        expect((await session.run("echo by-private-ip")).stdout).toBe("by-private-ip");
      } finally {
        session.close();
      }
    }
    expect(bed.aws!.calls().filter((c) => c.action === "DescribeInstances")).toHaveLength(2);
    // --ssh-host wins over the lookup, and the instance's id is not asked of EC2 for it
    ctx.options = { ssh: { ...flags, host: "localhost" } } as typeof ctx.options;
    bed.aws!.clearCalls();
    expect((await servicesSshTarget(ctx)).how).toMatch(/^localhost \(--ssh-host\)/);
    expect(bed.aws!.calls().filter((c) => c.action === "DescribeInstances")).toHaveLength(0);
  } finally {
    ctx.close();
  }
});
