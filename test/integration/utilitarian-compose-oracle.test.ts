import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { toolchainCache } from "../../lib/toolchain";
import { readComposeFile } from "../../workflows/utilitarian/composeFile";
import { discoverComposeFiles, DEFAULT_FILE_NAMES, OVERRIDE_FILE_NAMES } from "../../workflows/utilitarian/discovery";
import { parseEnvFile, parseTemplate, resolveTemplate } from "../../workflows/utilitarian/interpolation";
import { envOf, planVersion, unexpectedChanges, type ComposeModel } from "../../workflows/utilitarian/versionSource";
import { COMPOSE_VERSION } from "../sandbox/utilitarian";

// The pure Compose logic of the Utilitarian workflow (interpolation, .env files, where the version
// lives, file discovery) held against the real `docker compose config` of the bed's Compose
// (v2.40.3, built from the Go module proxy): every expected value below is Compose's answer,
// read at test time. `config` needs no engine, so this runs without podman.
const composeBinary = path.join(toolchainCache(), "compose", COMPOSE_VERSION, "docker-compose");
let root: string;

beforeAll(() => {
  if (!fs.existsSync(composeBinary)) throw new Error(`${composeBinary} is missing: run \`npm run provision\``);
  root = fs.mkdtempSync(path.join(os.tmpdir(), "uo-compose-oracle-"));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function project(files: Record<string, string>): string {
  const dir = path.join(root, `p${n++}`);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** `docker compose config --format json` in `cwd`, with its own environment only (no host variables leak in). */
function composeConfig(cwd: string, args: string[] = [], env: Record<string, string> = {}): { model?: ComposeModel; error?: string } {
  const r = spawnSync(composeBinary, [...args, "config", "--format", "json"], { cwd, encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: root, ...env }, timeout: 30_000 });
  return r.status === 0 ? { model: JSON.parse(r.stdout) as ComposeModel } : { error: r.stderr };
}

const fileWith = (image: string, other = "quay.io/pwit/utilitarian-poster:1.0.0") => `name: oracle
x-env: &env
  TZ: UTC
services:
  utilitarian-api:
    image: ${image}
    environment: *env
  utilitarian-beat:
    image: ${image}
    environment: *env
  utilitarian-poster:
    image: ${other}
`;

// Image texts × .env files × invocation environments, as operators write them.
const RESOLUTION_CASES: Array<{ image: string; dotenv?: string; env?: Record<string, string> }> = [
  { image: "quay.io/pwit/utilitarian:1.0.0" },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}", dotenv: "UTILITARIAN_VERSION=1.0.0\n" },
  { image: "quay.io/pwit/utilitarian:$UTILITARIAN_VERSION", dotenv: "export UTILITARIAN_VERSION='1.0.0'\n" },
  { image: '"quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}"' },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}", dotenv: "UTILITARIAN_VERSION=v1.0.0 # pinned\n" },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}", dotenv: "UTILITARIAN_VERSION=\n" },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION-1.0.0}", dotenv: "UTILITARIAN_VERSION=\n" },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:?set the version}", dotenv: '# the release\nUTILITARIAN_VERSION="1.0.0"\n' },
  { image: "${UTILITARIAN_IMAGE}", dotenv: "COMPOSE_PROJECT_NAME=oracle\nUTILITARIAN_IMAGE=quay.io/pwit/utilitarian:1.0.0\n" },
  { image: "${REGISTRY:-quay.io}/pwit/utilitarian:${UTILITARIAN_VERSION:-${DEFAULT_VERSION:-0.9.0}}", dotenv: "DEFAULT_VERSION=1.0.0\n" },
  { image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}", dotenv: "UTILITARIAN_VERSION=1.0.0\n", env: { UTILITARIAN_VERSION: "1.1.0" } },
  { image: "quay.io/pwit/utilitarian:${TAG:+v}1.0.0", dotenv: "TAG=yes\n" },
];

