import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { connectSsh } from "../../lib/ssh";
import { planAuth } from "../../lib/sshAuth";
import { sshTargetFromConfig } from "../../lib/sshConfig";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli } from "../sandbox/cli";
import { ssmArgs, ssmLikeSshConfig } from "../sandbox/sshProxy";
import { startSshd, type Sshd } from "../sandbox/sshd";
import { cancelComputations } from "../../stacks/runbooks/codeocean/cancelComputations";
import { runbookContext } from "../sandbox/fleet";
import { servicesSshTarget } from "../../stacks/runbooks/codeocean/cancelComputations";
import { agentTestKeys, alive, bastionListen, openssh, waitGone, willAttemptKeys, writeJumpConfig } from "./sshConfigBed";

// The operator's OpenSSH config against the bed's real sshd, through a real ProxyCommand (an
// OpenSSH `ssh -W` standing in for Session Manager, given AWS's documented arguments with their
// JSON) and a real ProxyJump; where it helps, the real OpenSSH client connects with the same
// config too (BatchMode, loopback only), so the config is known to work for OpenSSH itself.
let bed: Sandbox;
let dir: string;
const ID = "i-0123456789abcdef0";
const defaults = { user: "ec2-user", port: 22 };

beforeAll(async () => {
  bed = await startSandbox({ pulumi: false });
  dir = path.join(bed.dir, "ssh-config");
}, 120_000);
afterAll(() => bed?.stop());

test("the instance id through the Session Manager ProxyCommand, JSON double quotes intact: host key under the id, User/IdentityFile/UserKnownHostsFile from the config", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "ok"), [ID]);
  expect(fs.readFileSync(ssm.configPath, "utf8")).toContain(`--parameters '{"portNumber":["%p"]}'`);
  const target = sshTargetFromConfig(ssm.configPath, ID, {}, defaults);
  expect(target).toMatchObject({ host: ID, port: 22, username: bed.sshd!.user, proxyCommand: `${ssm.proxyPath} ${ssmArgs(ID, 22)}`, knownHostsPaths: [ssm.knownHostsPath] });
  const session = await connectSsh(target);
  try {
    expect((await session.run("echo through-proxy")).stdout).toBe("through-proxy");
  } finally {
    session.close();
  }
  // the proxy (an `ssh -W`) is gone once the session is closed
  const pid = Number(fs.readFileSync(ssm.pidPath, "utf8"));
  await waitGone(pid);
  expect(alive(pid)).toBe(false);
  // the stand-in got the JSON as one argument, double quotes and all (it refuses anything else);
  // the calls file holds its argv joined by spaces, so the shell's single quotes are gone
  const argv = ssmArgs(ID, 22).replace(/'/g, "");
  expect(argv).toContain(`--parameters {"portNumber":["22"]}`);
  expect(fs.readFileSync(ssm.callsPath, "utf8").trim().split("\n")).toEqual([argv]);
  // the real OpenSSH client, same config: the same command line reaches the stand-in
  expect(openssh(ssm.configPath, ID, "echo via-openssh")).toMatchObject({ code: 0, stdout: "via-openssh" });
  expect(fs.readFileSync(ssm.callsPath, "utf8").trim().split("\n")).toEqual([argv, argv]);
  // flags win over the config
  expect(sshTargetFromConfig(ssm.configPath, ID, { user: "root", port: 2222 }, defaults)).toMatchObject({ username: "root", port: 2222, proxyCommand: `${ssm.proxyPath} ${ssmArgs(ID, 2222)}` });
});

test("the JSON's quotes stripped (the old bug's command line): the stand-in refuses it as the AWS CLI does", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "stripped"), [ID], { proxyCommand: `${path.join(dir, "stripped", "ssm-start-session")} --target %h --document-name AWS-StartSSHSession --parameters {portNumber:[%p]}` });
  const error = await connectSsh(sshTargetFromConfig(ssm.configPath, ID, {}, defaults)).catch((e) => e);
  expect(error.message).toMatch(/exited with code 252 before the SSH handshake finished; it said: Error parsing parameter '--parameters': Invalid JSON: \{portNumber:\[22\]\}/);
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
  expect(target.proxyCommand).toBe(`${ssm.proxyPath} ${ssmArgs(ID, 22)}`);
  const session = await connectSsh(target);
  session.close();
});

