import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { connectSsh, type SshTarget } from "../../lib/ssh";
import { startSandbox, type Sandbox } from "../sandbox";

// Debian's OpenSSH server on loopback; the client checks host keys strictly.
let bed: Sandbox;
let target: SshTarget;

beforeAll(async () => {
  bed = await startSandbox({ aws: false, pulumi: false });
  const sshd = bed.sshd!;
  target = {
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    privateKeyPath: sshd.privateKeyPath,
    knownHostsPath: sshd.knownHostsPath,
  };
});
afterAll(() => bed?.stop());

test("connects with strict host-key verification and runs a command", async () => {
  const session = await connectSsh(target);
  try {
    const result = await session.run("echo hello from $(id -un); exit 7");
    expect(result.stdout).toBe(`hello from ${bed.sshd!.user}`);
    expect(result.code).toBe(7);
  } finally {
    session.close();
  }
});

test("a host key that does not match known_hosts is refused", async () => {
  const otherKey = path.join(bed.dir, "other_host_key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
  const wrong = path.join(bed.dir, "known_hosts_wrong");
  const otherPub = fs.readFileSync(`${otherKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
  fs.writeFileSync(wrong, `[127.0.0.1]:${bed.sshd!.port} ${otherPub}\n`);
  const attempt = connectSsh({ ...target, knownHostsPath: wrong });
  await expect(attempt).rejects.toThrow(UpgradeError);
  await expect(attempt).rejects.toMatchObject({ permanent: true, message: expect.stringMatching(/does not match/) });
});

test("a host missing from known_hosts is refused, not trusted on first use", async () => {
  const empty = path.join(bed.dir, "known_hosts_empty");
  fs.writeFileSync(empty, "");
  await expect(connectSsh({ ...target, knownHostsPath: empty })).rejects.toThrow(/has no key for \[127\.0\.0\.1\]:/);
});

test("a wrong client key fails authentication with a hint", async () => {
  const stranger = path.join(bed.dir, "stranger_key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
  await expect(connectSsh({ ...target, privateKeyPath: stranger })).rejects.toMatchObject({
    permanent: true,
    hint: expect.stringMatching(/--ssh-key/),
  });
});
