/**
 * Configs of the kinds operators keep (and the corners ssh_config(5) describes), each resolved by
 * the driver and by the real OpenSSH client of this machine (see ssh-config.test.ts). Placeholders:
 * {W} the test's directory, {INC} a directory under ~/.ssh of the passwd home (relative Include),
 * {REC} a recorder that writes its argv (a ProxyCommand stand-in), {KEY} a test key.
 */
export interface OracleCase {
  title: string;
  lines: string[];
  host: string;
  user?: string;
  port?: number;
  env?: Record<string, string>;
}

const SSM = "aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters '{\"portNumber\":[\"%p\"]}'";

export const CASES: OracleCase[] = [
  { title: "Session Manager: Host i-* mi-*, JSON with double quotes", host: "i-0123456789abcdef0", lines: ["Host i-* mi-*", `  ProxyCommand ${SSM}`, "  User ec2-user", "  IdentityFile ~/.ssh/codeocean.pem"] },
  { title: "Session Manager: mi- managed instance", host: "mi-0123456789abcdef0", lines: ["Host i-* mi-*", `  ProxyCommand sh -c "${SSM.replace(/"/g, '\\"')}"`, "  User ec2-user"] },
  { title: "Session Manager form run by both: the JSON reaches the command byte for byte", host: "i-0123456789abcdef0", lines: ["Host i-* mi-*", `  ProxyCommand {REC} ${SSM.replace(/^aws ssm start-session /, "")}`, "  IdentityFile {W}/key"] },
  { title: "Session Manager via sh -c with single-quoted parameters", host: "i-0abc", lines: ["Host i-*", "  ProxyCommand sh -c \"aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters 'portNumber=%p'\""] },
  { title: "first value wins: Host * before Host i-*", host: "i-0abc", lines: ["Host *", "  User nobody", "  Port 2200", "Host i-*", "  User ec2-user", "  Port 22"] },
  { title: "Include config.d/* skips dot files", host: "bastion", lines: ["Include {INC}/config.d/*", "Host *", "  User fallback"] },
  { title: "Include with a glob in a directory part", host: "web", lines: ["Include {INC}/envs/*/config"] },
  { title: "Include as the last line, after Host *: included Host blocks apply", host: "i-0late", lines: ["Host *", "  ServerAliveInterval 30", "Include {INC}/late/*.conf"] },
  { title: "Include nested, ~/ path", host: "nested-host", lines: ["Include ~/.ssh/{INC}/outer.conf"] },
  { title: "Include of an absolute glob", host: "abs-host", lines: ["Include {W}/abs/*.conf"] },
  { title: "Match host against the expanded HostName %h.ec2.internal", host: "i-0abc", lines: ["Host i-*", "  HostName %h.ec2.internal", "Match host *.ec2.internal", "  User matched"] },
  { title: "Match Hostname spelled in another case", host: "i-0abc", lines: ["Host i-*", "  Hostname %h.EC2.Internal", "Match host i-0abc.ec2.internal", "  Port 2201"] },
  { title: "Match !host", host: "i-0abc", lines: ["Match !host bastion", "  User notbastion", "Host *", "  User other"] },
  { title: "? matches exactly one character", host: "i-", lines: ["Host i-?", "  User one-char", "Host *", "  User any"] },
  { title: "ProxyCommand in Host i-*, ProxyJump in Host *: the first obtained", host: "i-0abc", lines: ["Host i-*", "  ProxyCommand {REC} %h %p", "Host *", "  ProxyJump bastion"] },
  { title: "ProxyJump first, ProxyCommand later: ProxyJump", host: "i-0abc", lines: ["Host i-*", "  ProxyJump ops@bastion:2222", "Host *", "  ProxyCommand {REC} %h %p"] },
  { title: "ProxyCommand none for the bastion, Host * ProxyJump bastion", host: "db", lines: ["Host bastion", "  HostName 127.0.0.1", "  ProxyCommand none", "Host *", "  ProxyJump bastion"] },
  { title: "IdentityFile tokens %d %u %h %r %n %p %l %L %i %k %C", host: "Tok.Example", lines: ["Host tok.example", "  HostKeyAlias tok-alias", "  IdentityFile %d/.ssh/%u-%h-%r-%n-%p", "  IdentityFile /keys/%l/%L/%i/%k/%C", "  User deploy", "  Port 2022"] },
  { title: "IdentityFile ${HOME} is the environment's HOME, ~ the passwd home", host: "envhost", lines: ["Host envhost", "  IdentityFile ${HOME}/.ssh/from-env", "  IdentityFile ~/.ssh/from-passwd", "  IdentityFile ${UO_ORACLE_KEYS}/k"], env: { UO_ORACLE_KEYS: "/srv/keys dir" } },
  { title: "IdentityFile quoted path with spaces", host: "spaces", lines: ["Host spaces", "  IdentityFile \"/tmp/my keys/id ed25519\"", "  IdentityFile=~/.ssh/plain"] },
  { title: "IdentityFile duplicate tried once", host: "dup", lines: ["Host dup", "  IdentityFile ~/.ssh/k1", "  IdentityFile ~/.ssh/k1", "Host *", "  IdentityFile ~/.ssh/k1", "  IdentityFile ~/.ssh/k2"] },
  { title: "IdentityFile none", host: "nokey", lines: ["Host nokey", "  IdentityFile none", "  IdentityFile ~/.ssh/after-none"] },
  { title: "no IdentityFile: OpenSSH's default identity files", host: "defaults", lines: ["Host defaults", "  User someone"] },
  { title: "~user in IdentityFile", host: "tildeuser", lines: ["Host tildeuser", "  IdentityFile ~root/.ssh/rootkey"] },
  { title: "HostName in mixed case is lowercased", host: "svc", lines: ["Host svc", "  HostName Services.PROD.Internal"] },
  { title: "HostName an IP address", host: "ip", lines: ["Host ip", "  HostName 10.0.1.5", "  Port 2222"] },
  { title: "a mixed-case name on the command line", host: "MixedCase.Example", lines: ["Host mixedcase.example", "  User lower-matched"] },
  { title: "-l wins over User, and Match user sees it", host: "i-0abc", user: "admin", lines: ["Match user admin", "  Port 2300", "Host i-*", "  User ec2-user"] },
  { title: "-p wins over Port", host: "i-0abc", port: 2400, lines: ["Host i-*", "  Port 2222", "  ProxyCommand {REC} %h %p %r"] },
  { title: "HostKeyAlias in mixed case, %k in ProxyCommand", host: "i-0abc", lines: ["Host i-*", "  HostKeyAlias Services-Prod", "  ProxyCommand {REC} %k %h %n"] },
  { title: "ProxyCommand tokens %n %r %% and a percent sign", host: "I-0ABC", lines: ["Host i-*", "  User ops", "  ProxyCommand {REC} %n %r 100%% %h"] },
  { title: "ProxyCommand with nested quotes and a pipe", host: "i-0abc", lines: ["Host i-*", "  ProxyCommand sh -c 'echo \"%h:%p\" >&2; exec {REC} \"$0\"' arg"] },
  { title: "ProxyCommand=value syntax, keyword in lower case", host: "eq", lines: ["host eq", "  proxycommand={REC} %h %p", "  USER=eqtest"] },
  { title: "Host * !bastion negation", host: "bastion", lines: ["Host * !bastion", "  User not-bastion", "Host *", "  User bastion-user"] },
  { title: "Host pattern list with a comma is one pattern", host: "a", lines: ["Host a,b", "  User comma", "Host *", "  User nocomma"] },
  { title: "quoted Host pattern", host: "quoted", lines: ["Host \"quoted\"", "  User q"] },
  { title: "Match all", host: "anything", lines: ["Match all", "  User everyone"] },
  { title: "Match final: a second pass after HostName", host: "short", lines: ["Host short", "  HostName long.example", "Match final host long.example", "  User final-pass"] },
  { title: "Match exec that succeeds (a local test)", host: "exec-yes", lines: ["Match host exec-yes exec \"test -d {W}\"", "  User exec-ran"] },
  { title: "Match exec that fails", host: "exec-no", lines: ["Match exec \"test -e {W}/absent\"", "  User exec-true", "Host *", "  User exec-false"] },
  { title: "Match originalhost", host: "orig", lines: ["Host orig", "  HostName other.example", "Match originalhost orig", "  Port 2500"] },
  { title: "Match localuser", host: "lu", lines: ["Match localuser {LOCALUSER}", "  User by-localuser"] },
  { title: "tabs, comments, blank lines and Key=Value", host: "ws", lines: ["# comment", "", "Host\tws", "\tUser\t=\twsuser", "  Port=2600 # not a comment?", "  IdentityFile = ~/.ssh/ws"] },
  { title: "UserKnownHostsFile with tokens and ~", host: "kh", lines: ["Host kh", "  UserKnownHostsFile ~/.ssh/known_hosts_%h %d/kh-%r ${HOME}/kh-env", "  User khuser"] },
  { title: "UserKnownHostsFile none", host: "khnone", lines: ["Host khnone", "  UserKnownHostsFile none"] },
  { title: "ConnectTimeout", host: "ct", lines: ["Host ct", "  ConnectTimeout 7"] },
  { title: "ProxyJump user@bastion:2222", host: "i-0abc", lines: ["Host bastion", "  HostName 127.0.0.1", "  User jumpuser", "Host i-*", "  ProxyJump ops@bastion:2222"] },
  { title: "ProxyJump with two hops", host: "inner", lines: ["Host inner", "  ProxyJump first@hop1:2201,hop2", "Host hop1", "  HostName 127.0.0.1", "Host hop2", "  HostName 127.0.0.1", "  Port 2202"] },
  { title: "ProxyJump as an ssh:// URI", host: "uri", lines: ["Host uri", "  ProxyJump ssh://u@jumphost:2203"] },
  { title: "ProxyJump to a numeric address", host: "num", lines: ["Host num", "  ProxyJump 10.0.0.1:2204"] },
  { title: "ProxyJump none for the bastion, Host * ProxyJump bastion", host: "app", lines: ["Host bastion", "  ProxyJump none", "  HostName 127.0.0.1", "Host *", "  ProxyJump bastion"] },
  { title: "IdentitiesOnly and IdentityAgent none", host: "io", lines: ["Host io", "  IdentitiesOnly yes", "  IdentityAgent none", "  IdentityFile ~/.ssh/only"] },
  { title: "a Match host ... exec is skipped when host fails first", host: "other", lines: ["Match host nomatch exec \"touch {W}/exec-ran\"", "  User wrong", "Host *", "  User right"] },
  { title: "Port from a wildcard block and User from an Include", host: "i-0inc", lines: ["Host i-*", "  Include {INC}/user.conf", "  Port 2700"] },
];
