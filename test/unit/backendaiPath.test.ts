import { checkHop, parseVersion, planPath, type Catalog } from "../../workflows/backendai/versions";
import { bundledCatalog } from "../../workflows/backendai/catalog";

const catalog = bundledCatalog();
const plan = (from: string, to: string) => planPath(catalog, from, to);

describe("the bundled catalog carries the real gaps", () => {
  const versions = new Set(catalog.releases.map((r) => r.version));
  const skipped = new Set(catalog.skipped?.map((r) => r.version));
  test.each(["23.09.7", "23.09.9", "24.03.1"])("%s was never a final release", (v) => expect([versions.has(v), skipped.has(v)]).toEqual([false, false]));
  test.each(["23.03.0", "23.03.12", "24.03.11", "24.09.0", "24.09.14", "25.1.1", "25.19.2", "26.9.6"])("%s is installable", (v) => expect(versions.has(v)).toBe(true));
  test.each(["23.03.1", "23.09.4", "23.09.11", "24.09.7", "24.09.8", "24.09.12", "24.12.0", "24.12.1", "25.1.0"])("%s is known and never planned", (v) => expect([versions.has(v), skipped.has(v)]).toEqual([false, true]));
  test("it says where it came from and when", () => {
    expect(catalog.source).toMatch(/bundled catalog.*pypi\.org\/simple\/backend-ai-manager.*read on \d{4}-\d{2}-\d{2}/);
  });
});

