import * as fs from "node:fs";
import * as path from "node:path";
import { bundledCatalog } from "../../workflows/backendai/catalog";
import { matchingPython, pythonSatisfies } from "../../workflows/backendai/python";
import { catalogFromPage, filesFromHtml, normalizeProject, versionOfFile } from "../../workflows/backendai/simpleIndex";
import { planPath, type Catalog } from "../../workflows/backendai/versions";

/*
 * The planner against the real metadata: test/fixtures/backendai/pypi-simple-backend-ai-manager.json
 * is PyPI's PEP 691 page of backend.ai-manager, saved as served (see SOURCE.md beside it). The
 * expectations are read off the raw page here (its files, `yanked`, `requires-python`), not off our
 * parser.
 */
const FIXTURE = path.join(__dirname, "..", "fixtures", "backendai", "pypi-simple-backend-ai-manager.json");
const pageText = fs.readFileSync(FIXTURE, "utf8");
const page = JSON.parse(pageText) as { meta: { "api-version": string }; files: Array<{ filename: string; yanked: boolean | string; "requires-python"?: string }> };
const real: Catalog = catalogFromPage(pageText, "application/vnd.pypi.simple.v1+json", "the saved PyPI page");

/** The page's files of a version, by PEP 440's normal form (24.09.3 → 24.9.3) in the file name. */
const filesOf = (version: string) => {
  const pep440 = version.split(".").map(Number).join(".");
  return page.files.filter((f) => f.filename.includes(`-${pep440}-`) || f.filename.endsWith(`-${pep440}.tar.gz`));
};
const installable = (version: string) => filesOf(version).some((f) => f.yanked === false);
const requiresPython = (version: string) => filesOf(version).find((f) => f.yanked === false)?.["requires-python"];

test("the fixture is PyPI's JSON page (PEP 691, api-version 1.1 with upload times)", () => {
  expect(page.meta["api-version"]).toBe("1.1");
  expect(page.files.length).toBeGreaterThan(1000);
});

