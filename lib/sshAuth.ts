import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { UpgradeError } from "./errors";
import type { SshTarget } from "./ssh";

/**
 * Which keys are offered, in OpenSSH's order (sshconnect2.c pubkey_prepare): agent keys that are
 * also IdentityFiles first, then the agent's other keys (not with IdentitiesOnly), then the
 * IdentityFiles the agent does not hold. Each key once (by its public key). Keys are decrypted
 * before anything is spawned: a configured key the passphrase does not open is a permanent error
 * naming the key and the passphrase's variable; OpenSSH's default identity files that cannot be
 * opened are skipped, as `ssh -o BatchMode=yes` skips them.
 */

interface ParsedKey {
  getPublicSSH(): Buffer;
}
interface Ssh2 {
  utils: { parseKey(data: Buffer | string, passphrase?: string): ParsedKey | ParsedKey[] | Error };
  BaseAgent: new () => object;
  OpenSSHAgent: new (socket: string) => {
    getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void;
    sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb: (err: Error | undefined, sig?: Buffer) => void): void;
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ssh2 = (): Ssh2 => require("ssh2") as Ssh2;

export type AuthMethod =
  | { type: "publickey"; username: string; key: Buffer; passphrase?: string }
  | { type: "agent"; username: string; agent: object };

export interface AuthPlan {
  methods: AuthMethod[];
  /** What is offered, for the message when the server accepts none of it. */
  offered: string[];
  /** The keys in the order offered, as OpenSSH prints them (SHA256:…); a file whose public key is not known without its passphrase: its path. */
  fingerprints: string[];
  skipped: string[];
}

const AGENT_TIMEOUT_MS = 5000;

export async function planAuth(target: SshTarget, what: string): Promise<AuthPlan> {
  const username = target.username;
  const secretName = target.passphraseName ?? "the passphrase given";
  const keyError = (key: string, why: string) =>
    new UpgradeError({
      what,
      why: `the SSH key ${key} cannot be used: ${why}`,
      hint: target.passphrase ? `check ${secretName} (ssh-keygen -y -f ${key} asks for it and shows whether it opens the key)` : `set ${secretName} to the key's passphrase, or load the key into ssh-agent`,
      permanent: true,
    });
  const open = (key: string, data: Buffer): Error | undefined => {
    const parsed = ssh2().utils.parseKey(data, target.passphrase);
    if (!(parsed instanceof Error)) return undefined;
    return /encrypted/i.test(parsed.message) && !target.passphrase
      ? new Error(`it is encrypted and ${secretName} is not set`)
      : new Error(`${target.passphrase && /passphrase|decrypt|parse/i.test(parsed.message) ? `${secretName} does not open it` : "it is not a private key ssh2 reads"} (${parsed.message})`);
  };

  // an explicit key (--ssh-key, or a key from a secret): that key only
  if (target.privateKey || target.privateKeyPath) {
    const name = target.privateKeyPath ?? "from the settings";
    let data: Buffer;
    try {
      data = target.privateKey !== undefined ? Buffer.from(target.privateKey) : fs.readFileSync(target.privateKeyPath!);
    } catch (err) {
      throw keyError(name, `it cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    const failed = open(name, data);
    if (failed) throw keyError(name, failed.message);
    return { methods: [{ type: "publickey", username, key: data, passphrase: target.passphrase }], offered: [name], fingerprints: [fingerprintOf(publicBlob(name, data)) ?? name], skipped: [] };
  }

  const files: { path: string; data: Buffer; blob?: string }[] = [];
  for (const file of [...new Set(target.privateKeyPaths ?? [])]) {
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch {
      continue; // OpenSSH skips an identity file it cannot read
    }
    const blob = publicBlob(file, data);
    if (blob && files.some((f) => f.blob === blob)) continue;
    files.push({ path: file, data, blob });
  }

  const socket = target.identityAgent === null ? undefined : (target.identityAgent ?? process.env.SSH_AUTH_SOCK);
  const agentKeys = socket ? await listAgent(socket) : [];
  const preferred: ParsedKey[] = [];
  const others: ParsedKey[] = [];
  const offered: string[] = [];
  for (const key of agentKeys) {
    const blob = key.getPublicSSH().toString("base64");
    const i = files.findIndex((f) => f.blob === blob);
    if (i >= 0) {
      offered.push(`${files[i]!.path} (from ssh-agent)`);
      files.splice(i, 1);
      preferred.push(key);
    } else if (!target.identitiesOnly) others.push(key);
  }
  if (others.length) offered.push(`${others.length} other key(s) of ssh-agent`);
  const methods: AuthMethod[] = [];
  const fingerprints = [...preferred, ...others].map((k) => fingerprintOf(k.getPublicSSH().toString("base64"))!);
  if (preferred.length + others.length > 0) methods.push({ type: "agent", username, agent: orderedAgent(socket!, [...preferred, ...others]) });
  const skipped: string[] = [];
  for (const f of files) {
    const failed = open(f.path, f.data);
    if (failed && !target.defaultKeys) throw keyError(f.path, failed.message);
    if (failed) {
      skipped.push(`${f.path} (${failed.message})`);
      continue;
    }
    offered.push(f.path);
    fingerprints.push(fingerprintOf(f.blob) ?? f.path);
    methods.push({ type: "publickey", username, key: f.data, passphrase: target.passphrase });
  }
  if (methods.length === 0) {
    throw new UpgradeError({
      what,
      why: `there is no SSH key to offer: ${[
        target.privateKeyPaths?.length ? `no readable IdentityFile (${target.privateKeyPaths.join(", ")})` : "no IdentityFile",
        socket ? (agentKeys.length ? "ssh-agent's keys are excluded by IdentitiesOnly" : `ssh-agent at ${socket} has no keys`) : "no ssh-agent (SSH_AUTH_SOCK unset or IdentityAgent none)",
        ...skipped.map((s) => `skipped ${s}`),
      ].join("; ")}`,
      hint: "pass --ssh-key <file>, set IdentityFile for this host, or add the key to ssh-agent",
      permanent: true,
    });
  }
  return { methods, offered, fingerprints, skipped };
}

const fingerprintOf = (blob: string | undefined) =>
  blob === undefined ? undefined : `SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;

/** The public key of an identity file: its .pub, the key itself, or the clear header of an encrypted OpenSSH key. */
function publicBlob(file: string, data: Buffer): string | undefined {
  try {
    const pub = fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/)[1];
    if (pub) return pub;
  } catch {
    // no .pub beside it
  }
  const parsed = ssh2().utils.parseKey(data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key && !(key instanceof Error)) return key.getPublicSSH().toString("base64");
  return openSshHeaderPublicKey(data.toString("utf8"));
}

/** PROTOCOL.key: "openssh-key-v1\0", ciphername, kdfname, kdfoptions, N, then N public keys in clear. */
function openSshHeaderPublicKey(text: string): string | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return undefined;
  const buf = Buffer.from(m[1]!.replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (buf.subarray(0, magic.length).toString("latin1") !== magic) return undefined;
  let at = magic.length;
  const str = () => {
    const len = buf.readUInt32BE(at);
    const s = buf.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return s;
  };
  try {
    str();
    str();
    str();
    at += 4;
    return str().toString("base64");
  } catch {
    return undefined;
  }
}

function listAgent(socket: string): Promise<ParsedKey[]> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve([]), AGENT_TIMEOUT_MS);
    try {
      new (ssh2().OpenSSHAgent)(socket).getIdentities((err, keys) => {
        clearTimeout(timer);
        resolve(err || !keys ? [] : keys);
      });
    } catch {
      clearTimeout(timer);
      resolve([]);
    }
  });
}

/** ssh-agent's keys in the order given (ssh2 offers an agent's keys in getIdentities order). */
function orderedAgent(socket: string, keys: ParsedKey[]): object {
  const { BaseAgent, OpenSSHAgent } = ssh2();
  const real = new OpenSSHAgent(socket);
  class Ordered extends BaseAgent {
    getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void) {
      cb(undefined, keys);
    }
    sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb: (err: Error | undefined, sig?: Buffer) => void) {
      if (typeof options === "function") real.sign(pubKey, data, {}, options as typeof cb);
      else real.sign(pubKey, data, options, cb);
    }
  }
  return new Ordered();
}