describe("RUNBOOKS.md examples", () => {
  test("allowed: 23.09.10 → 24.03.0 (a direct hop, and the plan)", () => {
    expect(checkHop(catalog, "23.09.10", "24.03.0").allowed).toBe(true);
    expect(plan("23.09.10", "24.03.0")).toMatchObject({ allowed: true, path: ["24.03.0"] });
  });
  test("allowed: 23.09.10 → 24.03.5 (direct hop allowed; the plan walks 24.03 in order)", () => {
    expect(checkHop(catalog, "23.09.10", "24.03.5").allowed).toBe(true);
    expect(plan("23.09.10", "24.03.5")).toMatchObject({ allowed: true, path: ["24.03.0", "24.03.2", "24.03.3", "24.03.4", "24.03.5"] });
  });
  test("allowed: 23.09.9 → 23.09.10 → 24.03.0 — except that 23.09.9 only ever existed as rc1", () => {
    expect(plan("23.09.9", "24.03.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/23\.09\.9 was never released .*23\.09\.8 and 23\.09\.10/) });
    expect(checkHop(catalog, "23.09.10", "24.03.0").allowed).toBe(true);
  });
  test("allowed: 23.03.11 → 23.09.0 → … → 23.09.10 → 24.03.0; the plan adds 23.03.12, the true latest 23.03 before 23.09.0", () => {
    const result = plan("23.03.11", "24.03.0");
    expect(result.allowed).toBe(true);
    if (!result.allowed) return;
    expect(result.path).toEqual(["23.03.12", "23.09.0", "23.09.1", "23.09.2", "23.09.3", "23.09.5", "23.09.6", "23.09.8", "23.09.10", "24.03.0"]);
    expect(result.notes).toContain("skipped 23.09.4: yanked on the index (Shipped with invalid static webui bundle)");
    expect(result.notes.join("\n")).toMatch(/23\.03\.12 \(2023-09-05\) is the latest 23\.03 release published before 23\.09\.0 \(2023-09-28\)/);
  });
  test("forbidden: 23.09.9 → 24.03.0 as a hop", () => {
    expect(checkHop(catalog, "23.09.9", "24.03.0")).toEqual({ allowed: false, reason: expect.stringMatching(/never released/) });
    expect(checkHop(catalog, "23.09.8", "24.03.0")).toEqual({ allowed: false, reason: expect.stringMatching(/starts from 23\.09\.10/) });
  });
  test("forbidden: 23.03.0 → 24.03.0 as a hop (skips 23.09); the plan goes through 23.09.10", () => {
    expect(checkHop(catalog, "23.03.0", "24.03.0")).toEqual({ allowed: false, reason: "skips the major release 23.09" });
    const result = plan("23.03.0", "24.03.0");
    expect(result.allowed && result.path.slice(-3)).toEqual(["23.09.8", "23.09.10", "24.03.0"]);
    expect(result.allowed && result.path[0]).toBe("23.03.2");
    expect(result.allowed && result.notes).toContain("skipped 23.03.1: yanked on the index (lablup/backend.ai#1261)");
  });
});

describe("planning", () => {
  test("minor upgrades walk every release of the line, over the gaps", () => {
    expect(plan("23.09.6", "23.09.10")).toMatchObject({ allowed: true, path: ["23.09.8", "23.09.10"] });
    expect(plan("23.09.3", "23.09.6")).toMatchObject({ allowed: true, path: ["23.09.5", "23.09.6"], notes: expect.arrayContaining([expect.stringMatching(/skipped 23\.09\.4: yanked/)]) });
    expect(plan("24.03.0", "24.03.3")).toMatchObject({ allowed: true, path: ["24.03.2", "24.03.3"] });
  });
  test("23.09.8 → 24.03.2 (the acceptance example)", () => {
    expect(plan("23.09.8", "24.03.2")).toMatchObject({ allowed: true, path: ["23.09.10", "24.03.0", "24.03.2"] });
  });
  test("a release newer than the gate enters the next line at the first release published after it", () => {
    expect(plan("23.09.11", "24.03.8")).toMatchObject({ allowed: true, path: ["24.03.7", "24.03.8"] });
    expect(plan("23.09.11", "24.03.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/published before 23\.09\.11/), nearest: { to: "24.03.7", path: ["24.03.7"] } });
  });
  test("24.03 → 24.09 leaves 24.03 from 24.03.11, released the same day as 24.09.0 (the revision history 24.09 bundles)", () => {
    const result = plan("24.03.2", "24.09.0");
    expect(result.allowed && result.path.slice(-3)).toEqual(["24.03.10", "24.03.11", "24.09.0"]);
    expect(checkHop(catalog, "24.03.10", "24.09.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/starts from 24\.03\.11/) });
    expect(checkHop(catalog, "24.03.11", "24.09.0").allowed).toBe(true);
  });
  test("across 24.09 and 24.12 into the new numbering: only installable releases, the rest named", () => {
    expect(plan("24.09.4", "25.1.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/25\.1\.0 cannot be installed: tagged .* no distribution on the index/), nearest: { to: "25.1.1", path: ["24.09.5", "25.1.1"] } });
    const result = plan("24.09.4", "25.1.1");
    expect(result).toMatchObject({ allowed: true, path: ["24.09.5", "25.1.1"] });
    expect(result.allowed && result.notes).toEqual(expect.arrayContaining(["skipped 24.12.0: tagged in lablup/backend.ai (2024-12-30) but no distribution on the index", "skipped 24.12.1: yanked on the index (broken version)"]));
  });
  test("the new numbering: a line cut before the current release and done since is skipped, later lines are entered", () => {
    expect(plan("25.6.17", "26.1.0")).toMatchObject({ allowed: true, path: ["25.19.0", "25.19.1", "25.19.2", "26.1.0"] });
    expect(plan("25.11.0", "25.13.0")).toMatchObject({ allowed: true, path: ["25.11.1", "25.11.2", "25.12.0", "25.12.1", "25.13.0"] });
    expect(checkHop(catalog, "25.6.17", "25.19.0")).toMatchObject({ allowed: true });
    expect(checkHop(catalog, "25.11.0", "25.13.0")).toMatchObject({ allowed: false, reason: "skips the major release 25.12" });
    // 25.5.2 (2025-03) cannot be reached from 24.09.14 (2025-09): it would lose 24.09.14's fixes
    expect(plan("24.09.14", "25.5.2")).toMatchObject({ allowed: false, reason: expect.stringMatching(/no 25\.1 release was published after 24\.09\.14/) });
  });
  test("a cluster on a release yanked since is planned from it", () => {
    expect(plan("24.09.7", "25.3.0")).toMatchObject({ allowed: true, path: ["25.3.0"], notes: expect.arrayContaining([expect.stringMatching(/24\.09\.7 runs now but yanked on the index \(corrupted database revision\)/)]) });
  });
  test("refusals: downgrade, unknown, pre-release, malformed; the same version is a no-op", () => {
    expect(plan("24.03.2", "23.09.10")).toMatchObject({ allowed: false, reason: expect.stringMatching(/downgrades are not supported/) });
    expect(plan("23.09.8", "24.03.1")).toMatchObject({ allowed: false, reason: expect.stringMatching(/24\.03\.1 was never released/), nearest: { to: "24.03.2", path: ["23.09.10", "24.03.0", "24.03.2"] } });
    expect(plan("23.09.8", "24.03.0rc4")).toMatchObject({ allowed: false, reason: expect.stringMatching(/pre-release/) });
    expect(plan("latest", "24.03.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/not a Backend\.AI version/) });
    expect(plan("18.09.1", "23.03.2")).toMatchObject({ allowed: false, reason: expect.stringMatching(/18\.09\.1 is not in the release catalog .*catalog: the bundled catalog .*`catalog` setting.*backendai path --catalog/) });
    expect(plan("23.03.0", "23.03.1")).toMatchObject({ allowed: false, reason: expect.stringMatching(/23\.03\.1 cannot be installed: yanked on the index.*catalog: the bundled catalog/) });
    expect(plan("24.03.2", "24.03.2")).toMatchObject({ allowed: true, path: [] });
  });
  test("PyPI's spelling (23.9.8) is read as the release 23.09.8", () => {
    expect(plan("23.9.8", "23.9.10")).toMatchObject({ allowed: true, from: "23.09.8", path: ["23.09.10"] });
  });
  test("a catalog override (config) is honoured", () => {
    const small: Catalog = { releases: [{ version: "26.1.0", date: "2026-01-10" }, { version: "26.1.1", date: "2026-02-01" }, { version: "26.4.0", date: "2026-04-01" }] };
    expect(planPath(small, "26.1.0", "26.4.0")).toMatchObject({ allowed: true, path: ["26.1.1", "26.4.0"] });
  });
  test("parseVersion", () => {
    expect(parseVersion("24.03.11")).toEqual({ year: 24, line: 3, patch: 11 });
    expect(parseVersion("24.03")).toHaveProperty("error");
  });
});