test("hashed known_hosts (ssh-keygen -H) and a mixed-case HostName or HostKeyAlias: connects, as OpenSSH does", async () => {
  const sub = path.join(dir, "hashed");
  const name = "services.internal";
  const ssm = ssmLikeSshConfig(bed.sshd!, sub, [name], { recordKeys: false });
  fs.writeFileSync(ssm.knownHostsPath, `${name} ${bed.sshd!.hostPublicKey}\nservices-prod ${bed.sshd!.hostPublicKey}\n`);
  execFileSync("ssh-keygen", ["-H", "-f", ssm.knownHostsPath], { stdio: "ignore" });
  const hashed = fs.readFileSync(ssm.knownHostsPath, "utf8");
  expect(hashed).not.toContain(name);
  expect(hashed.split("\n").filter(Boolean).every((l) => l.startsWith("|1|"))).toBe(true);
  const base = fs.readFileSync(ssm.configPath, "utf8").replace("Host i-* mi-*", "Host services");
  const variants = {
    hostName: base.replace("Host services", "Host services\n  HostName Services.INTERNAL"),
    alias: base.replace("Host services", "Host services\n  HostName services.internal\n  HostKeyAlias Services-PROD"),
  };
  for (const [kind, text] of Object.entries(variants)) {
    const config = path.join(sub, `config-${kind}`);
    fs.writeFileSync(config, text);
    const target = sshTargetFromConfig(config, "services", {}, defaults);
    expect(target.host).toBe(name);
    const session = await connectSsh(target);
    try {
      expect((await session.run("echo hashed-ok")).stdout).toBe("hashed-ok");
    } finally {
      session.close();
    }
    expect(openssh(config, "services", "echo via-openssh")).toMatchObject({ code: 0, stdout: "via-openssh" });
  }
});

test("a ProxyCommand that exits at once: its exit code and stderr are the error", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "exits"), [ID]);
  const target = sshTargetFromConfig(ssm.configPath, "i-0ffffffffffffffff", {}, defaults);
  const error = await connectSsh(target).catch((e) => e);
  expect(error).toBeInstanceOf(UpgradeError);
  expect(error.message).toContain(`ProxyCommand \`${path.join(dir, "exits", "ssm-start-session")} ${ssmArgs("i-0ffffffffffffffff", 22)}\` exited with code 254 before the SSH handshake finished`);
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
  await waitGone(pid);
  expect(alive(pid)).toBe(false);
});

test("an unknown host key through the proxy is refused, naming the instance id", async () => {
  const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, "unknown"), [ID], { recordKeys: false });
  const error = await connectSsh(sshTargetFromConfig(ssm.configPath, ID, {}, defaults)).catch((e) => e);
  expect(error).toMatchObject({ permanent: true });
  expect(error.message).toContain(`${ssm.knownHostsPath} has no key for ${ID}`);
  expect(error.message).toContain(`record it under ${ID}`);
});

test("StrictHostKeyChecking no / accept-new is refused as policy before anything is spawned", async () => {
  for (const value of ["no", "accept-new"]) {
    const marker = path.join(dir, `spawned-${value}`);
    const ssm = ssmLikeSshConfig(bed.sshd!, path.join(dir, `weak-${value}`), [ID], { proxyCommand: `touch ${marker}` });
    fs.writeFileSync(ssm.configPath, fs.readFileSync(ssm.configPath, "utf8").replace("StrictHostKeyChecking yes", `StrictHostKeyChecking ${value}`));
    expect(() => sshTargetFromConfig(ssm.configPath, ID, {}, defaults)).toThrow(
      new RegExp(`StrictHostKeyChecking ${value} applies to ${ID} and would accept an unknown or changed host key; the driver's policy is to check host keys strictly[\\s\\S]*hint: record the host's key`),
    );
    expect(fs.existsSync(marker)).toBe(false);
  }
});

