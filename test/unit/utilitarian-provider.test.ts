import { check, diff, downgradeRefusal, planFrom } from "../../workflows/utilitarian/provider";
import { describeContainers, type ContainerState } from "../../workflows/utilitarian/remote";
import { fingerprintOf, parseServiceConfig, parseServiceSettings } from "../../workflows/utilitarian/settings";

const settings = (version: string, extra: Record<string, unknown> = {}) => ({
  version,
  ssh: { host: "10.0.0.5", user: "ops", privateKey: "KEY" },
  compose: { projectDir: "/srv/utilitarian" },
  database: { host: "db", name: "utilitarian", user: "utilitarian", password: "PW" },
  backups: { dir: "/var/backups/utilitarian" },
  ...extra,
});

test("defaults are the names of the vendor's current docs; files as Compose finds them", () => {
  const parsed = parseServiceSettings(settings("2.0.0"));
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  expect(parsed.settings.services).toEqual({ api: "utilitarian-api", beat: "utilitarian-beat", workers: ["utilitarian-worker"], dependents: ["utilitarian-poster", "dlms-processor", "dlms-udp-server"] });
  expect(parsed.settings.image.repository).toBe("quay.io/pwit/utilitarian");
  expect(parsed.settings.compose).toMatchObject({ command: "docker compose", env: {} });
  expect(parsed.settings.compose.files).toBeUndefined();
  expect(parsed.settings.compose.envFiles).toBeUndefined();
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
    "utilitarian-api: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-beat: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
    "utilitarian-worker: quay.io/pwit/utilitarian:1.0.0 → 2.0.0",
  ]);
});

const parsedSettings = (version: string, extra: Record<string, unknown> = {}) => {
  const parsed = parseServiceSettings(settings(version, extra));
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  return parsed.settings;
};
const at = (tag: string, state = "running", service = "utilitarian-api"): ContainerState => ({ service, state, image: `quay.io/pwit/utilitarian:${tag}` });

test("an upgrade starts from the state's version, also when the compose file already names the target (a resume)", () => {
  expect(planFrom(parsedSettings("2.0.0"), "1.0.0", { file: "1.0.0", containers: [at("1.0.0")] })).toEqual({ from: "1.0.0" });
  expect(planFrom(parsedSettings("2.0.0"), "1.0.0", { file: "2.0.0", containers: [at("2.0.0"), at("1.0.0", "exited", "utilitarian-beat")] })).toEqual({ from: "1.0.0" });
  // a new resource adopts what the host runs
  expect(planFrom(parsedSettings("2.0.0"), undefined, { file: "1.0.0", containers: [] })).toEqual({ from: "1.0.0" });
});

test("a host changed outside the stack is taken as it is: rolled back by restore, or upgraded by hand", () => {
  expect(planFrom(parsedSettings("1.0.0"), "2.0.0", { file: "1.0.0", containers: [at("1.0.0")] })).toEqual({ from: "1.0.0" });
  expect(planFrom(parsedSettings("3.0.0"), "1.0.0", { file: "2.0.0", containers: [at("2.0.0")] })).toEqual({ from: "2.0.0" });
  expect(planFrom(parsedSettings("3.0.0"), "1.0.0", { file: "1.5.0", containers: [at("1.5.0")] })).toEqual({ from: "1.5.0" });
});

test("a downgrade is judged against the newest version the host names or runs, not the state", () => {
  expect(planFrom(parsedSettings("1.0.0"), "2.0.0", { file: "2.0.0", containers: [at("2.0.0")] })).toEqual({ downgradeFrom: "2.0.0" });
  // state 1.0.0, an interrupted upgrade left the API on 2.0.0: 1.5.0 would be a downgrade
  expect(planFrom(parsedSettings("1.5.0"), "1.0.0", { file: "2.0.0", containers: [at("2.0.0")] })).toEqual({ downgradeFrom: "2.0.0" });
  // a container still running a newer image than the compose file names counts
  expect(planFrom(parsedSettings("1.5.0"), "1.0.0", { file: "1.0.0", containers: [at("2.0.0", "running", "utilitarian-worker")] })).toEqual({ downgradeFrom: "2.0.0" });
  // stopped containers and other repositories do not
  expect(planFrom(parsedSettings("1.5.0"), "1.0.0", { file: "1.0.0", containers: [at("2.0.0", "exited"), { service: "utilitarian-api", state: "running", image: "quay.io/other/app:9.0.0" }] })).toEqual({ from: "1.0.0" });
});

