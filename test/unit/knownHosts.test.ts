import { createHmac, randomBytes } from "node:crypto";
import { hostKeyAlgorithms, knownHostsLookupName, lookupHostKeys, verifyHostKey } from "../../lib/knownHosts";

/** A key blob as the wire has it: string type, then the key's parts. */
const blob = (type: string, body: string) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(type.length);
  return Buffer.concat([len, Buffer.from(type), Buffer.from(body)]);
};
const keyA = blob("ssh-ed25519", "key-a");
const keyB = blob("ssh-ed25519", "key-b");
const line = (hosts: string, key: Buffer) => `${hosts} ssh-ed25519 ${key.toString("base64")}`;

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

test("plain host on port 22 and [host]:port on other ports", () => {
  const file = [line("services.internal", keyA), line("[10.0.0.5]:2222", keyB)].join("\n");
  expect(lookupHostKeys(file, "services.internal").accepted).toHaveLength(1);
  expect(lookupHostKeys(file, "services.internal", 2222).accepted).toHaveLength(0);
  expect(lookupHostKeys(file, "10.0.0.5", 2222).accepted[0]?.key).toBe(keyB.toString("base64"));
  expect(lookupHostKeys(file, "10.0.0.5").accepted).toHaveLength(0);
});

test("hashed entries (HashKnownHosts yes) match only their host", () => {
  const file = [line(hashed("[127.0.0.1]:2200"), keyA), "# comment", "", line(hashed("other"), keyB)].join("\n");
  expect(lookupHostKeys(file, "127.0.0.1", 2200).accepted.map((k) => k.key)).toEqual([keyA.toString("base64")]);
  expect(lookupHostKeys(file, "127.0.0.1").accepted).toHaveLength(0);
});

test("patterns: lists, wildcards, negation", () => {
  const file = line("*.prod.internal,!bastion.prod.internal,10.1.?.7", keyA);
  expect(lookupHostKeys(file, "svc.prod.internal").accepted).toHaveLength(1);
  expect(lookupHostKeys(file, "bastion.prod.internal").accepted).toHaveLength(0);
  expect(lookupHostKeys(file, "10.1.3.7").accepted).toHaveLength(1);
  expect(lookupHostKeys(file, "10.1.33.7").accepted).toHaveLength(0);
});

test("verdicts: match, mismatch, another type, unknown host, revoked, known only through a CA", () => {
  const file = [line("h", keyA), `@revoked ${line("h", keyB)}`, `@cert-authority ${line("g", keyA)}`].join("\n");
  const h = lookupHostKeys(file, "h");
  expect(verifyHostKey(h, keyA)).toEqual({ ok: true });
  expect(verifyHostKey(h, keyB)).toEqual({ ok: false, reason: "revoked" });
  expect(verifyHostKey(h, blob("ssh-ed25519", "other"))).toEqual({ ok: false, reason: "mismatch" });
  expect(verifyHostKey(h, blob("ecdsa-sha2-nistp256", "other"))).toEqual({ ok: false, reason: "other-type" });
  expect(verifyHostKey(lookupHostKeys(file, "g"), keyA)).toEqual({ ok: false, reason: "cert-authority" });
  expect(verifyHostKey(lookupHostKeys(file, "nobody"), keyA)).toEqual({ ok: false, reason: "unknown-host" });
});

test("names are looked up lowercased (OpenSSH lowercases HostName and HostKeyAlias); the recorded types are negotiated first", () => {
  expect(knownHostsLookupName("Services.Internal")).toBe("services.internal");
  expect(knownHostsLookupName("Services.Internal", 2222)).toBe("[services.internal]:2222");
  expect(knownHostsLookupName("h", 2222, "Prod-Alias")).toBe("prod-alias");
  const file = [line(hashed("services.internal"), keyA), `services.internal ssh-rsa ${keyB.toString("base64")}`].join("\n");
  expect(lookupHostKeys(file, "SERVICES.internal").accepted).toHaveLength(2);
  const rsaOnly = lookupHostKeys(`h ssh-rsa ${keyB.toString("base64")}`, "h");
  expect(hostKeyAlgorithms(rsaOnly).slice(0, 3)).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  expect(hostKeyAlgorithms(rsaOnly)).toContain("ssh-ed25519");
});