test("ProxyJump user@bastion:2222: a second sshd as jump host, its key checked under [127.0.0.2]:2222, the target through its direct-tcpip channel", async () => {
  const sshd = bed.sshd!;
  let bastion: Sshd | undefined;
  try {
    const listen = await bastionListen();
    bastion = await startSshd(path.join(dir, "bastion-sshd"), listen);
    const config = path.join(dir, "jump.config");
    writeJumpConfig(config, bastion, sshd);
    const target = sshTargetFromConfig(config, ID, {}, defaults);
    // the spec's user and port win over the bastion's block, as with `ssh -l user -p 2222 bastion`
    expect(target).toMatchObject({ host: sshd.host, port: sshd.port, proxyJump: { host: bastion.host, port: bastion.port, username: bastion.user } });
    expect(target.proxyJump!.proxyJump).toBeUndefined();
    const session = await connectSsh(target);
    try {
      expect((await session.run("echo jumped")).stdout).toBe("jumped");
    } finally {
      session.close();
    }
    expect(openssh(config, ID, "echo via-openssh")).toMatchObject({ code: 0, stdout: "via-openssh" });
    // the jump host's key is checked too: with another key recorded for it, refused, naming it
    fs.writeFileSync(bastion.knownHostsPath, `[${bastion.host}]:${bastion.port} ${sshd.hostPublicKey}\n`);
    const error = await connectSsh(target).catch((e) => e);
    expect(error).toMatchObject({ permanent: true });
    expect(error.message).toContain(`does not match the one recorded for [${bastion.host}]:${bastion.port}`);
  } finally {
    await bastion?.stop();
  }
});

test("a wrong key passphrase through the ProxyCommand: fails at once, no retry, naming the key and UPGRADE_SSH_KEY_PASSPHRASE, nothing spawned; a key the host refuses: one attempt, named as authentication", async () => {
  const sub = path.join(dir, "passphrase");
  fs.mkdirSync(sub, { recursive: true });
  const key = path.join(sub, "id_encrypted");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "the-right-one", "-f", key]);
  const ssm = ssmLikeSshConfig(bed.sshd!, sub, [ID], { extra: [] });
  fs.writeFileSync(ssm.configPath, fs.readFileSync(ssm.configPath, "utf8").replace(`IdentityFile ${bed.sshd!.privateKeyPath}`, `IdentityFile ${key}`));
  const ctx = runbookContext(bed.env, []);
  const events: string[] = [];
  ctx.emit = ((e: { message?: string }) => void events.push(e.message ?? "")) as typeof ctx.emit;
  ctx.deployment!.servicesInstanceId = ID;
  try {
    for (const passphrase of ["a-wrong-one", undefined]) {
      ctx.options = { codeOcean: { servicesPort: 8300, servicesTimeoutMs: 5000, ssh: { configPath: ssm.configPath, passphrase } } } as typeof ctx.options;
      const error = await cancelComputations(ctx).catch((e) => e);
      expect(error).toBeInstanceOf(UpgradeError);
      expect(error.permanent).toBe(true);
      expect(error.message).toContain(`the SSH key ${key} cannot be used: `);
      expect(error.message).toMatch(passphrase ? /UPGRADE_SSH_KEY_PASSPHRASE does not open it/ : /it is encrypted and UPGRADE_SSH_KEY_PASSPHRASE is not set/);
      expect(error.message).not.toContain("a-wrong-one");
      expect(error.message).not.toMatch(/no SSH handshake|still running/);
      // one attempt: no retry announced, and the ProxyCommand never started
      expect(events.filter((m) => /retrying/.test(m))).toEqual([]);
      expect(fs.existsSync(ssm.callsPath)).toBe(false);
    }
    // a key the host does not accept, through the same ProxyCommand: one attempt, named as authentication
    const stranger = path.join(sub, "id_stranger");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    fs.writeFileSync(ssm.configPath, fs.readFileSync(ssm.configPath, "utf8").replace(`IdentityFile ${key}`, `IdentityFile ${stranger}`));
    ctx.options = { codeOcean: { servicesPort: 8300, servicesTimeoutMs: 5000, ssh: { configPath: ssm.configPath } } } as typeof ctx.options;
    const error = await cancelComputations(ctx).catch((e) => e);
    expect(error).toMatchObject({ permanent: true });
    expect(error.message).toMatch(new RegExp(`${bed.sshd!.user} was not let in \\(All configured authentication methods failed\\); offered: ${stranger}`));
    expect(error.message).not.toMatch(/no SSH handshake|still running/);
    expect(fs.readFileSync(ssm.callsPath, "utf8").trim().split("\n")).toHaveLength(1);
    expect(events.filter((m) => /retrying/.test(m))).toEqual([]);
  } finally {
    ctx.close();
  }
});

