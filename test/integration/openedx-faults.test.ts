import * as fs from "node:fs";
import { startCli } from "../sandbox/cli";
import { startOpenEdxFleet, type OpenEdxFixture } from "../sandbox/openedx";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Bad input and faults of the Open edX cut-over, in the order an unlucky window meets them, on one
// fixture fleet: refusals change nothing; each failed live run rolls back to blue (DNS at the load
// balancer, blue serves, the state stays `prepared`), so the next case starts from there; a kill -9
// in step 4 and an `up` under Route 53 throttling finish the cut-over.
let bed: Sandbox;
let fleet: OpenEdxFixture;
let own: OwnStack;
type Options = Parameters<OpenEdxFixture["systemConfig"]>[0];

const configure = (o: Omit<Options, "keyConfig">) => own.setSystems({ mitx: fleet.systemConfig({ ...o, keyConfig: "edxSshKey" }) });

async function up() {
  const { result, diagnostics } = await upOwnStack(bed, own);
  return { result, diagnostics, message: result.error?.message ?? "" };
}

/** What a refused run must leave as it was. */
async function world() {
  return {
    instances: await fleet.instanceStates([]),
    records: await fleet.records(),
    registered: [await fleet.registered("lms"), await fleet.registered("studio")],
    page: await fleet.maintenancePage(),
    outputs: (await own.stack.outputs()).versions?.value,
  };
}

const atLbs = () => ({ "lms.mitx.example.edu": fleet.lbDnsNames.lms, "studio.mitx.example.edu": fleet.lbDnsNames.studio });
const release = async (site: "lms" | "studio" = "lms") => /release ([^<\s]+)</.exec((await fleet.throughLb("/", site)).body)?.[1];
const lbDnsMessage = () => `lms: DNS points at its load balancer (${fleet.lbDnsNames.lms}); studio: DNS points at its load balancer (${fleet.lbDnsNames.studio})`;

/** After a rollback: each site's DNS at its load balancer, only blue registered in each, blue serves redwood.3. */
async function expectBlueServes() {
  expect(await fleet.records()).toEqual(atLbs());
  for (const site of ["lms", "studio"] as const) expect(await fleet.registered(site)).toEqual([...fleet.blue.web].sort());
  for (let i = 0; i < 2; i++) {
    expect((await fleet.throughLb("/heartbeat")).status).toBe(200);
    expect([await release("lms"), await release("studio")]).toEqual(["redwood.3", "redwood.3"]);
  }
  for (const id of [...fleet.blue.web, ...fleet.blue.worker]) expect(Object.values(fleet.processStatus(id)).every((s) => s === "RUNNING")).toBe(true);
  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("redwood.3");
}

beforeAll(async () => {
  bed = await startSandbox({ motoEnv: { MOTO_ENABLE_AMI_VALIDATION: "true" } });
  bed.aws!.route53PendingPolls(1);
  fleet = await startOpenEdxFleet(bed);
  own = await ownStack(bed, "mitxfaults", { edxSshKey: { value: fs.readFileSync(bed.sshd!.privateKeyPath, "utf8"), secret: true } });
  await configure({ release: "redwood.3", phase: "live" });
  const adopt = await up();
  expect([adopt.result.exitCode, adopt.message]).toEqual([0, ""]);
}, 600_000);
afterAll(async () => {
  await own?.remove();
  await fleet?.stop();
  await bed?.stop();
}, 600_000);

test("refused before anything changes: an AMI that does not exist; a blue id of another fleet", async () => {
  const before = await world();
  await configure({ release: "sumac.3", phase: "prepared", amis: { web: "ami-0badc0ffee0000000", worker: fleet.amis["sumac.3"].worker } });
  const noAmi = await up();
  expect(noAmi.result.exitCode).not.toBe(0);
  expect(noAmi.message).toMatch(/the web AMI ami-0badc0ffee0000000 does not exist in this account and region.*check amis\.web/);
  expect(await world()).toEqual(before);

  const foreign = await fleet.launchForeign();
  await fleet.waitBooted(foreign);
  const withForeign = await world();
  await configure({ release: "sumac.3", phase: "prepared", blueIds: { web: [...fleet.blue.web, foreign], worker: fleet.blue.worker } });
  const notOurs = await up();
  expect(notOurs.result.exitCode).not.toBe(0);
  expect(notOurs.message).toContain(`${foreign} is not of this fleet: its tag environment is "mitx-online-production", not mitx-production`);
  expect(notOurs.message).toMatch(/fix blue\.web/);
  expect(await world()).toEqual(withForeign);
}, 600_000);

