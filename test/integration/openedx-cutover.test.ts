import * as fs from "node:fs";
import * as path from "node:path";
import { engineLine } from "../../stacks/output";
import { startOpenEdxFleet, type OpenEdxFixture } from "../sandbox/openedx";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Runbook 5 (MITx residential Open edX, blue/green on EC2) as the OpenEdxFleet resource of an own
// stack, driven by the real driver: moto (AMI validation on) behind the fault proxy, hosts with a
// real supervisord and the fixture Django app on MariaDB, the bed's load-balancer data plane.
let bed: Sandbox;
let fleet: OpenEdxFixture;
let own: OwnStack;
const allEvents: string[] = [];

async function up(target: OwnStack) {
  const { result, events, diagnostics, ms } = await upOwnStack(bed, target);
  allEvents.push(JSON.stringify(events), result.report, result.journal);
  const plan = events.flatMap((e) => (e.type === "engine" ? [engineLine(e.event)] : [])).filter((l): l is string => l !== undefined && l.startsWith("~"));
  return { result, diagnostics, plan, ms };
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

const release = async (site: "lms" | "studio" = "lms") => /release ([^<\s]+)</.exec((await fleet.throughLb("/", site)).body)?.[1];

test("a Salt-era fleet (its own tags, no openedx:* tag; an lms ELB and a sticky Studio ELB) redwood.3 → sumac.3 in two ups: green launched like blue, each site cut over on its own ELB only once the ELB reports green InService, Sumac's reindex after the migrations, blue terminated by id", async () => {
  const blue = [...fleet.blue.web, ...fleet.blue.worker];
  for (const id of blue) expect(Object.keys(await fleet.instanceTags(id)).filter((k) => k.startsWith("openedx:"))).toEqual([]);
  expect(await release("lms")).toBe("redwood.3");
  expect(await release("studio")).toBe("redwood.3");
  // the adopting run recorded blue as the selectors found it
  const adopted = ((await own.stack.exportStack()).deployment.resources as Array<{ type: string; outputs?: { blueFleet?: unknown } }>).find((r) => r.type.endsWith("OpenEdxFleet"));
  expect(adopted?.outputs?.blueFleet).toEqual({ web: [...fleet.blue.web].sort(), worker: fleet.blue.worker });

  // up 1: prepared
  await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.3", phase: "prepared", keyConfig: "edxSshKey" }) });
  const prepared = await up(own);
  expect([prepared.result.exitCode, prepared.result.error]).toEqual([0, undefined]);
  const planned = prepared.plan.find((l) => l.startsWith("~ pulumi-nodejs:dynamic/openedx:OpenEdxFleet mitx ("));
  expect(planned).toContain("release: redwood.3 → sumac.3");
  expect(planned).toContain("phase: live → prepared");
  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("redwood.3"); // still live: redwood.3
  const green = [...fleet.hosts.values()].filter((h) => h.release === "sumac.3");
  expect(green.map((h) => h.role).sort()).toEqual(["web", "web", "worker"]);
  for (const h of green) expect(Object.values(fleet.processStatus(h.id)).every((s) => s === "STOPPED")).toBe(true);
  // the smoke test asked each green web host's lms and cms heartbeats, and the workers' Celery check through ?extended
  const asked = fleet.asked();
  for (const h of green.filter((g) => g.role === "web")) for (const p of ["lms/heartbeat", "cms/heartbeat"]) expect([h.id, p, asked.includes(`${h.id} ${p}`)]).toEqual([h.id, p, true]);
  expect(asked.filter((a) => green.some((h) => a === `${h.id} lms/heartbeat?extended`)).length).toBeGreaterThanOrEqual(1);
  // green carries the operator's tags (the release-specific ones for sumac.3) and the workflow's bookkeeping
  const greenWeb = green.find((h) => h.role === "web")!;
  const tags = await fleet.instanceTags(greenWeb.id);
  expect(tags).toMatchObject({ environment: "mitx-production", purpose: "current-residential-live", role: "edx", edx_codename: "sumac", "release-version": "3", "openedx:release": "sumac.3", "openedx:role": "web" });
  // launched like blue: instance profile, user data, encrypted volume (what RunInstances was given)
  const run = bed.aws!.calls().find((c) => c.action === "RunInstances" && c.params.ImageId === fleet.amis["sumac.3"].web)!;
  expect(run.params["IamInstanceProfile.Arn"]).toBe("arn:aws:iam::123456789012:instance-profile/edx-instance-role");
  expect(Buffer.from(run.params.UserData ?? "", "base64").toString()).toContain("salt_minion");
  expect([run.params["BlockDeviceMapping.1.DeviceName"], run.params["BlockDeviceMapping.1.Ebs.Encrypted"], run.params["BlockDeviceMapping.1.Ebs.VolumeSize"]]).toEqual(["/dev/xvda", "true", "25"]);
  expect(await fleet.records()).toEqual({ "lms.mitx.example.edu": fleet.lbDnsNames.lms, "studio.mitx.example.edu": fleet.lbDnsNames.studio });
  const page = await fleet.maintenancePage();
  expect(page).toContain("residential-support@mitx.example.edu");
  expect(fleet.migrations()).not.toContain("courseware.0002_learner_home");
  expect(await release()).toBe("redwood.3");

  // up 2: live
  bed.aws!.clearCalls();
  await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.3", phase: "live", keyConfig: "edxSshKey" }) });
  const live = await up(own);
  expect([live.result.exitCode, live.result.error]).toEqual([0, undefined]);
  expect(live.plan.join("\n")).toMatch(/~ pulumi-nodejs:dynamic\/openedx:OpenEdxFleet mitx \(.*phase: prepared → live/);
  const log = live.diagnostics.join("\n");
  for (const step of ["1-dns-maintenance", "2-stop-blue", "3-migrate-start-green", "4-switch-load-balancer", "5-verify", "6-dns-load-balancer", "7-terminate-blue"]) {
    expect(log).toMatch(new RegExp(`live ${step} \\[[^\\]]+\\]: done`));
  }
  // the migrations, then Sumac's Studio reindex on the first green web host
  expect(log).toMatch(/applied courseware\.0002_learner_home.*sumac step reindex-studio: Indexed 0 course\(s\) \(incremental\) for sumac\.3/);
  const reindexed = green.filter((h) => fs.existsSync(path.join(h.dir, "reindex_studio.log")));
  expect(reindexed.map((h) => fs.readFileSync(path.join(h.dir, "reindex_studio.log"), "utf8"))).toEqual(["sumac.3 incremental 0\n"]);
  // Route 53 was PENDING for the first polls (the bed's compensation), and the workflow waited.
  expect(bed.aws!.calls().filter((c) => c.action === "GetChange").length).toBeGreaterThanOrEqual(6);

  // Health as each ELB sees it: green was OutOfService for the first 3 answers per ELB, and blue was
  // deregistered from an ELB only after that ELB's last answer (all green InService).
  const greenWebIds = green.filter((h) => h.role === "web").map((h) => h.id).sort();
  const calls = bed.aws!.calls();
  for (const site of ["lms", "studio"] as const) {
    const lb = { lms: "edx-current-residential-live-mitx-production", studio: "edx-studio-mitx-production" }[site];
    for (const id of greenWebIds) expect(fleet.outOfService().filter((o) => o.lb === lb && o.instance === id && /registration is still in progress/.test(o.reason)).length).toBe(3);
    const health = calls.map((c, i) => ({ c, i })).filter(({ c }) => c.action === "DescribeInstanceHealth" && c.params.LoadBalancerName === lb);
    const deregistered = calls.findIndex((c) => c.action === "DeregisterInstancesFromLoadBalancer" && c.params.LoadBalancerName === lb);
    expect(health.length).toBeGreaterThanOrEqual(4);
    expect(deregistered).toBeGreaterThan(health.at(-1)!.i);
    expect(await fleet.registered(site)).toEqual(greenWebIds);
  }
  expect(await fleet.listenerPolicies("studio")).toEqual(["studio-sticky"]);

  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("sumac.3");
  for (let i = 0; i < 4; i++) expect([await release("lms"), await release("studio")]).toEqual(["sumac.3", "sumac.3"]);
  expect((await fleet.throughLb("/", "studio")).body).toContain("MITx Studio");
  expect(await fleet.records()).toEqual({ "lms.mitx.example.edu": fleet.lbDnsNames.lms, "studio.mitx.example.edu": fleet.lbDnsNames.studio });
  expect(await fleet.instanceStates(blue)).toEqual(Object.fromEntries(blue.map((id) => [id, "terminated"])));
  const terminates = calls.filter((c) => c.action === "TerminateInstances");
  expect(terminates).toHaveLength(1);
  expect(Object.entries(terminates[0]!.params).filter(([k]) => k.startsWith("InstanceId")).map(([, v]) => v).sort()).toEqual([...blue].sort());
  expect(fleet.migrations()).toContain("courseware.0002_learner_home");
  for (const h of green) expect(Object.values(fleet.processStatus(h.id)).every((s) => s === "RUNNING")).toBe(true);
  // the SSH key (a secret config key) is in no event, report, journal, nor in clear in the state
  const keyLine = fs.readFileSync(bed.sshd!.privateKeyPath, "utf8").split("\n")[1] as string;
  expect(keyLine.length).toBeGreaterThan(20);
  expect(allEvents.join("\n")).not.toContain(keyLine);
  const stateDir = path.join(bed.dir, "pulumi", "state");
  const stateFiles = (fs.readdirSync(stateDir, { recursive: true }) as string[]).map((f) => path.join(stateDir, f)).filter((f) => fs.statSync(f).isFile());
  expect(stateFiles.some((f) => f.endsWith("mitx.json"))).toBe(true);
  for (const f of stateFiles) expect([f, fs.readFileSync(f, "utf8").includes(keyLine)]).toEqual([f, false]);
  process.stdout.write(`openedx acceptance: prepared up ${prepared.ms} ms, live up ${live.ms} ms\n${live.diagnostics.filter((d) => /live \d-/.test(d)).join("\n")}\n`);
}, 600_000);

test("release rules at preview: redwood.3 → teak.1 (skips sumac) and sumac.3 → redwood.3 (a downgrade) are refused by check, changing nothing; sumac.master is accepted", async () => {
  const before = { outputs: (await own.stack.outputs()).versions?.value, records: await fleet.records(), lms: await fleet.registered("lms") };
  await own.setSystems({ mitx: fleet.systemConfig({ release: "teak.1", phase: "prepared", keyConfig: "edxSshKey", blueRelease: "redwood.3" }) });
  const skip = await own.stack.preview().then(() => "", (err: Error) => err.message);
  expect(skip).toMatch(/release: redwood\.3 → teak\.1 skips sumac: Open edX is upgraded one named release at a time/);
  await own.setSystems({ mitx: fleet.systemConfig({ release: "redwood.3", phase: "live", keyConfig: "edxSshKey", blueRelease: "sumac.3" }) });
  const down = await own.stack.preview().then(() => "", (err: Error) => err.message);
  expect(down).toMatch(/release: redwood\.3 is older than sumac\.3: a downgrade \(Sumac → Redwood\)/);
  await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.master", phase: "prepared", keyConfig: "edxSshKey", blueRelease: "sumac.3", amis: fleet.amis["sumac.3"] }) });
  const master = await own.stack.preview();
  expect(master.changeSummary.update).toBe(1);
  expect({ outputs: (await own.stack.outputs()).versions?.value, records: await fleet.records(), lms: await fleet.registered("lms") }).toEqual(before);
}, 600_000);
