import { failedChecks, probeFailure } from "../../workflows/openedx/checks";
import { parseStatus } from "../../workflows/openedx/hostSettings";
import { parseRelease, releasesEntered, RELEASE_ORDER, upgradeRefusal } from "../../workflows/openedx/releases";

test("the named releases in Open edX's order, ending … quince, redwood, sumac, teak, ulmo, verawood", () => {
  expect(RELEASE_ORDER.slice(-6)).toEqual(["quince", "redwood", "sumac", "teak", "ulmo", "verawood"]);
  expect(RELEASE_ORDER[0]).toBe("aspen");
  expect(new Set(RELEASE_ORDER).size).toBe(RELEASE_ORDER.length);
  // alphabetical: A, B, C … each letter once
  expect(RELEASE_ORDER.map((n) => n[0]).join("")).toBe("abcdefghijklmnopqrstuv");
});

test.each([
  ["sumac.3", { name: "sumac", form: "point", number: 3 }],
  ["teak.rc1", { name: "teak", form: "rc", number: 1 }],
  ["sumac.master", { name: "sumac", form: "master" }],
])("parses %s", (text, want) => {
  const r = parseRelease(text);
  expect(typeof r).toBe("object");
  expect(r).toMatchObject(want);
});

test.each([
  ["sumac", /not an Open edX release/],
  ["Sumac.3", /not an Open edX release/],
  ["sumac.0", /start at \.1/],
  ["willow.1", /not a named Open edX release known here/],
  ["sumac.3.1", /not an Open edX release/],
])("refuses %s", (text, message) => {
  expect(parseRelease(text)).toMatch(message);
});

test.each([
  ["redwood.3", "sumac.3"],
  ["redwood.3", "sumac.master"],
  ["redwood.3", "sumac.rc1"],
  ["sumac.1", "sumac.3"],
  ["sumac.rc2", "sumac.1"],
  ["sumac.3", "sumac.master"],
  ["sumac.master", "sumac.3"],
  ["sumac.master", "teak.1"],
  ["teak.2", "ulmo.1"],
  ["ulmo.2", "verawood.1"],
  ["sumac.3", "sumac.3"],
])("allowed: %s → %s", (from, to) => {
  expect(upgradeRefusal(from, to)).toBeUndefined();
});

test.each([
  ["redwood.3", "teak.1", /skips sumac.*one named release at a time.*upgrade to sumac first/],
  ["quince.3", "teak.1", /skips redwood, sumac/],
  ["sumac.3", "redwood.3", /older than sumac\.3: a downgrade \(Sumac → Redwood\)/],
  ["sumac.3", "sumac.2", /downgrade within sumac/],
  ["sumac.1", "sumac.rc3", /downgrade within sumac/],
  ["sumac.3", "willow.1", /not a named Open edX release/],
])("refused: %s → %s", (from, to, message) => {
  expect(upgradeRefusal(from, to)).toMatch(message);
});

test("the releases an upgrade enters (whose steps run after the migrations)", () => {
  expect(releasesEntered("redwood.3", "sumac.3")).toEqual(["sumac"]);
  expect(releasesEntered("redwood.3", "sumac.master")).toEqual(["sumac"]);
  expect(releasesEntered("sumac.1", "sumac.3")).toEqual([]);
  expect(releasesEntered("sumac.3", "teak.1")).toEqual(["teak"]);
});

// edx-platform's heartbeat body (openedx/core/djangoapps/heartbeat/views.py + default_checks.py):
// {"<check>": {"status": bool, "message": str}}, 200 when all are true, 503 otherwise.
const ok = { modulestore: { status: true, message: "OK" }, sql: { status: true, message: "OK" } };
const probe = (status: number, body: unknown) => ({ url: "http://10.0.0.5/heartbeat", status, body: JSON.stringify(body) });

test("heartbeats: every check true passes; a failing check is named with its message, whatever the status", () => {
  expect(probeFailure(probe(200, ok), {}, { allChecksTrue: true })).toBeUndefined();
  const failing = { ...ok, celery: { status: false, message: "expired" } };
  expect(probeFailure(probe(503, failing), {}, { allChecksTrue: true })).toBe("http://10.0.0.5/heartbeat: HTTP 503, failing check(s) celery (expired)");
  expect(probeFailure(probe(503, { error: "boom" }), {}, { allChecksTrue: true })).toMatch(/failing check\(s\) error \(boom\)/);
  expect(probeFailure({ url: "u", body: "", error: "connect ECONNREFUSED" }, {}, { allChecksTrue: true })).toMatch(/ECONNREFUSED \(expected HTTP 200\)/);
  expect(failedChecks("not json")).toEqual([]);
});

test("verification checks: status, text, JSON fields by dotted path", () => {
  expect(probeFailure(probe(200, ok), { json: { "sql.status": true, "sql.message": "OK" } })).toBeUndefined();
  expect(probeFailure(probe(200, ok), { json: { "celery.status": true } })).toMatch(/celery\.status is absent, not true/);
  expect(probeFailure(probe(200, ok), { json: { "sql.status": false } })).toMatch(/sql\.status is true, not false/);
  expect(probeFailure(probe(200, ok), { text: "modulestore" })).toBeUndefined();
  expect(probeFailure(probe(200, ok), { status: 204 })).toMatch(/expected HTTP 204/);
});

test("process status in either layout", () => {
  expect(parseStatus("supervisor", "lms                              RUNNING   pid 12, uptime 0:01:02\ncms    STOPPED   Dec 03 01:02 PM\nworker EXITED Dec 03\n")).toEqual({ lms: "RUNNING", cms: "STOPPED", worker: "STOPPED" });
  const lines = [{ Service: "lms", State: "running" }, { Service: "cms", State: "exited" }, { Service: "lms-worker", State: "restarting" }].map((r) => JSON.stringify(r)).join("\n");
  expect(parseStatus("compose", lines)).toEqual({ lms: "RUNNING", cms: "STOPPED", "lms-worker": "RESTARTING" });
  expect(parseStatus("compose", JSON.stringify([{ Service: "lms", State: "running" }]))).toEqual({ lms: "RUNNING" });
  expect(() => parseStatus("compose", "NAME IMAGE\n")).toThrow();
});

test("selectors: tags (one value or any of several) and Name wildcards must all match", async () => {
  const { selectorMismatch } = await import("../../workflows/openedx/instances");
  const i = { id: "i-0123456789abcdef0", state: "running", tags: { Name: "edx-mitx-production-current-residential-live-0-v3", environment: "mitx-production", role: "edx" }, raw: {} };
  expect(selectorMismatch({ tags: { environment: "mitx-production", role: ["edx", "edx-worker"] } }, i)).toBeUndefined();
  expect(selectorMismatch({ names: ["edx-mitx-production-*-v?"] }, i)).toBeUndefined();
  expect(selectorMismatch({ tags: { environment: "mitx-qa" } }, i)).toBe('its tag environment is "mitx-production", not mitx-qa');
  expect(selectorMismatch({ tags: { purpose: "draft" } }, i)).toBe("its tag purpose is null, not draft");
  expect(selectorMismatch({ names: ["edx-mitx-qa-*"] }, i)).toMatch(/matches none of edx-mitx-qa-\*/);
});
