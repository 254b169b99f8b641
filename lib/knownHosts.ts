import { createHmac } from "node:crypto";

/**
 * Reading OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain and hashed
 * (`|1|salt|hmac`) host fields, `[host]:port` for non-default ports, comma-separated patterns with
 * `*`/`?` wildcards and `!` negation, and the `@revoked` marker. `@cert-authority` lines are
 * ignored: we verify plain host keys.
 */
export interface KnownHostKey {
  type: string;
  /** The key blob, base64, as in the file. */
  key: string;
}

export interface HostKeyLookup {
  accepted: KnownHostKey[];
  revoked: KnownHostKey[];
}

export function lookupHostKeys(knownHosts: string, host: string, port = 22): HostKeyLookup {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const result: HostKeyLookup = { accepted: [], revoked: [] };
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
    if (!hosts || !type || !key || marker === "@cert-authority") continue;
    if (!hostFieldMatches(hosts, name)) continue;
    (marker === "@revoked" ? result.revoked : result.accepted).push({ type, key });
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
    if (globMatches(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globMatches(pattern: string, name: string): boolean {
  const regex = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    "i",
  );
  return regex.test(name);
}

/** The verdict for a key a server presented. */
export function verifyHostKey(
  lookup: HostKeyLookup,
  presented: Buffer,
): { ok: true } | { ok: false; reason: "unknown-host" | "mismatch" | "revoked" } {
  const blob = presented.toString("base64");
  if (lookup.revoked.some((k) => k.key === blob)) return { ok: false, reason: "revoked" };
  if (lookup.accepted.length === 0) return { ok: false, reason: "unknown-host" };
  return lookup.accepted.some((k) => k.key === blob) ? { ok: true } : { ok: false, reason: "mismatch" };
}