test.each(RESOLUTION_CASES.map((c, i) => [i, c] as const))("case %i: the image resolves as docker compose config resolves it", (_i, c) => {
  const dir = project({ "compose.yaml": fileWith(c.image), ...(c.dotenv !== undefined ? { ".env": c.dotenv } : {}) });
  const oracle = composeConfig(dir, [], c.env);
  expect(oracle.error).toBeUndefined();
  const file = readComposeFile(fs.readFileSync(path.join(dir, "compose.yaml"), "utf8"), "compose.yaml");
  const raw = file.image("utilitarian-api")!;
  const env = envOf(c.dotenv !== undefined ? [{ path: path.join(dir, ".env"), text: c.dotenv }] : [], c.env ?? {});
  expect(resolveTemplate(parseTemplate(raw), env).value).toBe(oracle.model!.services!["utilitarian-api"]!.image);
});

test("a required variable that is missing is refused, as Compose refuses it", () => {
  const dir = project({ "compose.yaml": fileWith("quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:?set the version}") });
  expect(composeConfig(dir).error).toMatch(/required variable UTILITARIAN_VERSION is missing a value: set the version/);
  expect(() => resolveTemplate(parseTemplate("quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:?set the version}"), new Map())).toThrow(/required variable UTILITARIAN_VERSION is missing a value: set the version/);
});

// Where the version lives: after the planned edit Compose gives the API and beat the new image,
// the poster keeps its own, and the files differ from before in the version only.
const PLAN_CASES: Array<{ name: string; image: string; dotenv?: string; toTag: string; where: RegExp }> = [
  { name: "image text", image: "quay.io/pwit/utilitarian:1.0.0", toTag: "2.0.0", where: /compose\.yaml: image of utilitarian-api, utilitarian-beat 1\.0\.0 → 2\.0\.0/ },
  { name: "${VAR} in .env", image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}", dotenv: "# pinned by ops\nUTILITARIAN_VERSION=1.0.0 # with the runbook\n", toTag: "2.0.0", where: /^\.env: UTILITARIAN_VERSION 1\.0\.0 → 2\.0\.0$/ },
  { name: "${VAR:-default} set in .env", image: "quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}", dotenv: 'UTILITARIAN_VERSION="v1.0.0"\n', toTag: "v2.0.0", where: /^\.env: UTILITARIAN_VERSION v1\.0\.0 → v2\.0\.0$/ },
  { name: "${VAR:-default} unset", image: '"quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}"', toTag: "2.0.0", where: /^compose\.yaml: image of utilitarian-api, utilitarian-beat 1\.0\.0 → 2\.0\.0$/ },
  { name: "image in a variable", image: "${UTILITARIAN_IMAGE}", dotenv: "UTILITARIAN_IMAGE=quay.io/pwit/utilitarian:1.0.0\nOTHER=x\n", toTag: "2.0.0", where: /^\.env: UTILITARIAN_IMAGE quay\.io\/pwit\/utilitarian:1\.0\.0 → quay\.io\/pwit\/utilitarian:2\.0\.0$/ },
];

