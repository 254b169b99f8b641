import { check, diff } from "../../workflows/utilitarian/provider";
import { fingerprintOf, parseServiceConfig, parseServiceSettings } from "../../workflows/utilitarian/settings";

const settings = (version: string, extra: Record<string, unknown> = {}) => ({
  version,
  ssh: { host: "10.0.0.5", user: "ops", privateKey: "KEY" },
  compose: { projectDir: "/srv/utilitarian" },
  database: { host: "db", name: "utilitarian", user: "utilitarian", password: "PW" },
  backups: { dir: "/var/backups/utilitarian" },
  ...extra,
});

test("defaults are the vendor docs' names", () => {
  const parsed = parseServiceSettings(settings("2.0.0"));
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  expect(parsed.settings.services).toEqual({ api: "utilitarian_api", beat: "utilitarian-beat", workers: ["utilitarian-worker"], dependents: ["utilitarian_poster", "dlms_processor", "dlms_udp_server"] });
  expect(parsed.settings.image.repository).toBe("quay.io/pwit/utilitarian");
  expect(parsed.settings.compose).toMatchObject({ files: ["docker-compose.yml"], command: "docker compose", env: {} });
  expect(parsed.settings.database.port).toBe(5432);
});

test("invalid settings name the key", () => {
  const parsed = parseServiceConfig({ ...settings("2.0"), kind: "utilitarian", ssh: { host: "h", user: "u" } }, "upgrade-orchestrator:systems.u");
  expect("issues" in parsed && parsed.issues.map((i) => i.key)).toEqual(
    expect.arrayContaining(["upgrade-orchestrator:systems.u.version", "upgrade-orchestrator:systems.u.ssh", "upgrade-orchestrator:systems.u.database.passwordConfig"]),
  );
});

test("check lists the services whose image changes", async () => {
  const result = await check({ version: "1.0.0" }, settings("2.0.0"));
  expect(result.failures).toBeUndefined();
  expect(result.inputs.imageChanges).toEqual([
    "utilitarian_api: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-beat: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-worker: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
  ]);
});

test("a downgrade is refused naming the backup to restore instead; the password is not in the message", async () => {
  const olds = { version: "2.0.0", backup: { path: "/var/backups/utilitarian/utilitarian-1.0.0-to-2.0.0-20261125T120000Z.dump", sha256: "ab" } };
  await expect(diff(olds, settings("1.0.0"))).rejects.toThrow(
    /2\.0\.0 → 1\.0\.0 is a downgrade.*restore the backup taken before the upgrade to 2\.0\.0: \/var\/backups\/utilitarian\/utilitarian-1\.0\.0-to-2\.0\.0-20261125T120000Z\.dump \(PGPASSWORD=… pg_restore --clean --if-exists --no-owner -h db -p 5432 -U utilitarian -d utilitarian/,
  );
  await expect(diff(olds, settings("1.0.0"))).rejects.not.toThrow(/PW/);
});

test("a rotated key or password is no change; a moved project is", async () => {
  const parsed = parseServiceSettings(settings("2.0.0"));
  const fingerprint = "settings" in parsed ? fingerprintOf(parsed.settings) : "";
  const olds = { version: "2.0.0", fingerprint };
  expect((await diff(olds, settings("2.0.0", { ssh: { host: "10.0.0.5", user: "ops", privateKey: "OTHER" } }))).changes).toBe(false);
  expect((await diff(olds, settings("2.0.0", { compose: { projectDir: "/opt/u" } }))).changes).toBe(true);
});
