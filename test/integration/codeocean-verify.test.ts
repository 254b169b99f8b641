import * as fs from "node:fs";
import { DescribeAlarmsCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { GetResourcesCommand } from "@aws-sdk/client-resource-groups-tagging-api";
import { awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { SUSPENDED_TAG } from "../../stacks/runbooks/codeocean/alarmActions";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli, startCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";

// verify-deployment after `up`, against the bed: the fixture's seven target groups (lb.ts's health
// checks) with the services instance registered, their health checks served by the bed (a release
// can be made bad there), the alarms driven with CloudWatch SetAlarmState (moto records it).
let bed: Sandbox;
let scenario: CodeOceanScenario;
const scenarios: CodeOceanScenario[] = [];
let aws: AwsClients;

beforeAll(async () => {
  bed = await startSandbox();
  aws = createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
});
// a deployment of its own at 1.0.0 per test (the services simulator follows the worker ASGs it started with)
let n = 0;
beforeEach(async () => {
  scenario = await startCodeOceanScenario(bed, { stackName: `verify${n++}`, workers: 1, gpuWorkers: 0, drainMs: 1000 });
  scenarios.push(scenario);
}, 300_000);
afterAll(async () => {
  aws?.destroy();
  for (const s of scenarios) await s.stop();
  await bed?.stop();
});

async function alarmsAfter(): Promise<{ enabled: boolean[]; tagged: number }> {
  const { MetricAlarms = [] } = await aws.cloudWatch.send(new DescribeAlarmsCommand({}));
  const ours = MetricAlarms.filter((a) => a.AlarmName!.includes(`-${scenario.deployment.stackName}-`));
  const tagged = await aws.tagging.send(new GetResourcesCommand({ TagFilters: [{ Key: SUSPENDED_TAG }] }));
  return { enabled: ours.map((a) => a.ActionsEnabled === true), tagged: (tagged.ResourceTagMappingList ?? []).length };
}

test("a release whose web health check fails: verification fails after `up`, the new release stays (--on-failure stop) and the run says so; alarms restored", async () => {
  scenario.health.failForRelease("2.0.0", ["web"]);
  const run = await runCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--verify-timeout", "6s"], bed.env);
  expect(run.code).toBe(1);
  const events = run.events();
  const verify = events.find((e) => e.type === "step-end" && e.step === "verify-deployment")!;
  expect(verify.status).toBe("failed");
  // both the load balancer's view (the bed's compensation of moto's always-healthy) and the direct probe name the web service
  expect(verify.error).toMatch(/not healthy within 0:06: .*codeocean-verify\d-web: i-\w+ unhealthy: Target\.ResponseCodeMismatch/);
  expect(verify.error).toMatch(/codeocean-verify\d-web :\d+\/health answered HTTP 503/);
  expect(verify.error).not.toMatch(/gw :\d+\/api\/health answered/);
  expect(verify.error).toMatch(/The new release stays in place \(--on-failure stop\); to go back: upgrade --release 1\.0\.0/);
  // progress while waiting named what was not healthy yet
  expect(events.some((e) => e.type === "progress" && e.step === "verify-deployment" && /waiting for health/.test(String(e.message)))).toBe(true);
  expect(events.at(-1)).toMatchObject({ type: "summary", status: "failed", exitCode: 1 });
  // alarm actions stayed suspended during verification and were restored after it
  const ends = events.filter((e) => e.type === "step-end").map((e) => e.step);
  expect(ends.slice(-3)).toEqual(["verify-deployment", "restore-point-state", "restore-alarms"]);
  expect(await alarmsAfter()).toEqual({ enabled: expect.arrayContaining([true]), tagged: 0 });
  expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
  scenario.health.heal();
}, 400_000);

test("an alarm forced into ALARM during the bake fails verification the same way", async () => {
  const alarm = `codeocean-${scenario.deployment.stackName}-services-memory-usage-high`;
  let forced = false;
  const cli = startCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--bake-time", "20s"], bed.env, (e) => {
    if (!forced && e.type === "progress" && e.step === "verify-deployment" && /^baking/.test(String(e.message))) {
      forced = true;
      void aws.cloudWatch.send(new SetAlarmStateCommand({ AlarmName: alarm, StateValue: "ALARM", StateReason: "memory above 80% (forced by the test)" }));
    }
  });
  expect(await cli.exited).toBe(1);
  expect(forced).toBe(true);
  const events = cli.stdout().trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const verify = events.find((e) => e.type === "step-end" && e.step === "verify-deployment")!;
  expect(verify).toMatchObject({ status: "failed", error: expect.stringContaining(`alarm ${alarm} is in ALARM (memory above 80% (forced by the test))`) });
  expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
  expect((await alarmsAfter()).tagged).toBe(0);
  await aws.cloudWatch.send(new SetAlarmStateCommand({ AlarmName: alarm, StateValue: "OK", StateReason: "reset by the test" }));
}, 400_000);

