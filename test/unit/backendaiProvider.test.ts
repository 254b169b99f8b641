import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { check, diff } from "../../workflows/backendai/provider";
import { fingerprintOf, parseClusterConfig, parseClusterSettings, type ClusterSettings } from "../../workflows/backendai/settings";

// The provider's pure side: what the preview shows and refuses, before any host is touched.
const settings = (version: string, edit: (s: ClusterSettings) => void = () => {}): ClusterSettings => {
  const s: ClusterSettings = {
    version,
    hosts: [
      { component: "manager", ssh: { host: "10.0.0.5", user: "bai", privateKey: "KEY" }, python: "/opt/bai/manager/bin/python", pythons: { "3.12": "/usr/bin/python3.12" }, alembicIni: "/opt/bai/manager/alembic.ini" },
      { component: "agent", ssh: { host: "10.0.0.6", port: 2222, user: "bai", privateKey: "KEY" }, python: "/opt/bai/agent/bin/python", pythons: { "3.12": "/usr/bin/python3.12" } },
    ],
    packageIndex: { noIndex: true, findLinks: ["/srv/wheels"] },
  };
  edit(s);
  return s;
};
const inputs = (s: ClusterSettings, extra: Record<string, unknown> = {}) => ({ ...s, ...extra }) as Record<string, unknown> & { version: string };

describe("check", () => {
  test("plans the hops from the version in state and shows them as plannedPath", async () => {
    const result = await check({ version: "23.09.8" }, inputs(settings("24.03.2")));
    expect(result.failures ?? []).toEqual([]);
    expect(result.inputs?.plannedPath).toEqual(["23.09.10", "24.03.0", "24.03.2"]);
  });

  test("a new resource adopts the cluster: nothing planned before create reads the installed version", async () => {
    const result = await check({}, inputs(settings("24.03.2")));
    expect(result.failures ?? []).toEqual([]);
    expect(result.inputs?.plannedPath).toEqual([]);
  });

  test("an unchanged version keeps the last plan (the state may be mid-way after a failed hop)", async () => {
    const result = await check({ version: "24.03.2", plannedPath: ["24.03.0", "24.03.2"] }, inputs(settings("24.03.2")));
    expect(result.inputs?.plannedPath).toEqual(["24.03.0", "24.03.2"]);
  });

  test.each([
    ["24.03.1", /24\.03\.1 was never released.*nearest allowed change is to 24\.03\.2: 23\.09\.8 → 23\.09\.10 → 24\.03\.0 → 24\.03\.2/],
    ["23.09.6", /downgrades are not supported/],
    ["24.03.0rc1", /pre-release/],
    ["24.09.0", undefined],
  ])("from 23.09.8 to %s", async (to, refusal) => {
    const result = await check({ version: "23.09.8" }, inputs(settings(to)));
    if (refusal === undefined) {
      expect(result.failures ?? []).toEqual([]);
      // every 24.03 release published before 24.09.0, then 24.09.0
      const planned = result.inputs?.plannedPath as string[];
      expect(planned.slice(0, 3)).toEqual(["23.09.10", "24.03.0", "24.03.2"]);
      expect(planned.at(-1)).toBe("24.09.0");
      expect(planned.at(-2)).toMatch(/^24\.03\./);
    } else {
      expect(result.failures).toEqual([{ property: "version", reason: expect.stringMatching(refusal) }]);
    }
  });

  test("a hop whose release needs another Python fails the preview when a host names no matching interpreter", async () => {
    const result = await check({ version: "23.09.8" }, inputs(settings("24.03.2", (s) => delete s.hosts[1]!.pythons)));
    expect(result.failures).toEqual([
      {
        property: "hosts",
        reason: expect.stringMatching(/^Backend\.AI 23\.09\.8 → 24\.03\.2: hop 23\.09\.10 → 24\.03\.0 needs Python <3\.13,>=3\.12 \(Requires-Python of the release\), and no interpreter in `pythons` matches on agent; name one per host, e\.g\. pythons: \{ "3\.12": "\/usr\/bin\/python3\.12" \}/),
      },
    ]);
    // a 3.13 interpreter does not do for 24.03 either
    const wrong = await check({ version: "23.09.8" }, inputs(settings("24.03.2", (s) => (s.hosts[0]!.pythons = { "3.13": "/usr/bin/python3.13" }))));
    expect(wrong.failures?.[0]?.reason).toMatch(/no interpreter in `pythons` matches on manager/);
    // within a line, no interpreter change, none needed
    expect((await check({ version: "24.03.0" }, inputs(settings("24.03.2", (s) => s.hosts.forEach((h) => delete h.pythons))))).failures ?? []).toEqual([]);
  });

  test("a catalog in the settings replaces the shipped one", async () => {
    const catalog = { releases: [{ version: "30.01.0", date: "2030-01-10" }, { version: "30.01.1", date: "2030-02-10" }, { version: "30.01.2", date: "2030-03-10" }] };
    const result = await check({ version: "30.01.0" }, inputs(settings("30.01.2", (s) => (s.catalog = catalog))));
    // from 25.1 the project spells lines without a leading zero (30.1.1), as PyPI does
    expect(result.inputs?.plannedPath).toEqual(["30.1.1", "30.1.2"]);
  });

  test("invalid settings fail naming the key", async () => {
    const bad = inputs(settings("24.03.2"), {});
    (bad.hosts as Array<{ ssh: Record<string, unknown> }>)[1]!.ssh.port = 70000;
    (bad.hosts as Array<Record<string, unknown>>)[0]!.alembicIni = undefined;
    const result = await check({ version: "23.09.8" }, bad);
    expect(result.failures).toEqual([
      { property: "hosts", reason: expect.stringMatching(/^hosts\[1\]\.ssh\.port: .*65535/) },
      { property: "hosts", reason: "hosts[0].alembicIni: the manager needs the path of its alembic.ini" },
    ]);
  });

  test("exactly one manager, and it needs its alembic.ini", async () => {
    const two = await check({}, inputs(settings("24.03.2", (s) => (s.hosts[1]!.component = "manager"))));
    expect(two.failures).toContainEqual({ property: "hosts", reason: "hosts: exactly one host must be the manager (found 2)" });
    const noIni = await check({}, inputs(settings("24.03.2", (s) => delete s.hosts[0]!.alembicIni)));
    expect(noIni.failures).toEqual([{ property: "hosts", reason: "hosts[0].alembicIni: the manager needs the path of its alembic.ini" }]);
  });
});