test.each(PLAN_CASES.map((c) => [c.name, c] as const))("%s: the edit changes the version where it lives, and Compose agrees", (_name, c) => {
  const dir = project({ "compose.yaml": fileWith(c.image), ...(c.dotenv !== undefined ? { ".env": c.dotenv } : {}) });
  const before = composeConfig(dir).model!;
  const composePath = path.join(dir, "compose.yaml");
  const envPath = path.join(dir, ".env");
  const files = [readComposeFile(fs.readFileSync(composePath, "utf8"), composePath)];
  const envFiles = c.dotenv !== undefined ? [{ path: envPath, text: c.dotenv }] : [];
  const services = ["utilitarian-api", "utilitarian-beat"];
  const resolved = Object.fromEntries(services.map((s) => [s, before.services![s]!.image]));
  const plan = planVersion({ files, envFiles, invocationEnv: {}, services, resolved, projectDir: dir }, c.toTag);
  expect(plan.change).toMatch(c.where);
  expect(plan.edits.size).toBe(1);
  const textsBefore = new Map([[composePath, files[0]!.text], ...envFiles.map((f) => [f.path, f.text] as const)]);
  for (const [file, text] of plan.edits) {
    // only the version changed: the new text with the new tag put back is the old text, byte for byte
    const old = textsBefore.get(file)!;
    expect(old.includes(c.toTag)).toBe(false);
    expect(text).not.toBe(old);
    expect(text.split(c.toTag).join(plan.fromTag)).toBe(old);
    if (file.endsWith(".env")) expect(isOneSubstitution(old, text, plan.fromTag, c.toTag)).toBe(true);
    fs.writeFileSync(file, text);
  }
  const after = composeConfig(dir).model!;
  expect(unexpectedChanges(before, after, services, `quay.io/pwit/utilitarian:${c.toTag}`)).toEqual({ others: [], wrong: [] });
  expect(after.services!["utilitarian-poster"]!.image).toBe("quay.io/pwit/utilitarian-poster:1.0.0");
});

/** `after` is `before` with one occurrence of `from` replaced by `to`, and nothing else changed. */
function isOneSubstitution(before: string, after: string, from: string, to: string): boolean {
  for (let p = before.indexOf(from); p >= 0; p = before.indexOf(from, p + 1)) {
    if (after === before.slice(0, p) + to + before.slice(p + from.length)) return true;
  }
  return false;
}

test("a variable shared with another image is refused, and Compose agrees the other service would change", () => {
  const dotenv = "UTILITARIAN_VERSION=1.0.0\n";
  const dir = project({ "compose.yaml": fileWith("quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}", "quay.io/pwit/utilitarian-poster:${UTILITARIAN_VERSION}"), ".env": dotenv });
  const before = composeConfig(dir).model!;
  const composePath = path.join(dir, "compose.yaml");
  const services = ["utilitarian-api", "utilitarian-beat"];
  const inputs = { files: [readComposeFile(fs.readFileSync(composePath, "utf8"), composePath)], envFiles: [{ path: path.join(dir, ".env"), text: dotenv }], invocationEnv: {}, services, resolved: {}, projectDir: dir };
  expect(() => planVersion(inputs, "2.0.0")).toThrow(/changing \.env: UTILITARIAN_VERSION would change utilitarian-poster too \(UTILITARIAN_VERSION is not only the Utilitarian version\)/);
  // the edit it refuses, made by hand: Compose shows the poster moving too
  fs.writeFileSync(path.join(dir, ".env"), "UTILITARIAN_VERSION=2.0.0\n");
  expect(unexpectedChanges(before, composeConfig(dir).model!, services, "quay.io/pwit/utilitarian:2.0.0").others).toEqual(["utilitarian-poster"]);
});

test("a value Compose takes from the invocation's environment is not where the .env says", () => {
  const dir = project({ "compose.yaml": fileWith("quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}"), ".env": "UTILITARIAN_VERSION=1.0.0\n" });
  const composeSays = composeConfig(dir, [], { UTILITARIAN_VERSION: "1.1.0" }).model!.services!["utilitarian-api"]!.image;
  expect(composeSays).toBe("quay.io/pwit/utilitarian:1.1.0");
  const composePath = path.join(dir, "compose.yaml");
  const inputs = (invocationEnv: Record<string, string>) => ({
    files: [readComposeFile(fs.readFileSync(composePath, "utf8"), composePath)],
    envFiles: [{ path: path.join(dir, ".env"), text: "UTILITARIAN_VERSION=1.0.0\n" }],
    invocationEnv,
    services: ["utilitarian-api"],
    resolved: { "utilitarian-api": composeSays },
    projectDir: dir,
  });
  // set by the host's environment, unknown to the workflow: refused
  expect(() => planVersion(inputs({}), "2.0.0")).toThrow(/resolves the image of utilitarian-api to quay\.io\/pwit\/utilitarian:1\.1\.0, the files give quay\.io\/pwit\/utilitarian:1\.0\.0/);
  // set by compose.env: refused, naming the setting
  expect(() => planVersion(inputs({ UTILITARIAN_VERSION: "1.1.0" }), "2.0.0")).toThrow(/comes from UTILITARIAN_VERSION, set in compose\.env.*change compose\.env\.UTILITARIAN_VERSION/s);
});