test("--on-failure rollback: the bad release fails verification, the run deploys 1.0.0 again, verifies it, restores the alarms, exit 4", async () => {
  scenario.health.failForRelease("2.0.0", ["web"]);
  const run = await runCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--verify-timeout", "6s", "--on-failure", "rollback"], bed.env);
  expect(run.code).toBe(4);
  const events = run.events();
  const ends = events.filter((e) => e.type === "step-end");
  expect(ends.slice(-4).map((e) => [e.step, e.status])).toEqual([["verify-deployment", "failed"], ["rollback", "done"], ["restore-point-state", "done"], ["restore-alarms", "done"]]);
  expect(ends.find((e) => e.step === "rollback")!.note).toMatch(/^rolled back to 1\.0\.0 \(.*update.*\); verified: 7 target groups .*probes 8\/8 ok; alarms in ALARM: none/);
  expect(events.at(-1)).toMatchObject({
    type: "summary", status: "failed", exitCode: 4, rolledBack: { to: "1.0.0", verified: true },
    error: expect.stringMatching(/could not verify the deployment after `up`: .*codeocean-verify\d-web/),
    hint: expect.stringMatching(/^rolled back to 1\.0\.0, and the rollback verified/),
  });
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
  expect(await scenario.health.release()).toBe("1.0.0");
  expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
  expect((await alarmsAfter()).tagged).toBe(0);
  scenario.health.heal();
}, 400_000);

test("a healthy release verifies: every target group healthy, every health check 2xx, the services API answers, no alarm in ALARM for the bake time", async () => {
  const run = await runCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json"], bed.env);
  expect(run.code).toBe(0);
  const verify = run.events().find((e) => e.type === "step-end" && e.step === "verify-deployment")!;
  expect(verify).toMatchObject({ status: "done", note: expect.stringMatching(/^verified: 7 target groups \((codeocean-verify\d-[\w-]+ healthy(, )?){7}\); probes 8\/8 ok; alarms in ALARM: none; healthy for the bake time 0:03$/) });
}, 400_000);

/** Starts the command, kills its whole process group (kill -9) when `at` says so, and waits for it to die. */
async function killedAt(args: string[], at: (e: Record<string, unknown>, seen: Array<Record<string, unknown>>) => boolean): Promise<Array<Record<string, unknown>>> {
  const seen: Array<Record<string, unknown>> = [];
  const cli = startCli(args, bed.env, (e) => {
    seen.push(e);
    if (at(e, seen)) cli.signal("SIGKILL", true);
  });
  expect(await cli.exited).toBe(137);
  return seen;
}

test("kill -9 during verify-deployment, then the same command: it resumes the verification (no second `up`), ends verified, nothing left suspended", async () => {
  const args = ["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--bake-time", "8s"];
  const first = await killedAt(args, (e) => e.type === "progress" && e.step === "verify-deployment");
  expect(first.some((e) => e.type === "step-end" && e.step === "up" && e.status === "done")).toBe(true);
  // killed with the alarm actions suspended (and tagged for the next run)
  expect((await alarmsAfter()).tagged).toBeGreaterThan(0);

  const again = await runCli(args, bed.env);
  expect(again.code).toBe(0);
  const ends = Object.fromEntries(again.events().filter((e) => e.type === "step-end").map((e) => [e.step, e]));
  expect(ends["up"]).toMatchObject({ status: "skipped" });
  expect(ends["verify-deployment"]).toMatchObject({ status: "done", note: expect.stringMatching(/^verified: 7 target groups/) });
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
  expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
  expect((await alarmsAfter()).tagged).toBe(0);
}, 400_000);

test("kill -9 during the rollback's `up`, then the same command: it finishes the rollback to 1.0.0 (does not deploy 2.0.0 again), verifies it, exit 4, nothing left suspended", async () => {
  scenario.health.failForRelease("2.0.0", ["web"]);
  const args = ["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--verify-timeout", "6s", "--on-failure", "rollback"];
  await killedAt(args, (e, seen) => e.type === "engine" && seen.some((s) => s.type === "progress" && s.step === "rollback"));
  const again = await runCli(args, bed.env);
  expect(again.code).toBe(4);
  const events = again.events();
  const ends = Object.fromEntries(events.filter((e) => e.type === "step-end").map((e) => [e.step, e]));
  expect(String(ends["checkout-release"]!.note)).toMatch(/1\.0\.0.*finishing the rollback of run/);
  expect(events.some((e) => e.type === "progress" && /this run finishes that rollback \(not the upgrade to 2\.0\.0; run again for that\)/.test(String(e.message)))).toBe(true);
  expect(ends["verify-deployment"]).toMatchObject({ status: "done" });
  expect(ends["rollback"]).toBeUndefined();
  expect(events.at(-1)).toMatchObject({ type: "summary", status: "failed", exitCode: 4, rolledBack: { to: "1.0.0", verified: true } });
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
  expect(await scenario.health.release()).toBe("1.0.0");
  expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
  expect((await alarmsAfter()).tagged).toBe(0);
  scenario.health.heal();
}, 600_000);