describe("diff", () => {
  const state = (s: ClusterSettings) => ({ version: s.version, plannedPath: [], components: ["manager", "agent"], fingerprint: fingerprintOf(s) });

  test("a version change is an in-place update, never a replace", async () => {
    expect(await diff(state(settings("23.09.8")), inputs(settings("24.03.2")))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  });
  test("nothing changed: no update", async () => {
    expect((await diff(state(settings("24.03.2")), inputs(settings("24.03.2")))).changes).toBe(false);
  });
  test("a new key alone is no change (keys are not part of the fingerprint); a moved host is", async () => {
    expect((await diff(state(settings("24.03.2")), inputs(settings("24.03.2", (s) => (s.hosts[0]!.ssh.privateKey = "NEW"))))).changes).toBe(false);
    expect((await diff(state(settings("24.03.2")), inputs(settings("24.03.2", (s) => (s.hosts[1]!.ssh.host = "10.0.0.9"))))).changes).toBe(true);
  });
  test("a state left mid-way by a failed hop (outputs at 24.03.0, inputs at 24.03.2) is an update", async () => {
    expect((await diff(state(settings("24.03.0")), inputs(settings("24.03.2")))).changes).toBe(true);
  });
});

describe("own stack config", () => {
  const config = (ssh: Record<string, unknown>) => ({
    kind: "backendai",
    version: "24.03.2",
    hosts: [{ component: "manager", ssh: { host: "h", user: "u", ...ssh }, python: "/p", alembicIni: "/a.ini" }],
  });
  test("a key comes from a file or a secret config key, never in clear", () => {
    expect("config" in parseClusterConfig(config({ privateKeyPath: "~/.ssh/bai" }))).toBe(true);
    expect("config" in parseClusterConfig(config({ privateKeyConfig: "baiKey" }))).toBe(true);
    expect(parseClusterConfig(config({ privateKey: "-----BEGIN" }), "upgrade-orchestrator:systems.bai")).toEqual({
      issues: [
        { key: "upgrade-orchestrator:systems.bai.hosts[0].ssh", message: expect.stringMatching(/privateKey/) },
        { key: "upgrade-orchestrator:systems.bai.hosts[0].ssh", message: expect.stringMatching(/exactly one of privateKeyPath/) },
      ],
    });
    expect(parseClusterConfig(config({}), "x")).toEqual({ issues: [expect.objectContaining({ key: "x.hosts[0].ssh", message: expect.stringMatching(/exactly one of privateKeyPath/) })] });
  });
  test("the resource's own settings schema wants the key itself", () => {
    expect(parseClusterSettings(config({ privateKeyPath: "k" }))).toEqual({ issues: expect.arrayContaining([expect.objectContaining({ key: "(top level)" })]) });
  });
});

test("the shipped example stack config is valid", () => {
  const file = path.join(__dirname, "..", "..", "stacks", "config", "Pulumi.example.yaml");
  const config = (yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, Record<string, unknown>> }).config;
  const systems = config["upgrade-orchestrator:systems"]!;
  expect(Object.keys(systems).length).toBeGreaterThan(0);
  for (const [name, system] of Object.entries(systems)) {
    expect([name, parseClusterConfig(system, name)]).toEqual([name, { config: expect.objectContaining({ kind: "backendai" }) }]);
  }
});