test("keys in OpenSSH's order (ssh -v's \"Will attempt key\" list): the agent's IdentityFiles, its other keys, the other IdentityFiles; each key once", async () => {
  const sshd = bed.sshd!;
  const sub = path.join(dir, "agent");
  // the bed's authorized key (both), as an IdentityFile the agent also holds, and a second copy of it
  const { fileOnly, agentOnly, both, copy } = agentTestKeys(sub, sshd);
  const socket = path.join(sub, "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
  try {
    for (let i = 0; i < 50 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
    const agentEnv = { ...process.env, SSH_AUTH_SOCK: socket };
    execFileSync("ssh-add", [agentOnly, both], { env: agentEnv, stdio: "ignore" });
    const config = path.join(sub, "config");
    fs.writeFileSync(config, ["Host agent-test", `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.user}`, `  IdentityFile ${fileOnly}`, `  IdentityFile ${both}`, `  IdentityFile ${copy}`, `  IdentityAgent ${socket}`, `  UserKnownHostsFile ${sshd.knownHostsPath}`, ""].join("\n"));
    // OpenSSH's list, with a key listed twice (the copy) kept once
    const attempts = willAttemptKeys(config, "agent-test");
    expect(attempts.length).toBe(4);
    const target = sshTargetFromConfig(config, "agent-test", {}, defaults);
    const plan = await planAuth(target, "connect");
    expect(plan.fingerprints).toEqual([...new Set(attempts)]);
    expect(plan.offered).toEqual([`${both} (from ssh-agent)`, "1 other key(s) of ssh-agent", fileOnly]);
    const session = await connectSsh(target);
    try {
      expect((await session.run("echo agent-ok")).stdout).toBe("agent-ok");
    } finally {
      session.close();
    }
    // IdentitiesOnly: the agent's other key is not offered (OpenSSH's list shrinks the same way)
    fs.appendFileSync(config, "  IdentitiesOnly yes\n");
    const onlyAttempts = willAttemptKeys(config, "agent-test");
    expect((await planAuth(sshTargetFromConfig(config, "agent-test", {}, defaults), "connect")).fingerprints).toEqual([...new Set(onlyAttempts)]);
  } finally {
    agent.kill();
  }
});

test("--help says which SSH config applies and that flags win", async () => {
  const help = await runCli(["upgrade", "--help"], bed.env);
  expect(help.code).toBe(0);
  const text = help.stdout.replace(/\s+/g, " ");
  expect(text).toMatch(/--ssh-config <file> OpenSSH client config for the services machine, resolved by OpenSSH itself \(`ssh -G`.* default ~\/\.ssh\/config when it exists, `none` for no config\. The --ssh-\* and --known-hosts flags win over it/);
  expect(text).toMatch(/--ssh-key <file> SSH private key file, the only key offered \(default: as OpenSSH offers them, ssh-agent's keys, then the config's IdentityFile or ~\/\.ssh\/id_\*\)/);
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
      ctx.options = { codeOcean: { ssh: { ...flags, configPath } } } as typeof ctx.options;
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
    ctx.options = { codeOcean: { ssh: { ...flags, host: "localhost" } } } as typeof ctx.options;
    bed.aws!.clearCalls();
    expect((await servicesSshTarget(ctx)).how).toMatch(/^localhost \(--ssh-host\)/);
    expect(bed.aws!.calls().filter((c) => c.action === "DescribeInstances")).toHaveLength(0);
  } finally {
    ctx.close();
  }
});
