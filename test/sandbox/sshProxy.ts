import * as fs from "node:fs";
import * as path from "node:path";
import type { Sshd } from "./sshd";

/**
 * The operator's SSH setup for "SSH through AWS Session Manager", as the deployment's
 * troubleshooting guide has it: a `Host i-* mi-*` block whose ProxyCommand opens a byte stream
 * to the instance named by %h. The bed's stand-in for `aws ssm start-session --target %h
 * --document-name AWS-StartSSHSession --parameters portNumber=%p` is a real OpenSSH `ssh -W` to
 * the bed's sshd, for the instance ids it knows (others fail as SSM does, TargetNotConnected).
 * Host keys are recorded under the instance id, as OpenSSH records them behind a ProxyCommand.
 */
export interface SsmLikeSshConfig {
  /** The config file to pass as --ssh-config. */
  configPath: string;
  /** known_hosts with the bed's host key under each instance id (the config's UserKnownHostsFile). */
  knownHostsPath: string;
  /** The proxy script (ProxyCommand runs it with %h %p). */
  proxyPath: string;
  /** Where the running proxy writes its pid. */
  pidPath: string;
}

export function ssmLikeSshConfig(
  sshd: Sshd,
  dir: string,
  instanceIds: string[],
  options: { extra?: string[]; recordKeys?: boolean; proxyCommand?: string } = {},
): SsmLikeSshConfig {
  fs.mkdirSync(dir, { recursive: true });
  const knownHostsPath = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHostsPath, options.recordKeys === false ? "" : instanceIds.map((id) => `${id} ${sshd.hostPublicKey}\n`).join(""));
  const proxyPath = path.join(dir, "ssm-start-session");
  fs.writeFileSync(
    proxyPath,
    [
      "#!/bin/sh",
      "# stand-in for: aws ssm start-session --target $1 --document-name AWS-StartSSHSession --parameters portNumber=$2",
      'case " ' + instanceIds.join(" ") + ' " in',
      '  *" $1 "*) ;;',
      '  *) echo "An error occurred (TargetNotConnected) when calling the StartSession operation: $1 is not connected." >&2; exit 254;;',
      "esac",
      `echo $$ > ${path.join(dir, "proxy.pid")}`,
      `exec ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${sshd.knownHostsPath} ` +
        `-i ${sshd.privateKeyPath} -p ${sshd.port} -W 127.0.0.1:${sshd.port} ${sshd.user}@127.0.0.1`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const configPath = path.join(dir, "config");
  fs.writeFileSync(
    configPath,
    [
      "# SSH over Session Manager (docs/troubleshooting.md of the deployment)",
      "Host i-* mi-*",
      `  ProxyCommand ${options.proxyCommand ?? `${proxyPath} %h %p`}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.privateKeyPath}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHostsPath}`,
      "  StrictHostKeyChecking yes",
      ...(options.extra ?? []),
      "",
    ].join("\n"),
  );
  return { configPath, knownHostsPath, proxyPath, pidPath: path.join(dir, "proxy.pid") };
}
