import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, sshBannerProbe, startGuarded, waitUntilReady, type ManagedProcess } from "./processes";

/** Debian's OpenSSH server on a loopback port, running as the current user, keys generated per bed. */
export interface Sshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The client's private key (unencrypted, test-only, inside the bed's temp dir). */
  readonly privateKeyPath: string;
  /** A known_hosts file holding this server's host key, for strict host-key checking. */
  readonly knownHostsPath: string;
  /** The server's host public key line ("ssh-ed25519 AAAA..."). */
  readonly hostPublicKey: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/**
 * `listen`: another loopback address and port (e.g. a jump host at 127.0.0.2:2222); default
 * 127.0.0.1 and a free port.
 */
export async function startSshd(dir: string, listen: { host?: string; port?: number } = {}): Promise<Sshd> {
  if (!fs.existsSync(SSHD)) {
    throw new Error(`${SSHD} not found: run \`npm run provision\` (installs openssh-server)`);
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = path.join(dir, "ssh_host_ed25519_key");
  const clientKey = path.join(dir, "id_ed25519");
  keygen(hostKey, "sandbox-host");
  keygen(clientKey, "sandbox-client");
  const authorizedKeys = path.join(dir, "authorized_keys");
  fs.copyFileSync(`${clientKey}.pub`, authorizedKeys);
  fs.chmodSync(authorizedKeys, 0o600);

  const user = os.userInfo().username;
  const host = listen.host ?? "127.0.0.1";
  const port = listen.port ?? (await freePort());
  const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  const knownHostsPath = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHostsPath, `[${host}]:${port} ${hostPublicKey}\n`);

  const config = path.join(dir, "sshd_config");
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${host}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      `AllowUsers ${user}`,
      "StrictModes no",
      "UsePAM no",
      "PrintMotd no",
      // the services simulator and the workflows' hosts find their tools through the caller's PATH
      "PermitUserEnvironment no",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  // Running as root, sshd insists on its privilege-separation directory (normally made by systemd).
  if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const proc = startGuarded({ name: "sshd", command: SSHD, args: ["-D", "-e", "-f", config] });
  await waitUntilReady(proc, sshBannerProbe(port, host));
  return {
    host,
    port,
    user,
    privateKeyPath: clientKey,
    knownHostsPath,
    hostPublicKey,
    process: proc,
    stop: () => proc.stop(),
  };
}

function keygen(file: string, comment: string): void {
  if (fs.existsSync(file)) return;
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], { stdio: "ignore" });
}
