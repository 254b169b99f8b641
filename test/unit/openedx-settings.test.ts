import { maintenancePage } from "../../workflows/openedx/cutover";
import { fingerprintOf } from "../../workflows/openedx/provider";
import { fill, parseFleetConfig, parseFleetSettings } from "../../workflows/openedx/settings";

const valid = () => ({
  release: "sumac.3",
  phase: "prepared",
  fleet: "mitx-residential",
  amis: { web: "ami-0123456789abcdef0", worker: "ami-0123456789abcdef1" },
  blue: { release: "redwood.3", web: ["i-0123456789abcdef0"], worker: ["i-0123456789abcdef1"] },
  loadBalancer: { type: "classic", name: "mitx-lms" },
  dns: { hostedZoneId: "Z123", records: ["lms.example.edu", "studio.example.edu"] },
  maintenance: { distributionId: "E123", bucket: "maint", windowStart: "2026-12-19T13:00:00Z", windowMinutes: 90, contact: "help@example.edu" },
  ssh: { user: "ubuntu", privateKey: "KEY-MATERIAL" },
  verify: { baseUrl: "https://lb.example.edu", checks: [{ path: "/heartbeat" }] },
});

test("valid settings get the defaults of Open edX's native installation", () => {
  const parsed = parseFleetSettings(valid());
  if (!("settings" in parsed)) throw new Error(JSON.stringify(parsed.issues));
  expect(parsed.settings.commands).toEqual({ supervisorctl: "sudo /edx/bin/supervisorctl", migrate: "sudo /edx/bin/edxapp-migrate-{service}" });
  expect(parsed.settings.instanceUrl).toBe("http://{privateIp}");
  expect(parsed.settings.maintenance.key).toBe("index.html");
});

test.each([
  ["amis.web", (s: Record<string, any>) => (s.amis.web = "web-ami"), /AMI id/],
  ["blue.web[0]", (s: Record<string, any>) => (s.blue.web = ["web-1"]), /instance id/],
  ["phase", (s: Record<string, any>) => (s.phase = "done"), /prepared|live/],
  ["release", (s: Record<string, any>) => (s.release = "redwood.3"), /prepared needs a new release/],
  ["green", (s: Record<string, any>) => (s.green = { web: ["i-0123456789abcdef0"] }), /both the blue and the green fleet/],
  ["loadBalancer.targetGroupArns", (s: Record<string, any>) => (s.loadBalancer = { type: "alb", targetGroupArns: [] }), /.+/],
  ["maintenance.windowStart", (s: Record<string, any>) => (s.maintenance.windowStart = "next friday"), /ISO 8601/],
])("an error names the key: %s", (key, mutate, message) => {
  const input = valid();
  mutate(input);
  const parsed = parseFleetConfig({ ...input, kind: "openedx", ssh: { user: "u", privateKeyConfig: "k" } }, "upgrade-orchestrator:systems.mitx");
  expect("issues" in parsed).toBe(true);
  const issue = (parsed as { issues: Array<{ key: string; message: string }> }).issues.find((i) => i.key === `upgrade-orchestrator:systems.mitx.${key}`);
  expect(issue?.message).toMatch(message);
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