describe("the planner over the real metadata", () => {
  test("24.09.3 → 25.5.2 goes through installable releases only, and names what it skipped", () => {
    const plan = planPath(real, "24.09.3", "25.5.2");
    expect(plan.allowed).toBe(true);
    if (!plan.allowed) return;
    expect(plan.path.at(-1)).toBe("25.5.2");
    for (const version of plan.path) expect([version, installable(version)]).toEqual([version, true]);
    for (const notInstallable of ["24.12.1", "24.09.7"]) {
      expect(filesOf(notInstallable).length).toBeGreaterThan(0);
      expect(installable(notInstallable)).toBe(false);
      expect(plan.path).not.toContain(notInstallable);
    }
    for (const noDistribution of ["24.12.0", "25.1.0", "24.09.8"]) expect([noDistribution, filesOf(noDistribution).length]).toEqual([noDistribution, 0]);
    expect(plan.path).toEqual(["24.09.4", "24.09.5", "25.1.1", "25.2.0", "25.3.0", "25.3.1", "25.3.2", "25.3.3", "25.4.0", "25.5.0", "25.5.1", "25.5.2"]);
    expect(plan.notes).toContain("skipped 24.12.1: yanked on the index (broken version)");
    expect(plan.notes).toContain("skipped 24.09.7: yanked on the index (corrupted database revision)");
  });

  test("23.09.8 → 24.03.x changes the interpreter: 24.03 needs a Python 23.09's cannot be", () => {
    const plan = planPath(real, "23.09.8", "24.03.5");
    expect(plan.allowed).toBe(true);
    if (!plan.allowed) return;
    expect(plan.path).toEqual(["23.09.10", "24.03.0", "24.03.2", "24.03.3", "24.03.4", "24.03.5"]);
    expect(plan.requiresPython["23.09.10"]).toBe(requiresPython("23.09.10"));
    expect(plan.requiresPython["24.03.0"]).toBe(requiresPython("24.03.0"));
    expect(pythonSatisfies(plan.requiresPython["23.09.10"], "3.11")).toBe(true);
    expect(pythonSatisfies(plan.requiresPython["24.03.0"], "3.11")).toBe(false);
    expect(matchingPython(plan.requiresPython["24.03.0"], ["3.11", "3.12", "3.13"])).toBe("3.12");
    expect(plan.notes).toContain(`23.09.10 → 24.03.0 changes Requires-Python from ${requiresPython("23.09.10")} to ${requiresPython("24.03.0")}`);
  });

  test("the line moving to 3.13 (25.6) is said, and a 3.12 host has no interpreter for it", () => {
    const plan = planPath(real, "25.5.2", "25.6.1");
    expect(plan).toMatchObject({ allowed: true, path: ["25.6.0", "25.6.1"] });
    expect(matchingPython(requiresPython("25.6.0"), ["3.12"])).toBeUndefined();
  });

  test("a yanked release is never a target, and the refusal says where the catalog came from", () => {
    expect(planPath(real, "24.09.6", "24.12.1")).toMatchObject({ allowed: false, reason: expect.stringMatching(/24\.12\.1 cannot be installed: yanked on the index \(broken version\) \(catalog: the saved PyPI page; .*--catalog/) });
  });
});

describe("the bundled catalog is this page, refreshed", () => {
  test("same releases, dates and Requires-Python as the saved page", () => {
    expect(bundledCatalog().releases).toEqual(real.releases);
  });
  test("every yanked release of the page is in its skipped list, and the git tags without a distribution", () => {
    const skipped = new Map(bundledCatalog().skipped!.map((s) => [s.version, s.why]));
    for (const s of real.skipped!) expect(skipped.get(s.version)).toBe(s.why);
    for (const v of ["23.09.11", "24.09.8", "24.09.9", "24.09.10", "24.09.11", "24.09.12", "24.12.0", "25.1.0"]) expect(skipped.get(v)).toMatch(/^tagged in lablup\/backend\.ai .* no distribution/);
  });
});

describe("reading index pages", () => {
  test("file names to versions, project names to their page", () => {
    expect(versionOfFile("backend_ai_manager-24.9.3-py3-none-any.whl")).toBe("24.9.3");
    expect(versionOfFile("backend.ai-manager-1.0.0.tar.gz")).toBe("1.0.0");
    expect(normalizeProject("backend.ai-manager")).toBe("backend-ai-manager");
  });
  test("PEP 503 HTML: data-requires-python and data-yanked (escaped, empty reason)", () => {
    const html = `<a href="../x/backend_ai_manager-24.12.1-py3-none-any.whl#sha256=00" data-requires-python="&lt;3.13,&gt;=3.12" data-yanked="broken version">backend_ai_manager-24.12.1-py3-none-any.whl</a><br/>
<a href="../x/backend_ai_manager-24.9.6-py3-none-any.whl#sha256=01" data-requires-python="&lt;3.13,&gt;=3.12">backend_ai_manager-24.9.6-py3-none-any.whl</a>
<a href="../x/backend_ai_manager-22.3.11-py3-none-any.whl" data-yanked="">backend_ai_manager-22.3.11-py3-none-any.whl</a>`;
    expect(filesFromHtml(html).map((f) => [f.filename, f.requiresPython, f.yanked])).toEqual([
      ["backend_ai_manager-24.12.1-py3-none-any.whl", "<3.13,>=3.12", "broken version"],
      ["backend_ai_manager-24.9.6-py3-none-any.whl", "<3.13,>=3.12", false],
      ["backend_ai_manager-22.3.11-py3-none-any.whl", undefined, true],
    ]);
    const catalog = catalogFromPage(html, "text/html", "html", new Map([["24.09.6", "2025-02-07"]]));
    expect(catalog.releases).toEqual([{ version: "24.09.6", date: "2025-02-07", requiresPython: "<3.13,>=3.12" }]);
    expect(catalog.skipped?.map((s) => s.version)).toEqual(["22.03.11", "24.12.1"]);
  });
});

describe("Requires-Python", () => {
  test.each([
    [">=3.11,<3.12", "3.11", true],
    [">=3.11,<3.12", "3.12", false],
    ["<3.14,>=3.13", "3.13.5", true],
    ["~=3.12", "3.13", true],
    ["~=3.12.1", "3.13", false],
    ["==3.12.*", "3.12.4", true],
    ["!=3.12.*", "3.12.4", false],
    ["", "3.9", true],
  ])("%s admits %s: %s", (spec, version, ok) => expect(pythonSatisfies(spec, version)).toBe(ok));
});
