import * as fs from "node:fs";
import * as path from "node:path";
import type { UpgradeEvent } from "../../lib/events";
import { engineLine } from "../../stacks/output";
import { upgrade } from "../../stacks/upgrade";
import { startOpenEdxFleet, type OpenEdxFixture } from "../sandbox/openedx";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Runbook 5 (MITx residential Open edX, blue/green on EC2) as the OpenEdxFleet resource of an own
// stack, driven by the real driver: moto (AMI validation on) behind the fault proxy, hosts with a
// real supervisord and the fixture Django app on MariaDB, the bed's load-balancer data plane.
let bed: Sandbox;
let fleet: OpenEdxFixture;
let own: OwnStack;
const allEvents: string[] = [];

async function up(target: OwnStack) {
  const events: UpgradeEvent[] = [];
  const started = Date.now();
  const result = await upgrade({ stack: target.stack.name, cwd: target.workDir, yes: true, env: bed.env, onEvent: (e) => events.push(e) });
  allEvents.push(JSON.stringify(events), result.report, result.journal);
  const diagnostics = events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));
  const plan = events.flatMap((e) => (e.type === "engine" ? [engineLine(e.event)] : [])).filter((l): l is string => l !== undefined && l.startsWith("~"));
  return { result, diagnostics, plan, ms: Date.now() - started };
}

beforeAll(async () => {
  const t0 = Date.now();
  bed = await startSandbox({ motoEnv: { MOTO_ENABLE_AMI_VALIDATION: "true" } });
  bed.aws!.route53PendingPolls(2);
  const t1 = Date.now();
  fleet = await startOpenEdxFleet(bed);
  process.stdout.write(`openedx set-up: bed ${t1 - t0} ms, fleet (MariaDB, 3 hosts, AWS fixtures) ${Date.now() - t1} ms\n`);
  own = await ownStack(bed, "mitx", { edxSshKey: { value: fs.readFileSync(bed.sshd!.privateKeyPath, "utf8"), secret: true } });
  await own.setSystems({ mitx: fleet.systemConfig({ release: "redwood.3", phase: "live", keyConfig: "edxSshKey" }) });
  const adopt = await up(own);
  expect([adopt.result.exitCode, adopt.result.error]).toEqual([0, undefined]);
}, 600_000);
afterAll(async () => {
  await own?.remove();
  await fleet?.stop();
  await bed?.stop();
});

test("redwood.3 → sumac.3 in two ups: prepared stands green up, live cuts over; the LB serves only green, DNS at the LB, blue terminated by id, the new migration applied", async () => {
  const blue = [...fleet.blue.web, ...fleet.blue.worker];
  expect((await fleet.throughLb("/heartbeat")).body).toContain("redwood.3");

  // up 1: prepared
  await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.3", phase: "prepared", keyConfig: "edxSshKey" }) });
  const prepared = await up(own);
  expect([prepared.result.exitCode, prepared.result.error]).toEqual([0, undefined]);
  const planned = prepared.plan.find((l) => l.startsWith("~ pulumi-nodejs:dynamic/openedx:OpenEdxFleet mitx ("));
  expect(planned).toContain("release: redwood.3 → sumac.3");
  expect(planned).toContain("phase: live → prepared");
  const greenIds = ((await own.stack.outputs()).versions?.value as Record<string, string>).mitx;
  expect(greenIds).toBe("redwood.3"); // still live: redwood.3
  const green = [...fleet.hosts.values()].filter((h) => h.release === "sumac.3");
  expect(green.map((h) => h.role).sort()).toEqual(["web", "web", "worker"]);
  for (const h of green) expect(Object.values(fleet.supervisorStatus(h.id)).every((s) => s === "STOPPED")).toBe(true);
  expect(await fleet.records()).toEqual(Object.fromEntries(Object.keys(await fleet.records()).map((k) => [k, fleet.lbDnsName])));
  const page = await fleet.maintenancePage();
  expect(page).toContain("residential-support@mitx.example.edu");
  expect(page).toContain("90 minutes");
  expect(fleet.migrations()).not.toContain("courseware.0002_learner_home");
  expect((await fleet.throughLb("/heartbeat")).body).toContain("redwood.3");

  // up 2: live
  await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.3", phase: "live", keyConfig: "edxSshKey" }) });
  const live = await up(own);
  expect([live.result.exitCode, live.result.error]).toEqual([0, undefined]);
  expect(live.plan.join("\n")).toMatch(/~ pulumi-nodejs:dynamic\/openedx:OpenEdxFleet mitx \(.*phase: prepared → live/);
  const log = live.diagnostics.join("\n");
  for (const step of ["1-dns-maintenance", "2-stop-blue", "3-migrate-start-green", "4-switch-load-balancer", "5-verify", "6-dns-load-balancer", "7-terminate-blue"]) {
    expect(log).toMatch(new RegExp(`live ${step} \\[[^\\]]+\\]: done`));
  }
  expect(log).toMatch(/applied courseware\.0002_learner_home/);
  // Route 53 was PENDING for the first polls (the bed's compensation), and the workflow waited.
  expect(bed.aws!.calls().filter((c) => c.action === "GetChange").length).toBeGreaterThanOrEqual(6);

  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("sumac.3");
  expect((await fleet.registered()).sort()).toEqual(green.filter((h) => h.role === "web").map((h) => h.id).sort());
  for (let i = 0; i < 4; i++) expect((await fleet.throughLb("/heartbeat")).body).toContain("sumac.3");
  expect(Object.values(await fleet.records())).toEqual([fleet.lbDnsName, fleet.lbDnsName]);
  expect(await fleet.instanceStates(blue)).toEqual(Object.fromEntries(blue.map((id) => [id, "terminated"])));
  const terminates = bed.aws!.calls().filter((c) => c.action === "TerminateInstances");
  expect(terminates).toHaveLength(1);
  expect(Object.entries(terminates[0]!.params).filter(([k]) => k.startsWith("InstanceId")).map(([, v]) => v).sort()).toEqual([...blue].sort());
  expect(fleet.migrations()).toContain("courseware.0002_learner_home");
  for (const h of green) expect(Object.values(fleet.supervisorStatus(h.id)).every((s) => s === "RUNNING")).toBe(true);
  // the SSH key (a secret config key) is in no event, report, journal, nor in clear in the state
  const keyLine = fs.readFileSync(bed.sshd!.privateKeyPath, "utf8").split("\n")[1] as string;
  expect(keyLine.length).toBeGreaterThan(20);
  expect(allEvents.join("\n")).not.toContain(keyLine);
  // the state on disk (the backend's files) holds it only encrypted
  const stateDir = path.join(bed.dir, "pulumi", "state");
  const stateFiles = (fs.readdirSync(stateDir, { recursive: true }) as string[]).map((f) => path.join(stateDir, f)).filter((f) => fs.statSync(f).isFile());
  expect(stateFiles.some((f) => f.endsWith("mitx.json"))).toBe(true);
  for (const f of stateFiles) expect([f, fs.readFileSync(f, "utf8").includes(keyLine)]).toEqual([f, false]);
  process.stdout.write(`openedx acceptance: prepared up ${prepared.ms} ms, live up ${live.ms} ms\n${live.diagnostics.filter((d) => /live \d-/.test(d)).join("\n")}\n`);
}, 600_000);
