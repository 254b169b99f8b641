import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { Sshd } from "../sandbox/sshd";

/** Helpers and fixture builders of ssh-config.test.ts: the real OpenSSH client, a jump host's config, keys for ssh-agent. */

/** The real OpenSSH client with the same config: what the operator's `ssh` does. */
export function openssh(config: string, name: string, command: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("ssh", ["-F", config, "-o", "BatchMode=yes", name, command], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

/** The fingerprints OpenSSH will offer, in its order (ssh -v's "Will attempt key" list). */
export function willAttemptKeys(config: string, name: string): string[] {
  const v = spawnSync("ssh", ["-v", "-F", config, "-o", "BatchMode=yes", name, "true"], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "ignore", "pipe"] });
  return v.stderr.split(/\r?\n/).map((l) => /Will attempt key: .* (SHA256:\S+)/.exec(l)?.[1]).filter((f): f is string => f !== undefined);
}

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Waits up to 5 s for the process to be gone. */
export async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

/** 127.0.0.2:2222 for the jump host when free (any 127/8 address is loopback), else a free port. */
export async function bastionListen(): Promise<{ host: string; port: number }> {
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer().once("error", () => resolve(false));
    server.listen(2222, "127.0.0.2", () => server.close(() => resolve(true)));
  });
  return { host: "127.0.0.2", port: free ? 2222 : await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.2", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  }) };
}

/** An SSH config whose `i-*` hosts are the bed's sshd, reached through `bastion` by ProxyJump user@bastion:port. */
export function writeJumpConfig(config: string, bastion: Sshd, sshd: Sshd): void {
  fs.writeFileSync(
    config,
    [
      "Host bastion",
      `  HostName ${bastion.host}`,
      `  IdentityFile ${bastion.privateKeyPath}`,
      `  UserKnownHostsFile ${bastion.knownHostsPath}`,
      "  User nobody-would-log-in-as-this",
      "Host i-*",
      `  ProxyJump ${bastion.user}@bastion:${bastion.port}`,
      `  HostName ${sshd.host}`,
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.privateKeyPath}`,
      `  UserKnownHostsFile ${sshd.knownHostsPath}`,
      "",
    ].join("\n"),
  );
}

/**
 * Keys for the ssh-agent test in `sub`: fileOnly and agentOnly (new, not authorized), both (the
 * bed's authorized key, as an IdentityFile the agent also holds) and copy (a second copy of it).
 */
export function agentTestKeys(sub: string, sshd: Sshd): { fileOnly: string; agentOnly: string; both: string; copy: string } {
  fs.mkdirSync(sub, { recursive: true });
  const keygen = (name: string) => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path.join(sub, name)]);
    return path.join(sub, name);
  };
  const fileOnly = keygen("file-only");
  const agentOnly = keygen("agent-only");
  const both = path.join(sub, "both");
  const copy = path.join(sub, "both-copy");
  for (const f of [both, copy]) {
    fs.copyFileSync(sshd.privateKeyPath, f);
    fs.copyFileSync(`${sshd.privateKeyPath}.pub`, `${f}.pub`);
    fs.chmodSync(f, 0o600);
  }
  return { fileOnly, agentOnly, both, copy };
}
