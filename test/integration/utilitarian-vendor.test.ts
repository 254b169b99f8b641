import * as fs from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";
import { startUtilitarian, VENDOR_SERVICES as S, type Pin, type TagForm, type UtilitarianFixture } from "../sandbox/utilitarian";

// Runbook 4 against a deployment laid out as the vendor documents it (test/sandbox/utilitarianLayouts.ts:
// docker-compose.yaml, hyphenated names, the environment shared through a YAML anchor, API/worker/
// beat on one image, poster and the DLMS services on theirs) with DEFAULT settings: no compose
// files, no service names. Then the same deployment with the version pinned through `.env` in the
// three ways operators pin it, a variable shared with the poster (refused), and a registry whose
// tags carry a `v`. One bed; between scenarios the deployment is put back to 1.0.0 (the verified
// backup restored, the files rewritten in the next form) and the stack takes 1.0.0 from the host.
// `docker compose config` of the bed's Compose is the judge of what each service runs.
let bed: Sandbox;
let app: UtilitarianFixture;
let own: OwnStack;
let firstBackup: string;
/** A scenario: put back to 1.0.0, taken from the host, previewed, upgraded (minutes on a loaded machine). */
const SCENARIO_MS = 900_000;

const systems = (version: string) => ({ util: app.systemConfig(version, "utilSshKey", "utilDbPassword") });

async function run(version: string) {
  await own.setSystems(systems(version));
  return upOwnStack(bed, own);
}

async function previewLog(version: string): Promise<string> {
  await own.setSystems(systems(version));
  const events: EngineEvent[] = [];
  await own.stack.preview({ onEvent: (e) => events.push(e) });
  return events.flatMap((e) => (e.diagnosticEvent ? [e.diagnosticEvent.message.trim()] : [])).join("\n");
}

/** What Compose resolves for each service, image only. */
const resolvedImages = () => Object.fromEntries(Object.entries(app.config().services).map(([name, s]) => [name, s.image]));
const running = () => Object.fromEntries(Object.entries(app.services()).map(([name, c]) => [name, `${c.state} ${c.image}`]));

const OTHERS = {
  [S.poster]: "quay.io/pwit/utilitarian-poster:1.0.0",
  [S.processor]: "quay.io/pwit/utilitarian-dlms-processor:1.0.0",
  [S.udp]: "quay.io/pwit/utilitarian-dlms-udp-server:1.0.0",
};
const appAt = (tag: string) => ({ [S.api]: `quay.io/pwit/utilitarian:${tag}`, [S.worker]: `quay.io/pwit/utilitarian:${tag}`, [S.beat]: `quay.io/pwit/utilitarian:${tag}` });
const runningAt = (tag: string) => Object.fromEntries(Object.entries({ ...appAt(tag), ...OTHERS }).map(([k, v]) => [k, `running ${v}`]));

/** `after` is `before` with exactly one occurrence of `from` replaced by `to`. */
function oneSubstitution(before: string, after: string, from: string, to: string): boolean {
  for (let p = before.indexOf(from); p >= 0; p = before.indexOf(from, p + 1)) if (after === before.slice(0, p) + to + before.slice(p + from.length)) return true;
  return false;
}
const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined);

beforeAll(async () => {
  const started = Date.now();
  bed = await startSandbox({ aws: false });
  app = await startUtilitarian(bed, { version: "1.0.0", layout: "vendor", pin: "image" });
  own = await ownStack(bed, "utilv", { utilSshKey: { value: app.privateKey, secret: true }, utilDbPassword: { value: app.postgres.password, secret: true } });
  process.stderr.write(`utilitarian (vendor layout) bed ready in ${Date.now() - started} ms\n`);
}, 900_000);
afterAll(async () => {
  await own?.remove();
  await app?.stop();
  await bed?.stop();
}, 300_000);

