import { createHmac, randomBytes } from "node:crypto";
import { lookupHostKeys, verifyHostKey } from "../../lib/knownHosts";

const keyA = Buffer.from("key-a-blob");
const keyB = Buffer.from("key-b-blob");
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

test("verdicts: match, mismatch, unknown host, revoked, cert-authority ignored", () => {
  const file = [line("h", keyA), `@revoked ${line("h", keyB)}`, `@cert-authority ${line("g", keyA)}`].join("\n");
  const h = lookupHostKeys(file, "h");
  expect(verifyHostKey(h, keyA)).toEqual({ ok: true });
  expect(verifyHostKey(h, keyB)).toEqual({ ok: false, reason: "revoked" });
  expect(verifyHostKey(h, Buffer.from("other"))).toEqual({ ok: false, reason: "mismatch" });
  expect(verifyHostKey(lookupHostKeys(file, "g"), keyA)).toEqual({ ok: false, reason: "unknown-host" });
});
