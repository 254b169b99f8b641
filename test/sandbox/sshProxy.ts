import * as fs from "node:fs";
import * as path from "node:path";
import type { Sshd } from "./sshd";

/**
 * The operator's SSH setup for "SSH through AWS Session Manager", as the deployment's
 * troubleshooting guide has it: a `Host i-* mi-*` block whose ProxyCommand opens a byte stream
 * to the instance named by %h, in AWS's documented form (docs.aws.amazon.com, "Allow SSH
 * connections through Session Manager"): `aws ssm start-session --target %h --document-name
 * AWS-StartSSHSession --parameters '{"portNumber":["%p"]}'` (the JSON's double quotes must reach
 * the command). The bed's stand-in takes the same arguments, refuses parameters that are not that
 * JSON as the AWS CLI does ("Error parsing parameter '--parameters': Invalid JSON", exit 252), and
 * is a real OpenSSH `ssh -W` to the bed's sshd for the instance ids it knows (others fail as SSM
 * does, TargetNotConnected, exit 254). Host keys are recorded under the instance id, as OpenSSH
 * records them behind a ProxyCommand.
 */
export interface SsmLikeSshConfig {
  /** The config file to pass as --ssh-config. */
  configPath: string;
  /** known_hosts with the bed's host key under each instance id (the config's UserKnownHostsFile). */
  knownHostsPath: string;
  /** The proxy script (ProxyCommand runs it with start-session's arguments). */
  proxyPath: string;
  /** Where the running proxy writes its pid. */
  pidPath: string;
  /** One line per start of the proxy (its arguments). */
  callsPath: string;
}

/** start-session's arguments after the command, as in AWS's documented ProxyCommand. */
export const SSM_ARGS = `--target %h --document-name AWS-StartSSHSession --parameters '{"portNumber":["%p"]}'`;

/** SSM_ARGS for one instance and port, as OpenSSH expands them. */
export const ssmArgs = (id: string, port: number) => SSM_ARGS.replace("%h", id).replace("%p", String(port));

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
      `# stand-in for: aws ssm start-session --target <id> --document-name AWS-StartSSHSession --parameters '{"portNumber":["<port>"]}'`,
      `echo "$*" >> ${path.join(dir, "proxy.calls")}`,
      'if [ "$1" != --target ] || [ "$3" != --document-name ] || [ "$5" != --parameters ]; then echo "usage: aws ssm start-session --target <id> --document-name <doc> --parameters <json>" >&2; exit 252; fi',
      'case "$6" in',
      `  '{"portNumber":["'[0-9]*'"]}') ;;`,
      `  *) echo "Error parsing parameter '--parameters': Invalid JSON: $6" >&2; exit 252;;`,
      "esac",
      'case " ' + instanceIds.join(" ") + ' " in',
      '  *" $2 "*) ;;',
      '  *) echo "An error occurred (TargetNotConnected) when calling the StartSession operation: $2 is not connected." >&2; exit 254;;',
      "esac",
      `echo $$ > ${path.join(dir, "proxy.pid")}`,
      `exec ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${sshd.knownHostsPath} ` +
        `-i ${sshd.privateKeyPath} -p ${sshd.port} -W ${sshd.host}:${sshd.port} ${sshd.user}@${sshd.host}`,
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
      `  ProxyCommand ${options.proxyCommand ?? `${proxyPath} ${SSM_ARGS}`}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.privateKeyPath}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHostsPath}`,
      "  StrictHostKeyChecking yes",
      ...(options.extra ?? []),
      "",
    ].join("\n"),
  );
  return { configPath, knownHostsPath, proxyPath, pidPath: path.join(dir, "proxy.pid"), callsPath: path.join(dir, "proxy.calls") };
}
