import { createHmac } from "node:crypto";

/**
 * Reading OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT", hostfile.c): plain
 * and hashed (`|1|salt|hmac`) host fields, `[host]:port` for non-default ports, comma-separated
 * patterns with `*`/`?` wildcards and `!` negation, names compared lowercased, and the markers:
 * `@revoked` keys are refused; `@cert-authority` lines are recognised but cannot be used (the
 * transport verifies plain host keys, not host certificates), so a host known only through a CA
 * is refused with that reason. Held against `ssh-keygen -F` in the tests.
 */
export interface KnownHostKey {
  type: string;
  /** The key blob, base64, as in the file. */
  key: string;
}

export interface HostKeyLookup {
  /** The name looked up: `host`, `[host]:port`, or HostKeyAlias, lowercased. */
  name: string;
  accepted: KnownHostKey[];
  revoked: KnownHostKey[];
  /** `@cert-authority` lines for the name. */
  authorities: KnownHostKey[];
}

/** The name OpenSSH looks a key up under (sshconnect.c get_hostfile_hostname_ipaddr). */
export function knownHostsLookupName(host: string, port = 22, hostKeyAlias?: string): string {
  if (hostKeyAlias) return hostKeyAlias.toLowerCase();
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** Keys recorded for `name` (see knownHostsLookupName), or for host and port. */
export function lookupHostKeys(knownHosts: string, host: string, port = 22, hostKeyAlias?: string): HostKeyLookup {
  const name = knownHostsLookupName(host, port, hostKeyAlias);
  const result: HostKeyLookup = { name, accepted: [], revoked: [], authorities: [] };
  for (const raw of knownHosts.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    let fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith("@")) {
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key) continue;
    // an unknown marker: OpenSSH skips the line
    if (marker !== undefined && marker !== "@cert-authority" && marker !== "@revoked") continue;
    if (!hostFieldMatches(hosts, name)) continue;
    (marker === "@revoked" ? result.revoked : marker ? result.authorities : result.accepted).push({ type, key });
  }
  return result;
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  let matched = false;
  for (const pattern of field.split(",")) {
    const negated = pattern.startsWith("!");
    if (globMatches((negated ? pattern.slice(1) : pattern).toLowerCase(), name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globMatches(pattern: string, name: string): boolean {
  const regex = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "s");
  return regex.test(name);
}

export type HostKeyRefusal = "unknown-host" | "mismatch" | "other-type" | "revoked" | "cert-authority";

/** The verdict for a key a server presented. */
export function verifyHostKey(lookup: HostKeyLookup, presented: Buffer): { ok: true } | { ok: false; reason: HostKeyRefusal } {
  const blob = presented.toString("base64");
  if (lookup.revoked.some((k) => k.key === blob)) return { ok: false, reason: "revoked" };
  if (lookup.accepted.some((k) => k.key === blob)) return { ok: true };
  if (lookup.accepted.length === 0) return { ok: false, reason: lookup.authorities.length ? "cert-authority" : "unknown-host" };
  const type = keyType(presented);
  return { ok: false, reason: lookup.accepted.some((k) => k.type === type) ? "mismatch" : "other-type" };
}

/** The key type named at the start of a public key blob. */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return "";
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1");
}

const ALGORITHMS: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * Host key algorithms with the recorded types first, as OpenSSH orders them
 * (sshconnect2.c order_hostkeyalgs), so a host with several keys presents the one on record.
 */
export function hostKeyAlgorithms(lookup: HostKeyLookup): string[] {
  const all = Object.values(ALGORITHMS).flat();
  const known = [...new Set(lookup.accepted.flatMap((k) => ALGORITHMS[k.type] ?? []))];
  return [...known, ...all.filter((a) => !known.includes(a))];
}
