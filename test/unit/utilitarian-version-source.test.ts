import { readComposeFile } from "../../workflows/utilitarian/composeFile";
import { discoverComposeFiles } from "../../workflows/utilitarian/discovery";
import { parseEnvFile, parseTemplate } from "../../workflows/utilitarian/interpolation";
import { chooseTag, registryOf } from "../../workflows/utilitarian/registry";
import { planVersion, unexpectedChanges } from "../../workflows/utilitarian/versionSource";

// The pure parts the compose oracle test (test/integration/utilitarian-compose-oracle.test.ts)
// does not reach: tag forms, registry addresses, refusals, positions. Compose's own answers for
// resolution, edits and discovery are checked there.

test("the tag as the registry has it; the deployment's form where both exist", () => {
  const repo = "quay.io/pwit/utilitarian";
  expect(chooseTag("2.0.0", "v1.0.0", ["v1.0.0", "v2.0.0"], repo).tag).toBe("v2.0.0");
  expect(chooseTag("v2.0.0", "v1.0.0", ["v1.0.0", "v2.0.0"], repo).tag).toBe("v2.0.0");
  expect(chooseTag("v2.0.0", "1.0.0", ["1.0.0", "2.0.0"], repo).tag).toBe("2.0.0");
  expect(chooseTag("2.0.0", "1.0.0", ["2.0.0", "v2.0.0"], repo).tag).toBe("2.0.0");
  expect(chooseTag("2.0.0", "v1.0.0", ["2.0.0", "v2.0.0"], repo).tag).toBe("v2.0.0");
  // not listed: the deployment's form, and the pull will tell
  expect(chooseTag("2.0.0", "v1.0.0", undefined, repo)).toMatchObject({ tag: "v2.0.0", how: expect.stringMatching(/not listed/) });
  expect(() => chooseTag("9.9.9", "1.0.0", ["1.0.0", "v2.0.0", "latest"], repo)).toThrow(/no tag 9\.9\.9 or v9\.9\.9 \(its releases: 1\.0\.0, v2\.0\.0\).*nothing was stopped/s);
});

test("the registry API of a repository", () => {
  expect(registryOf("quay.io/pwit/utilitarian", undefined)).toEqual({ url: "https://quay.io", name: "pwit/utilitarian" });
  expect(registryOf("quay.io/pwit/utilitarian", "http://127.0.0.1:5000/")).toEqual({ url: "http://127.0.0.1:5000", name: "pwit/utilitarian" });
  expect(registryOf("pwit/utilitarian", undefined)).toBeUndefined();
  expect(registryOf("quay.io/pwit/utilitarian", false)).toBeUndefined();
});

test("template parts keep their positions in the file", () => {
  const text = "image: quay.io/pwit/utilitarian:${UTILITARIAN_VERSION:-1.0.0}";
  const at = text.indexOf("quay");
  const parts = parseTemplate(text.slice(at), at);
  expect(parts.map((p) => text.slice(p.start, p.end))).toEqual(["quay.io/pwit/utilitarian:", "${UTILITARIAN_VERSION:-1.0.0}"]);
  const v = parts[1]!;
  expect(v.kind === "var" && v.arg.map((p) => text.slice(p.start, p.end))).toEqual(["1.0.0"]);
  expect(() => parseTemplate("quay.io/x:${1BAD}")).toThrow(/not followed by a variable name/);
  expect(() => parseTemplate("quay.io/x:${V:-1")).toThrow(/no closing/);
});

test(".env positions point at the value, inside its quotes", () => {
  const text = "# ops\nexport UTILITARIAN_VERSION=\"1.0.0\"   # pinned\nIMG=quay.io/pwit/utilitarian:1.0.0\nBAD=${OTHER}\n";
  const env = parseEnvFile(text);
  const v = env.get("UTILITARIAN_VERSION")!;
  expect(text.slice(v.start, v.end)).toBe("1.0.0");
  expect(v).toMatchObject({ quote: '"', editable: true });
  expect(text.slice(env.get("IMG")!.start, env.get("IMG")!.end)).toBe("quay.io/pwit/utilitarian:1.0.0");
  expect(env.get("BAD")!.editable).toBe(false);
});

