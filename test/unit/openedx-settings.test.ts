import { maintenancePage } from "../../workflows/openedx/runbook";
import { DEFAULT_COMMANDS } from "../../workflows/openedx/hostSettings";
import { fingerprintOf } from "../../workflows/openedx/provider";
import { fill, parseFleetConfig, parseFleetSettings } from "../../workflows/openedx/settings";

const valid = (): Record<string, any> => ({
  release: "sumac.3",
  phase: "prepared",
  fleet: "mitx-residential",
  amis: { web: "ami-0123456789abcdef0", worker: "ami-0123456789abcdef1" },
  blue: { release: "redwood.3", web: { tags: { environment: "mitx-production", purpose: "current-residential-live", role: "edx" } }, worker: ["i-0123456789abcdef1"] },
  sites: [
    { name: "lms", loadBalancer: { type: "classic", name: "edx-current-residential-live-mitx-production" }, records: ["lms.example.edu"], verify: { checks: [{ url: "/heartbeat", json: { "sql.status": true } }] } },
    { name: "studio", loadBalancer: { type: "classic", name: "edx-studio-mitx-production" }, records: ["studio.example.edu"] },
  ],
  dns: { hostedZoneId: "Z123" },
  maintenance: { distributionId: "E123", bucket: "maint", windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "help@example.edu" },
  ssh: { user: "ubuntu", privateKey: "KEY-MATERIAL" },
});

test("valid settings get the defaults of Open edX's native installation (supervisor), the known release steps, heartbeats", () => {
  const parsed = parseFleetSettings(valid());
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  const s = parsed.settings;
  expect(s.host.layout).toBe("supervisor");
  expect(s.host.commands).toEqual(DEFAULT_COMMANDS.supervisor);
  expect(s.host.commands.stop).toBe("sudo /edx/bin/supervisorctl stop all");
  expect(s.host.deadlines).toEqual({ status: 60, stop: 900, start: 300, migrate: 3600, releaseStep: 7200 });
  expect(s.releaseSteps.sumac).toEqual([{ id: "reindex-studio", service: "cms", args: "reindex_studio --experimental --incremental" }]);
  expect(s.heartbeats.workers).toEqual({ url: "http://{privateIp}/heartbeat?extended" });
  expect(s.blue.worker).toEqual({ ids: ["i-0123456789abcdef1"] });
  expect(s.sites[0]!.verify!.baseUrl).toBe("https://{loadBalancerDns}");
  expect(s.maintenance.key).toBe("index.html");
});

test("the compose layout: its documented commands, a command replaced, composeFile required", () => {
  const input = valid();
  input.host = { layout: "compose", composeFile: "/etc/edxapp/docker-compose.yaml", commands: { stop: "docker compose -f {composeFile} stop --timeout 600" }, deadlines: { stop: 1200 } };
  const parsed = parseFleetSettings(input);
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  expect(parsed.settings.host.commands).toEqual({ ...DEFAULT_COMMANDS.compose, stop: "docker compose -f {composeFile} stop --timeout 600" });
  expect(parsed.settings.host.deadlines.stop).toBe(1200);
  expect(parsed.settings.host.deadlines.migrate).toBe(3600);
  delete input.host.composeFile;
  const missing = parseFleetSettings(input);
  expect("issues" in missing && missing.issues.map((i) => i.key)).toEqual(["host.composeFile"]);
});

test("release steps of the settings add to the known ones: a known id is replaced, skip leaves it out, others follow", () => {
  const REINDEX = { id: "reindex-studio", service: "cms", args: "reindex_studio --experimental --incremental" };
  const steps = (releaseSteps: unknown) => {
    const parsed = parseFleetSettings({ ...valid(), releaseSteps });
    if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
    return parsed.settings.releaseSteps;
  };
  const own = { id: "rebuild-theme", command: "sudo /edx/bin/update-theme" };
  // adding a step to sumac (or another release) keeps Sumac's reindex: it used to be dropped silently
  expect(steps({ sumac: [own] }).sumac).toEqual([REINDEX, own]);
  expect(steps({ teak: [own] })).toEqual({ sumac: [REINDEX], teak: [own] });
  // the known step replaced by id (in place), or left out
  const faster = { id: "reindex-studio", service: "cms", args: "reindex_studio --experimental" };
  expect(steps({ sumac: [own, faster] }).sumac).toEqual([faster, own]);
  expect(steps({ sumac: [{ id: "reindex-studio", skip: true }] }).sumac).toEqual([]);
  const bad = parseFleetSettings({ ...valid(), releaseSteps: { sumac: [{ id: "reindex-studio", skip: true, args: "x" }] } });
  expect("issues" in bad && bad.issues[0]!.message).toMatch(/only skip: true/);
});