test("a fleet whose canary fails verification starts no further wave; the fleet report shows the verification", async () => {
  scenario.health.failForRelease("2.0.0", ["web"]);
  const next = await startCodeOceanScenario(bed, { stackName: `verify-next${n}`, workers: 1, gpuWorkers: 0, drainMs: 1000 });
  scenarios.push(next);
  const file = `${bed.dir}/verify-fleet-${n}.yaml`;
  const entry = (s: CodeOceanScenario) => `{stack: ${s.deployment.stackName}, cwd: ${s.deployment.workDir}, release: 2.0.0}`;
  fs.writeFileSync(file, ["waves:", "  - name: canary", "    canary: true", `    stacks: [${entry(scenario)}]`, "  - name: rest", `    stacks: [${entry(next)}]`, ""].join("\n"));
  // the bed's per-stack flags (SSH, services port, deadlines) are the canary's: the next stack must never start
  const perStack = scenario.upgradeArgs.filter((_, i, all) => !["--stack", "--cwd"].includes(all[i]!) && !["--stack", "--cwd"].includes(all[i - 1]!));
  const report = `${bed.dir}/verify-fleet-${n}.md`;
  const run = await runCli(["upgrade", "--stacks-file", file, ...perStack, "--verify-timeout", "6s", "--yes", "--json", "--report", report], bed.env);
  expect(run.code).toBe(1);
  const ends = Object.fromEntries(run.events().filter((e) => e.type === "fleet-stack-end").map((e) => [e.stack, e]));
  expect(ends[scenario.deployment.stackName]).toMatchObject({ status: "failed", exitCode: 1 });
  expect(ends[next.deployment.stackName]).toMatchObject({ status: "not-started" });
  expect(run.events().some((e) => e.type === "run-start" && e.stack === next.deployment.stackName)).toBe(false);
  expect(fs.readFileSync(report, "utf8")).toMatch(new RegExp(`\\| \`${scenario.deployment.stackName}\` \\| canary \\| ❌ failed \\| [^|]* \\| [^|]* \\| FAILED: could not verify the deployment after \`up\`: not healthy within 0:06`));
  expect((await next.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
  expect((await alarmsAfter()).tagged).toBe(0);
  scenario.health.heal();
}, 600_000);

test("`up` fails after changing resources (the bed refuses the old worker ASG's delete once): --on-failure rollback deploys 1.0.0 again, verifies it, exit 4", async () => {
  let refusedOnce = false;
  const unhook = bed.aws!.intercept(async (call) => {
    if (refusedOnce || call.action !== "DeleteAutoScalingGroup") return undefined;
    refusedOnce = true;
    const body = "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>refused by the test bed</Message></Error><RequestId>bed</RequestId></ErrorResponse>";
    return { status: 400, headers: { "content-type": "text/xml" }, body: Buffer.from(body) };
  });
  try {
    const run = await runCli(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json", "--on-failure", "rollback"], bed.env);
    expect(refusedOnce).toBe(true);
    const events = run.events();
    const ends = events.filter((e) => e.type === "step-end");
    expect(ends.find((e) => e.step === "up")).toMatchObject({ status: "failed", error: expect.stringContaining("refused by the test bed") });
    expect(ends.some((e) => e.step === "verify-deployment")).toBe(false);
    expect(ends.find((e) => e.step === "rollback")).toMatchObject({ status: "done", note: expect.stringMatching(/^rolled back to 1\.0\.0 .*verified: 7 target groups/) });
    expect(events.some((e) => e.type === "progress" && e.step === "rollback" && /`pulumi up` failed after changing \d+ resource\(s\)/.test(String(e.message)))).toBe(true);
    expect(run.code).toBe(4);
    expect(events.at(-1)).toMatchObject({ type: "summary", exitCode: 4, rolledBack: { to: "1.0.0", verified: true } });
    expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
    expect((await alarmsAfter()).enabled.every(Boolean)).toBe(true);
    expect((await alarmsAfter()).tagged).toBe(0);
  } finally {
    unhook();
  }
}, 600_000);
