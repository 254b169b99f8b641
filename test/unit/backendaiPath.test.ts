import { checkHop, parseVersion, planPath, type Catalog } from "../../workflows/backendai/versions";
import { shippedCatalog } from "../../workflows/backendai/catalog";

const catalog = shippedCatalog();
const plan = (from: string, to: string) => planPath(catalog, from, to);

describe("the shipped catalog carries the real gaps", () => {
  const versions = new Set(catalog.releases.map((r) => r.version));
  test.each(["23.09.7", "23.09.9", "24.03.1"])("%s was never a final release", (v) => expect(versions.has(v)).toBe(false));
  test.each(["23.03.0", "23.03.12", "23.09.11", "24.03.11", "24.09.0", "24.09.14", "24.12.0", "24.12.1", "25.1.0"])("%s is", (v) => expect(versions.has(v)).toBe(true));
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
    expect(result.path).toEqual(["23.03.12", "23.09.0", "23.09.1", "23.09.2", "23.09.3", "23.09.4", "23.09.5", "23.09.6", "23.09.8", "23.09.10", "24.03.0"]);
    expect(result.notes.join("\n")).toMatch(/23\.03\.12 \(2023-09-06\) is the latest 23\.03 release published before 23\.09\.0 \(2023-09-28\)/);
  });
  test("forbidden: 23.09.9 → 24.03.0 as a hop", () => {
    expect(checkHop(catalog, "23.09.9", "24.03.0")).toEqual({ allowed: false, reason: expect.stringMatching(/never released/) });
    expect(checkHop(catalog, "23.09.8", "24.03.0")).toEqual({ allowed: false, reason: expect.stringMatching(/starts from 23\.09\.10/) });
  });
  test("forbidden: 23.03.0 → 24.03.0 as a hop (skips 23.09); the plan goes through 23.09.10", () => {
    expect(checkHop(catalog, "23.03.0", "24.03.0")).toEqual({ allowed: false, reason: "skips the major release 23.09" });
    const result = plan("23.03.0", "24.03.0");
    expect(result.allowed && result.path.slice(-3)).toEqual(["23.09.8", "23.09.10", "24.03.0"]);
    expect(result.allowed && result.path[0]).toBe("23.03.1");
  });
});

describe("planning", () => {
  test("minor upgrades walk every release of the line, over the gaps", () => {
    expect(plan("23.09.6", "23.09.11")).toMatchObject({ allowed: true, path: ["23.09.8", "23.09.10", "23.09.11"] });
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
  test("across 24.09 and 24.12 into the new numbering", () => {
    const result = plan("24.09.4", "25.1.0");
    expect(result).toMatchObject({ allowed: true });
    expect(result.allowed && result.path).toEqual(["24.12.0", "24.12.1", "25.1.0"]);
  });
  test("refusals: downgrade, unknown, pre-release, malformed; the same version is a no-op", () => {
    expect(plan("24.03.2", "23.09.10")).toMatchObject({ allowed: false, reason: expect.stringMatching(/downgrades are not supported/) });
    expect(plan("23.09.8", "24.03.1")).toMatchObject({ allowed: false, reason: expect.stringMatching(/24\.03\.1 was never released/), nearest: { to: "24.03.2", path: ["23.09.10", "24.03.0", "24.03.2"] } });
    expect(plan("23.09.8", "24.03.0rc4")).toMatchObject({ allowed: false, reason: expect.stringMatching(/pre-release/) });
    expect(plan("latest", "24.03.0")).toMatchObject({ allowed: false, reason: expect.stringMatching(/not a Backend\.AI version/) });
    expect(plan("22.09.1", "23.03.1")).toMatchObject({ allowed: false, reason: expect.stringMatching(/not in the release catalog/) });
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
