import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { knownHostsLookupName, lookupHostKeys } from "../../lib/knownHosts";

// known_hosts lookups held against OpenSSH's own: `ssh-keygen -F <name> -f <file>` lists the lines
// OpenSSH matches for a name (hostfile.c), plain or hashed (`ssh-keygen -H` hashes a copy).
let dir: string;
const keys: string[] = [];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-known-hosts-"));
  for (let i = 0; i < 12; i++) {
    const file = path.join(dir, `k${i}`);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
    keys.push(fs.readFileSync(`${file}.pub`, "utf8").split(" ").slice(0, 2).join(" "));
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const HOSTS = [
  "services.internal",
  "[10.0.0.5]:2222",
  "*.prod.internal,!bastion.prod.internal",
  "10.1.?.7",
  "Services-Prod",
  "i-0123456789abcdef0",
  "[i-0123456789abcdef0]:2222",
  "MixedCase.Example,other.example",
  "[127.0.0.1]:2200",
  "*",
];
const NAMES = ["services.internal", "[10.0.0.5]:2222", "10.0.0.5", "svc.prod.internal", "bastion.prod.internal", "10.1.3.7", "10.1.33.7", "services-prod", "i-0123456789abcdef0", "[i-0123456789abcdef0]:2222", "mixedcase.example", "[127.0.0.1]:2200", "unlisted"];

/** The key of each line ssh-keygen -F reports for name. */
function sshKeygenFinds(file: string, name: string): string[] {
  const r = spawnSync("ssh-keygen", ["-F", name, "-f", file], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/^@\S+ /, "").split(" ").slice(1, 3).join(" "));
}

test.each(["plain", "hashed"])("%s known_hosts: the driver matches the lines ssh-keygen -F matches, for every name", (kind) => {
  const file = path.join(dir, `known_hosts_${kind}`);
  // the last key is @revoked for every host, one line is @cert-authority: both are matched by name
  const lines = HOSTS.map((h, i) => `${h} ${keys[i]}`);
  lines.push(`@cert-authority *.prod.internal ${keys[10]}`, `@revoked services.internal ${keys[11]}`);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  if (kind === "hashed") execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
  const text = fs.readFileSync(file, "utf8");
  if (kind === "hashed") expect(text).toMatch(/^\|1\|/);
  for (const name of NAMES) {
    const l = lookupHostKeys(text, name.replace(/^\[(.*)\]:\d+$/, "$1"), Number(/:(\d+)$/.exec(name)?.[1] ?? 22));
    expect(l.name).toBe(knownHostsLookupName(name.replace(/^\[(.*)\]:\d+$/, "$1"), Number(/:(\d+)$/.exec(name)?.[1] ?? 22)));
    const ours = [...l.accepted, ...l.authorities, ...l.revoked].map((k) => `${k.type} ${k.key}`).sort();
    expect({ name, keys: ours }).toEqual({ name, keys: sshKeygenFinds(file, name).sort() });
  }
});
