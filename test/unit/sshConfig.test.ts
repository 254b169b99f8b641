import * as os from "node:os";
import { parseJump } from "../../lib/sshConfig";
import { expandProxyCommand, expandTokens, tildeExpand } from "../../lib/sshTokens";

// The pure parts of resolving an SSH config: OpenSSH's expansions (misc.c tilde_expand,
// vdollar_percent_expand) and ProxyJump specs. What OpenSSH itself resolves (ssh -G) is held
// against the real client in test/oracle.

const me = os.userInfo();
const savedHome = process.env.HOME;
afterEach(() => {
  process.env.HOME = savedHome;
});

test("~ is the passwd home whatever $HOME says; ~user that user's; other paths unchanged", () => {
  process.env.HOME = "/nowhere";
  expect(tildeExpand("~/.ssh/k")).toBe(`${me.homedir}/.ssh/k`);
  expect(tildeExpand("~")).toBe(`${me.homedir}/`);
  expect(tildeExpand("~//x")).toBe(`${me.homedir}/x`);
  expect(tildeExpand(`~${me.username}/k`)).toBe(`${me.homedir}/k`);
  expect(tildeExpand("/abs/~/k")).toBe("/abs/~/k");
  expect(() => tildeExpand("~no-such-user-uo/k")).toThrow(/~no-such-user-uo names no user of this machine/);
});

test("tokens and ${VAR} in one pass; unknown tokens, a lone % and unset variables are errors naming the keyword", () => {
  process.env.UO_TEST_VAR = "%h-literal";
  const tokens = { h: "host", p: "22" };
  expect(expandTokens("%h:%p 100%% ${UO_TEST_VAR}", tokens, "IdentityFile", { dollar: true })).toBe("host:22 100% %h-literal");
  expect(expandTokens("${UO_TEST_VAR}", tokens, "ProxyCommand")).toBe("${UO_TEST_VAR}");
  expect(() => expandTokens("%C", tokens, "ProxyCommand")).toThrow(/ProxyCommand "%C" uses the token %C, which OpenSSH does not expand there[\s\S]*hint: use one of %h %p or %%/);
  expect(() => expandTokens("50%", tokens, "ProxyCommand")).toThrow(/uses a lone %/);
  expect(() => expandTokens("${UO_UNSET_VAR_X}/k", tokens, "IdentityFile", { dollar: true })).toThrow(/uses \$\{UO_UNSET_VAR_X\}, which is not set/);
  delete process.env.UO_TEST_VAR;
});

test("ProxyCommand: %h %k %n %p %r %%, quoting untouched", () => {
  const c = { host: "i-0abc", hostArg: "I-0ABC", port: 2222, user: "ec2-user", keyAlias: "services" };
  expect(expandProxyCommand(`aws ssm start-session --target %h --parameters '{"portNumber":["%p"]}' # %n %r %k 100%%`, c)).toBe(
    `aws ssm start-session --target i-0abc --parameters '{"portNumber":["2222"]}' # I-0ABC ec2-user services 100%`,
  );
});

test("ProxyJump specs", () => {
  expect(parseJump("bastion")).toEqual({ host: "bastion" });
  expect(parseJump("ops@bastion:2222")).toEqual({ user: "ops", host: "bastion", port: 2222 });
  expect(parseJump("ssh://ops@[2001:db8::1]:22")).toEqual({ user: "ops", host: "2001:db8::1", port: 22 });
  expect(() => parseJump("a:b:c")).toThrow(/is not \[user@\]host\[:port\]/);
});