test("the vendor's layout with default settings: adopted at 1.0.0, then upgraded to 2.0.0 end to end", async () => {
  const config = app.systemConfig("1.0.0", "k", "p") as { compose: Record<string, unknown>; services?: unknown };
  expect(Object.keys(config.compose).sort()).toEqual(["command", "env", "projectDir"]);
  expect(config.services).toBeUndefined();
  expect(app.composeFile.endsWith("/docker-compose.yaml")).toBe(true);
  expect(fs.existsSync(app.envFile)).toBe(false);

  const adopted = await run("1.0.0");
  expect(adopted.result.error).toBeUndefined();
  expect(adopted.result.outputs?.versions).toEqual({ util: "1.0.0" });

  const before = read(app.composeFile)!;
  const preview = await previewLog("2.0.0");
  expect(preview).toMatch(/plan 1\.0\.0 → 2\.0\.0; docker-compose\.yaml: image of utilitarian-api, utilitarian-beat, utilitarian-worker 1\.0\.0 → 2\.0\.0/);

  const { result, log, ms } = await run("2.0.0");
  process.stderr.write(`vendor layout 1.0.0 → 2.0.0 in ${ms} ms\n${log}\n`);
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(log).toMatch(/compose files .*\/docker-compose\.yaml, found by Compose's default names/);
  expect(log).toMatch(/tag 2\.0\.0: the registry has 2\.0\.0/);
  expect(resolvedImages()).toEqual({ ...appAt("2.0.0"), ...OTHERS });
  expect(running()).toEqual(runningAt("2.0.0"));
  expect(await app.apiVersion()).toMatchObject({ version: "2.0.0" });
  // the three image lines changed, nothing else; the old file kept beside
  expect(read(app.composeFile)).toBe(before.replaceAll("quay.io/pwit/utilitarian:1.0.0", "quay.io/pwit/utilitarian:2.0.0"));
  expect(read(`${app.composeFile}.before-1.0.0`)).toBe(before);
  const state = (await own.stack.exportStack()).deployment as { resources: Array<{ type: string; outputs: Record<string, unknown> }> };
  firstBackup = (state.resources.find((r) => r.type.endsWith("UtilitarianService"))!.outputs.backup as { path: string }).path;
  expect(fs.existsSync(firstBackup)).toBe(true);
}, SCENARIO_MS);

/** The deployment back at 1.0.0 in another form, and the stack taking 1.0.0 from the host. */
async function resetTo(pin: Pin, tagForm: TagForm) {
  await app.reset(firstBackup, { pin, tagForm });
  for (const f of [`${app.composeFile}.before-1.0.0`, `${app.envFile}.before-1.0.0`]) fs.rmSync(f, { force: true });
  const taken = await run("1.0.0");
  expect(taken.result.error).toBeUndefined();
  expect(taken.result.outputs?.versions).toEqual({ util: "1.0.0" });
  expect(resolvedImages()).toEqual({ ...appAt(`${tagForm}1.0.0`), ...OTHERS });
}

const ENV_FORMS: Array<{ pin: Pin; text: RegExp; where: RegExp }> = [
  { pin: "env-version", text: /image: quay\.io\/pwit\/utilitarian:\$\{UTILITARIAN_VERSION\}/, where: /\.env: UTILITARIAN_VERSION 1\.0\.0 → 2\.0\.0/ },
  { pin: "env-default", text: /image: "quay\.io\/pwit\/utilitarian:\$\{UTILITARIAN_VERSION:-1\.0\.0\}"/, where: /\.env: UTILITARIAN_VERSION 1\.0\.0 → 2\.0\.0/ },
  { pin: "env-image", text: /image: \$\{UTILITARIAN_IMAGE\}/, where: /\.env: UTILITARIAN_IMAGE quay\.io\/pwit\/utilitarian:1\.0\.0 → quay\.io\/pwit\/utilitarian:2\.0\.0/ },
];

test.each(ENV_FORMS.map((f) => [f.pin, f] as const))("version pinned through .env (%s): the .env changes in the version only, the compose file not at all", async (_pin, form) => {
  await resetTo(form.pin, "");
  const composeBefore = read(app.composeFile)!;
  const envBefore = read(app.envFile)!;
  expect(composeBefore).toMatch(form.text);
  expect(await previewLog("2.0.0")).toMatch(form.where);

  const { result, log } = await run("2.0.0");
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ util: "2.0.0" });
  expect(log).toMatch(form.where);
  expect(resolvedImages()).toEqual({ ...appAt("2.0.0"), ...OTHERS });
  expect(running()).toEqual(runningAt("2.0.0"));
  expect(read(app.composeFile)).toBe(composeBefore);
  expect(oneSubstitution(envBefore, read(app.envFile)!, "1.0.0", "2.0.0")).toBe(true);
  expect(read(`${app.envFile}.before-1.0.0`)).toBe(envBefore);
  expect(fs.existsSync(`${app.composeFile}.before-1.0.0`)).toBe(false);
}, SCENARIO_MS);

test("a version variable the poster's image shares is refused, naming the variable and the service; nothing changes", async () => {
  await resetTo("env-shared", "");
  const composeBefore = read(app.composeFile)!;
  const envBefore = read(app.envFile)!;
  const { result } = await run("2.0.0");
  expect(result.exitCode).toBe(3);
  expect(result.error?.message).toMatch(/changing \.env: UTILITARIAN_VERSION would change utilitarian-poster too \(UTILITARIAN_VERSION is not only the Utilitarian version\).*give the API, beat and workers a variable of their own.*nothing was changed/s);
  expect(read(app.composeFile)).toBe(composeBefore);
  expect(read(app.envFile)).toBe(envBefore);
  expect(fs.readdirSync(app.projectDir).filter((f) => f.endsWith(".next") || f.includes(".before-"))).toEqual([]);
  expect(running()).toEqual(runningAt("1.0.0"));
  expect((await own.stack.outputs()).versions?.value).toEqual({ util: "1.0.0" });
}, SCENARIO_MS);

test.each([
  ["2.0.0", "image"],
  ["v2.0.0", "env-version"],
] as const)("a registry whose tags are v1.0.0/v2.0.0: version %s upgrades (%s pin) to v2.0.0", async (version, pin) => {
  await resetTo(pin, "v");
  const composeBefore = read(app.composeFile)!;
  const envBefore = read(app.envFile);
  const { result, log } = await run(version);
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ util: version });
  expect(log).toMatch(/tag v2\.0\.0: the registry has v2\.0\.0/);
  expect(resolvedImages()).toEqual({ ...appAt("v2.0.0"), ...OTHERS });
  expect(running()).toEqual(runningAt("v2.0.0"));
  expect(await app.apiVersion()).toMatchObject({ version: "2.0.0" });
  if (pin === "image") expect(read(app.composeFile)).toBe(composeBefore.replaceAll("quay.io/pwit/utilitarian:v1.0.0", "quay.io/pwit/utilitarian:v2.0.0"));
  else expect(oneSubstitution(envBefore!, read(app.envFile)!, "v1.0.0", "v2.0.0")).toBe(true);
}, SCENARIO_MS);