const FILE = (image: string, worker = image) => `services:
  utilitarian-api:
    image: ${image}
  utilitarian-worker:
    image: ${worker}
`;
const plan = (text: string, dotenv: string | undefined, toTag: string, invocationEnv: Record<string, string> = {}) =>
  planVersion(
    { files: [readComposeFile(text, "/srv/u/docker-compose.yaml")], envFiles: dotenv === undefined ? [] : [{ path: "/srv/u/.env", text: dotenv }], invocationEnv, services: ["utilitarian-api", "utilitarian-worker"], resolved: {}, projectDir: "/srv/u" },
    toTag,
  );

test("refusals name what to do: a tag of several pieces, different versions, a variable no env file sets", () => {
  expect(() => plan(FILE("quay.io/pwit/utilitarian:${MAJOR}.0.0"), "MAJOR=1\n", "2.0.0")).toThrow(/made of more than one piece.*keep the version in one place/s);
  expect(() => plan(FILE("quay.io/pwit/utilitarian:1.0.0", "quay.io/pwit/utilitarian:1.5.0"), undefined, "2.0.0")).toThrow(/run different versions: utilitarian-api 1\.0\.0, utilitarian-worker 1\.5\.0/);
  expect(() => plan(FILE("quay.io/pwit/utilitarian@sha256:abc"), undefined, "2.0.0")).toThrow(/names no tag/);
});

test("an interrupted run: the version already at the target is no edit", () => {
  const p = plan(FILE("quay.io/pwit/utilitarian:${UTILITARIAN_VERSION}"), "UTILITARIAN_VERSION=2.0.0\n", "2.0.0");
  expect(p.edits.size).toBe(0);
  expect(p.where).toBe(".env: UTILITARIAN_VERSION");
});

test("discovery: compose.files wins, then COMPOSE_FILE, then the names; nothing found is a clear error", () => {
  const base = { projectDir: "/srv/u", invocationEnv: {}, dotenv: new Map<string, string>(), existing: ["/srv/u/docker-compose.yaml", "/srv/compose.yaml"] };
  expect(discoverComposeFiles({ ...base, files: ["a.yml", "/etc/b.yml"] }).files).toEqual(["/srv/u/a.yml", "/etc/b.yml"]);
  expect(discoverComposeFiles(base)).toEqual({ files: ["/srv/u/docker-compose.yaml"], how: "Compose's default names" });
  expect(discoverComposeFiles({ ...base, dotenv: new Map([["COMPOSE_FILE", "x.yml:y.yml"]]) }).files).toEqual(["/srv/u/x.yml", "/srv/u/y.yml"]);
  expect(() => discoverComposeFiles({ ...base, existing: [] })).toThrow(/none of compose\.yaml, compose\.yml, docker-compose\.yml, docker-compose\.yaml.*set compose\.files/s);
});

test("the model check: other services and the project count, x- extensions do not", () => {
  const model = (api: string, poster: string, x: string) => ({ name: "u", "x-utilitarian": { image: x }, services: { "utilitarian-api": { image: api }, poster: { image: poster } } });
  const before = model("r:1.0.0", "p:1.0.0", "r:1.0.0");
  expect(unexpectedChanges(before, model("r:2.0.0", "p:1.0.0", "r:2.0.0"), ["utilitarian-api"], "r:2.0.0")).toEqual({ others: [], wrong: [] });
  expect(unexpectedChanges(before, model("r:2.0.0", "p:2.0.0", "r:2.0.0"), ["utilitarian-api"], "r:2.0.0")).toEqual({ others: ["poster"], wrong: [] });
  expect(unexpectedChanges(before, { ...model("r:1.0.0", "p:1.0.0", "r:1.0.0"), name: "other" }, ["utilitarian-api"], "r:2.0.0")).toEqual({ others: ["(the project's networks, volumes or name)"], wrong: ["utilitarian-api"] });
});