test("a downgrade refusal names the backup taken before the upgrade to the running version; the password is not in it", () => {
  const backup = { path: "/var/backups/utilitarian/utilitarian-1.0.0-to-2.0.0-20261125T120000Z.dump", sha256: "ab" };
  const message = downgradeRefusal(parsedSettings("1.0.0"), "2.0.0", backup);
  expect(message).toMatch(
    /2\.0\.0 → 1\.0\.0 is a downgrade.*restore the backup taken before the upgrade to 2\.0\.0: \/var\/backups\/utilitarian\/utilitarian-1\.0\.0-to-2\.0\.0-20261125T120000Z\.dump \(PGPASSWORD=… pg_restore --clean --if-exists --no-owner -h db -p 5432 -U utilitarian -d utilitarian/,
  );
  expect(message).not.toMatch(/PW/);
  // a backup of another upgrade is not the way back from this one
  expect(downgradeRefusal(parsedSettings("1.0.0"), "3.0.0", backup, "2.0.0")).toMatch(/3\.0\.0 → 1\.0\.0 is a downgrade \(the host runs 3\.0\.0; the state's last completed version is 2\.0\.0\).*restore the database from a backup taken before the upgrade to 3\.0\.0, then/);
  expect(downgradeRefusal(parsedSettings("1.0.0", { database: { host: "db", name: "utilitarian", user: "utilitarian", password: "PW", tools: "/usr/lib/postgresql/16/bin" } }), "2.0.0", backup)).toMatch(
    /\(PGPASSWORD=… \/usr\/lib\/postgresql\/16\/bin\/pg_restore --clean/,
  );
});

test("versions with and without v: the same release", async () => {
  expect(parseServiceSettings(settings("v2.0.0"))).toHaveProperty("settings");
  expect(planFrom(parsedSettings("2.0.0"), "1.0.0", { file: "v1.0.0", containers: [at("v1.0.0")] })).toEqual({ from: "1.0.0" });
  expect(planFrom(parsedSettings("v2.0.0"), undefined, { file: "v2.0.0", containers: [at("v2.0.0")] })).toEqual({ from: "v2.0.0" });
  expect(planFrom(parsedSettings("1.0.0"), "2.0.0", { file: "v2.0.0", containers: [] })).toEqual({ downgradeFrom: "v2.0.0" });
  expect((await check({ version: "v2.0.0" }, settings("2.0.0"))).inputs.imageChanges).toEqual([]);
  const parsed = parseServiceSettings(settings("2.0.0"));
  const fingerprint = "settings" in parsed ? fingerprintOf(parsed.settings) : "";
  expect((await diff({ version: "2.0.0", fingerprint }, settings("v2.0.0"))).changes).toBe(false);
});

test("a rotated key or password is no change; a moved project is", async () => {
  const parsed = parseServiceSettings(settings("2.0.0"));
  const fingerprint = "settings" in parsed ? fingerprintOf(parsed.settings) : "";
  const olds = { version: "2.0.0", fingerprint };
  expect((await diff(olds, settings("2.0.0", { ssh: { host: "10.0.0.5", user: "ops", privateKey: "OTHER" } }))).changes).toBe(false);
  expect((await diff(olds, settings("2.0.0", { compose: { projectDir: "/opt/u" } }))).changes).toBe(true);
});

test("the services' state in one line, grouped as the host reports them", () => {
  const all: ContainerState[] = [at("2.0.0"), at("1.0.0", "exited", "utilitarian-beat"), { service: "utilitarian-poster", state: "exited", image: "quay.io/pwit/utilitarian-poster:1.0.0" }];
  expect(describeContainers(all, ["utilitarian-api", "utilitarian-beat", "utilitarian-worker", "utilitarian-poster"])).toBe(
    "running: utilitarian-api (quay.io/pwit/utilitarian:2.0.0); exited: utilitarian-beat (quay.io/pwit/utilitarian:1.0.0), utilitarian-poster (quay.io/pwit/utilitarian-poster:1.0.0); no container: utilitarian-worker",
  );
});
