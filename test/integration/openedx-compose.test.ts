import * as fs from "node:fs";
import * as path from "node:path";
import { startOpenEdxFleet, type OpenEdxFixture } from "../sandbox/openedx";
import { ownStack, upOwnStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Runbook 5 on hosts of the Docker Compose layout (MIT's current EC2 hosts: edxapp as compose
// services, migrations and manage.py as one-off `compose run`s), with the layout's commands given
// in the settings: every host is a compose project run by the bed's real Docker Compose on its
// podman engine (test/sandbox/openedxHosts.ts), one web and one worker host per colour, upgraded
// redwood.3 → sumac.3 through two real `up`s of the driver.
let bed: Sandbox;
let fleet: OpenEdxFixture;
let own: OwnStack;

const up = () => upOwnStack(bed, own);
const configure = (release: string, phase: "prepared" | "live") => own.setSystems({ mitx: fleet.systemConfig({ release, phase, keyConfig: "edxSshKey" }) });

beforeAll(async () => {
  const started = Date.now();
  bed = await startSandbox({ motoEnv: { MOTO_ENABLE_AMI_VALIDATION: "true" } });
  fleet = await startOpenEdxFleet(bed, { hostLayout: "compose", web: 1, worker: 1 });
  own = await ownStack(bed, "mitxcompose", { edxSshKey: { value: fs.readFileSync(bed.sshd!.privateKeyPath, "utf8"), secret: true } });
  await configure("redwood.3", "live");
  const adopt = await up();
  expect([adopt.result.exitCode, adopt.result.error]).toEqual([0, undefined]);
  process.stdout.write(`openedx compose set-up: ${Date.now() - started} ms\n`);
}, 900_000);
afterAll(async () => {
  await own?.remove();
  await fleet?.stop();
  await bed?.stop();
}, 300_000);

const release = async (site: "lms" | "studio") => /release ([^<\s]+)</.exec((await fleet.throughLb("/", site)).body)?.[1];

test("compose hosts, commands from the settings: redwood.3 → sumac.3 prepared then live; green's services stopped and started by Compose, migrations and Sumac's reindex as compose runs", async () => {
  const blue = [...fleet.blue.web, ...fleet.blue.worker];
  for (const id of blue) expect([fleet.hosts.get(id)!.layout, fleet.processStatus(id)]).toEqual(["compose", id === fleet.blue.web[0] ? { lms: "RUNNING", cms: "RUNNING" } : { "lms-worker": "RUNNING" }]);
  expect([await release("lms"), await release("studio")]).toEqual(["redwood.3", "redwood.3"]);

  await configure("sumac.3", "prepared");
  const prepared = await up();
  expect([prepared.result.exitCode, prepared.result.error]).toEqual([0, undefined]);
  const green = [...fleet.hosts.values()].filter((h) => h.release === "sumac.3");
  expect(green.map((h) => `${h.role} ${h.layout}`).sort()).toEqual(["web compose", "worker compose"]);
  // `compose stop` after the smoke test: the containers exist, exited
  for (const h of green) expect(Object.values(fleet.processStatus(h.id))).toEqual(h.role === "web" ? ["STOPPED", "STOPPED"] : ["STOPPED"]);
  expect(fleet.migrations()).not.toContain("courseware.0002_learner_home");

  await configure("sumac.3", "live");
  const live = await up();
  expect([live.result.exitCode, live.result.error]).toEqual([0, undefined]);
  for (const step of ["1-dns-maintenance", "2-stop-blue", "3-migrate-start-green", "4-switch-load-balancer", "5-verify", "6-dns-load-balancer", "7-terminate-blue"]) expect(live.log).toMatch(new RegExp(`live ${step} \\[[^\\]]+\\]: done`));
  // the migrations and the reindex ran in one-off containers of the green web host's project
  expect(live.log).toMatch(/applied courseware\.0002_learner_home.*sumac step reindex-studio: Indexed 0 course\(s\) \(incremental\) for sumac\.3/);
  expect(fleet.migrations()).toContain("courseware.0002_learner_home");
  const web = green.find((h) => h.role === "web")!;
  expect(fs.readFileSync(path.join(web.dir, "reindex_studio.log"), "utf8")).toBe("sumac.3 incremental 0\n");
  for (const h of green) expect(Object.values(fleet.processStatus(h.id)).every((s) => s === "RUNNING")).toBe(true);
  for (let i = 0; i < 2; i++) expect([await release("lms"), await release("studio")]).toEqual(["sumac.3", "sumac.3"]);
  expect(await fleet.instanceStates(blue)).toEqual(Object.fromEntries(blue.map((id) => [id, "terminated"])));
  expect(((await own.stack.outputs()).versions?.value as Record<string, string>).mitx).toBe("sumac.3");
}, 900_000);