test("prepared with a green host whose smoke test fails: refused, DNS untouched; mended, prepared again launches nothing twice", async () => {
  fleet.mark("sumac.3", "HEARTBEAT_FAIL", true);
  const records = await fleet.records();
  await configure({ release: "sumac.3", phase: "prepared", healthySeconds: 2 });
  const failing = await up();
  expect(failing.result.exitCode).not.toBe(0);
  // edx-platform's answer to a failed check: 503 with the per-check JSON; the check is named
  expect(failing.message).toMatch(/smoke test failed after 2s: i-[0-9a-f]+ http:\S+\/lms\/heartbeat: HTTP 503, failing check\(s\) sql \(fixture: HEARTBEAT_FAIL marker/);
  expect(failing.message).toContain("DNS was not touched and still points at the load balancers");
  expect(await fleet.records()).toEqual(records);
  expect(bed.aws!.calls().filter((c) => c.action === "ChangeResourceRecordSets")).toHaveLength(0);

  fleet.mark("sumac.3", "HEARTBEAT_FAIL", false);
  bed.aws!.clearCalls();
  await configure({ release: "sumac.3", phase: "prepared" });
  const mended = await up();
  expect([mended.result.exitCode, mended.message]).toEqual([0, ""]);
  expect(mended.diagnostics.join("\n")).toMatch(/prepared launch-green \[[^\]]+\]: skipped \(green is there/);
  expect(bed.aws!.calls().filter((c) => c.action === "RunInstances")).toHaveLength(0);
}, 600_000);

test("live with a failing migration: rolled back to blue, DNS back at the load balancer, the error names the migration", async () => {
  fleet.mark("sumac.3", "FAIL_MIGRATION", true);
  await configure({ release: "sumac.3", phase: "live" });
  const run = await up();
  fleet.mark("sumac.3", "FAIL_MIGRATION", false);
  expect(run.result.exitCode).not.toBe(0);
  expect(run.message).toMatch(/failed in step 3-migrate-start-green: .*migration courseware\.0002_learner_home failed/);
  expect(run.message).toMatch(/rolled back to blue/);
  expect(run.message).toContain(lbDnsMessage());
  expect(run.message).toMatch(/Migrations already applied were not reversed/);
  expect(fleet.migrations()).not.toContain("courseware.0002_learner_home");
  await expectBlueServes();
}, 600_000);

test("live with green's heartbeats failing: the deadline passes, rolled back to blue", async () => {
  fleet.mark("sumac.3", "HEARTBEAT_FAIL", true);
  await configure({ release: "sumac.3", phase: "live", healthySeconds: 2 });
  const run = await up();
  fleet.mark("sumac.3", "HEARTBEAT_FAIL", false);
  expect(run.result.exitCode).not.toBe(0);
  expect(run.message).toMatch(/failed in step 4-switch-load-balancer: could not wait until the web hosts' heartbeats pass: after 2s: .*HTTP 503, failing check\(s\) sql/);
  expect(run.message).toMatch(/rolled back to blue/);
  // migrations ran before the health check and stay (the error said so)
  expect(fleet.migrations()).toContain("courseware.0002_learner_home");
  await expectBlueServes();
}, 600_000);

test("live with the load balancer never reporting green InService: blue is never deregistered, rolled back", async () => {
  fleet.setOutOfServicePolls(100_000);
  bed.aws!.clearCalls();
  await configure({ release: "sumac.3", phase: "live", healthySeconds: 2 });
  const run = await up();
  fleet.setOutOfServicePolls(3);
  expect(run.result.exitCode).not.toBe(0);
  expect(run.message).toMatch(/failed in step 4-switch-load-balancer: could not wait until the lms load balancer \(edx-current-residential-live-mitx-production\) reports green healthy: after 2s it reports i-[0-9a-f]+ OutOfService \(Instance registration is still in progress\.\)/);
  const deregistered = bed.aws!.calls().filter((c) => c.action === "DeregisterInstancesFromLoadBalancer").flatMap((c) => Object.entries(c.params).filter(([k]) => /InstanceId$/.test(k)).map(([, v]) => v));
  expect(deregistered.filter((id) => fleet.blue.web.includes(id))).toEqual([]);
  await expectBlueServes();
}, 600_000);

test("live with verification failing through the load balancer: rolled back to blue", async () => {
  await configure({ release: "sumac.3", phase: "live", verifyText: "release-that-is-not-there" });
  const run = await up();
  expect(run.result.exitCode).not.toBe(0);
  expect(run.message).toMatch(/failed in step 5-verify: could not verify the new release through the load balancers: lms: .*lacks "release-that-is-not-there"/);
  await expectBlueServes();
}, 600_000);

test("kill -9 of the whole run in step 4, then up again under Route 53 throttling: resumes, registers green once, terminates blue once", async () => {
  await configure({ release: "sumac.3", phase: "live" });
  const args = ["upgrade", "--stack", own.stack.name, "--cwd", own.workDir, "--yes", "--json"];
  let killed = false;
  const first = startCli(args, bed.env, (e) => {
    const message = (e as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message ?? "";
    if (!killed && /live 3-migrate-start-green \[[^\]]+\]: done/.test(message)) {
      killed = true;
      first.signal("SIGKILL", true);
    }
  });
  expect(await first.exited).toBe(137);
  // the crash left DNS at the maintenance page and blue stopped
  expect(Object.values(await fleet.records())).toEqual([fleet.distributionDomain, fleet.distributionDomain]);

  bed.aws!.clearCalls();
  bed.aws!.inject({ action: "ChangeResourceRecordSets", kind: "throttle", times: 2 });
  const second = await up();
  expect([second.result.exitCode, second.message]).toEqual([0, ""]);
  const log = second.diagnostics.join("\n");
  expect(log).toMatch(/live 1-dns-maintenance \[[^\]]+\]: skipped \(already at the maintenance page\)/);
  expect(log).toMatch(/live 3-migrate-start-green \[[^\]]+\]: skipped/);
  const calls = bed.aws!.calls();
  // step 6 makes one change per site: lms throttled twice then through, then studio
  expect(calls.filter((c) => c.action === "ChangeResourceRecordSets").map((c) => c.status)).toEqual([400, 400, 200, 200]);
  const green = [...fleet.hosts.values()].filter((h) => h.release === "sumac.3" && h.role === "web").map((h) => h.id).sort();
  for (const site of ["lms", "studio"] as const) expect(await fleet.registered(site)).toEqual(green);
  expect(calls.filter((c) => c.action === "TerminateInstances")).toHaveLength(1);
  const blue = [...fleet.blue.web, ...fleet.blue.worker];
  expect(await fleet.instanceStates(blue)).toEqual(Object.fromEntries(blue.map((id) => [id, "terminated"])));
  expect(await fleet.records()).toEqual(atLbs());
  expect([await release("lms"), await release("studio")]).toEqual(["sumac.3", "sumac.3"]);
  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("sumac.3");
}, 600_000);