test.each([
  ["release", (s: Record<string, any>) => (s.release = "teak.1"), /redwood\.3 → teak\.1 skips sumac/],
  ["release", (s: Record<string, any>) => ((s.release = "redwood.3"), (s.blue.release = "sumac.3")), /downgrade \(Sumac → Redwood\)/],
  ["release", (s: Record<string, any>) => (s.release = "sumac"), /not an Open edX release/],
  ["blue.release", (s: Record<string, any>) => (s.blue.release = "redwood-3"), /not an Open edX release/],
  ["amis.web", (s: Record<string, any>) => (s.amis.web = "web-ami"), /AMI id/],
  ["blue.web", (s: Record<string, any>) => (s.blue.web = {}), /give ids, names, tags or autoScalingGroup/],
  ["phase", (s: Record<string, any>) => (s.phase = "done"), /prepared|live/],
  ["green", (s: Record<string, any>) => (s.green = { web: ["i-0123456789abcdef1"] }), /both the blue and the green fleet/],
  ["sites[1].name", (s: Record<string, any>) => (s.sites[1].name = "lms"), /given twice/],
  ["sites", (s: Record<string, any>) => delete s.sites[0].verify, /give verify checks/],
  ["sites[0].loadBalancer.targetGroupArns", (s: Record<string, any>) => (s.sites[0].loadBalancer = { type: "alb", targetGroupArns: [] }), /.+/],
  ["maintenance.windowStart", (s: Record<string, any>) => (s.maintenance.windowStart = "next friday"), /ISO 8601/],
  ["releaseSteps.sumac[0]", (s: Record<string, any>) => (s.releaseSteps = { sumac: [{ id: "x", args: "reindex_studio" }] }), /either command, or service and args/],
])("an error names the key: %s", (key, mutate, message) => {
  const input = valid();
  mutate(input);
  const parsed = parseFleetConfig({ ...input, kind: "openedx", ssh: { user: "u", privateKeyConfig: "k" } }, "upgrade-orchestrator:systems.mitx");
  expect("issues" in parsed).toBe(true);
  const issue = (parsed as { issues: Array<{ key: string; message: string }> }).issues.find((i) => i.key === `upgrade-orchestrator:systems.mitx.${key}`);
  expect(issue?.message).toMatch(message);
});

test("sumac.master is accepted after redwood.3, and within sumac", () => {
  expect("settings" in parseFleetSettings({ ...valid(), release: "sumac.master" })).toBe(true);
  expect("settings" in parseFleetSettings({ ...valid(), release: "sumac.master", blue: { ...valid().blue, release: "sumac.3" } })).toBe(true);
});

test("an own stack's ssh takes a key file or a secret config key, exactly one", () => {
  const parsed = parseFleetConfig({ ...valid(), kind: "openedx", ssh: { user: "u", privateKeyPath: "/k", privateKeyConfig: "k" } }, "s");
  expect((parsed as { issues: Array<{ key: string }> }).issues.map((i) => i.key)).toEqual(["s.ssh"]);
});

test("placeholders are filled; unknown ones stay visible", () => {
  expect(fill("/edx/{instanceId}/migrate-{service} {other}", { instanceId: "i-1", service: "lms" })).toBe("/edx/i-1/migrate-lms {other}");
});

test("the maintenance page says when, how long and whom to ask, escaped", () => {
  const page = maintenancePage({ distributionId: "E", bucket: "b", key: "index.html", windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "<ops@example.edu>" });
  expect(page).toContain("Sat, 19 Dec 2026 13:00:00 GMT");
  expect(page).toContain("about 90 minutes");
  expect(page).toContain("&lt;ops@example.edu&gt;");
});

test("the fingerprint leaves out the SSH key, the release and the phase", () => {
  const parsed = parseFleetSettings(valid());
  if (!("settings" in parsed)) throw new Error("invalid");
  const a = fingerprintOf(parsed.settings);
  const b = fingerprintOf({ ...parsed.settings, release: "teak.1", phase: "live", ssh: { ...parsed.settings.ssh, privateKey: "OTHER" } });
  expect(a).toBe(b);
  expect(a).not.toContain("KEY-MATERIAL");
});