test(".env values are read as Compose reads them", () => {
  const text = ["A=plain # comment", "export B='single # kept'", 'C="double \\"q\\""', "D=", "E=x#notacomment", "F=1", "F=2", ""].join("\n");
  const dir = project({ "compose.yaml": "services:\n  s:\n    image: x\n    environment: [A=$A, B=$B, C=$C, D=$D, E=$E, F=$F]\n", ".env": text });
  const env = (composeConfig(dir).model!.services!.s as unknown as { environment: Record<string, string> }).environment;
  const ours = Object.fromEntries([...parseEnvFile(text)].map(([k, a]) => [k, a.value]));
  expect(ours).toEqual(env);
});

// Discovery: each candidate names itself in its image; Compose's pick is the image it resolves.
const DISCOVERY_CASES: Array<{ name: string; files: string[]; sub?: string; env?: Record<string, string>; dotenv?: string }> = [
  { name: "all four names", files: [...DEFAULT_FILE_NAMES] },
  { name: "the docs' docker-compose.yaml alone", files: ["docker-compose.yaml"] },
  { name: "docker-compose.yml and docker-compose.yaml", files: ["docker-compose.yaml", "docker-compose.yml"] },
  { name: "compose.yml and an override", files: ["compose.yml", "docker-compose.override.yaml", "compose.override.yml"] },
  { name: "a parent directory's file", files: ["docker-compose.yaml"], sub: "deploy/current" },
  { name: "COMPOSE_FILE in .env", files: ["compose.yaml", "base.yaml", "prod.yaml"], dotenv: "COMPOSE_FILE=base.yaml:prod.yaml\n" },
  { name: "COMPOSE_FILE in the environment with a separator", files: ["compose.yaml", "base.yaml", "prod.yaml"], env: { COMPOSE_FILE: "base.yaml;prod.yaml", COMPOSE_PATH_SEPARATOR: ";" } },
];

test.each(DISCOVERY_CASES.map((c) => [c.name, c] as const))("discovery, %s: the files Compose reads", (_name, c) => {
  const files: Record<string, string> = {};
  for (const f of c.files) {
    const override = OVERRIDE_FILE_NAMES.includes(f) || f === "prod.yaml";
    files[f] = override ? `services:\n  probe:\n    environment:\n      FROM_${f.replace(/\W/g, "_")}: "1"\n` : `name: discovery\nservices:\n  probe:\n    image: "${f}"\n`;
  }
  if (c.dotenv) files[".env"] = c.dotenv;
  const top = project(files);
  const dir = c.sub ? path.join(top, c.sub) : top;
  fs.mkdirSync(dir, { recursive: true });
  const oracle = composeConfig(dir, [], c.env);
  expect(oracle.error).toBeUndefined();
  const existing = [...DEFAULT_FILE_NAMES, ...OVERRIDE_FILE_NAMES].flatMap((name) => [top, dir].map((d) => path.join(d, name))).filter((f) => fs.existsSync(f));
  const dotenv = c.dotenv ? new Map([...parseEnvFile(c.dotenv)].map(([k, a]) => [k, a.value])) : new Map<string, string>();
  const ours = discoverComposeFiles({ projectDir: dir, invocationEnv: c.env ?? {}, dotenv, existing });
  // the same model from our -f list as from Compose's own discovery
  const withOurs = composeConfig(dir, ours.files.flatMap((f) => ["-f", f]), c.env);
  expect(withOurs.model).toEqual(oracle.model);
});
