import { DescribeAlarmsCommand, DisableAlarmActionsCommand } from "@aws-sdk/client-cloudwatch";
import { GetResourcesCommand } from "@aws-sdk/client-resource-groups-tagging-api";
import { awsSettingsFromEnv, createAwsClients, type AwsClients } from "../../lib/aws";
import { SUSPENDED_TAG } from "../../stacks/runbooks/codeocean/alarmActions";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli, startCli, type LiveCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import type { InterceptedCall } from "../sandbox/faultProxy";

// The alarm suspend/restore protocol under kill -9 between any two of its AWS calls: the chosen
// call is applied and answered, and the CLI's whole process group is killed as its next AWS call
// reaches the bed's proxy (that call is not applied). Then a person disables one alarm
// by hand, and the same command runs again. After it: no alarm tagged, every alarm the runs
// disabled enabled again, and the one disabled by hand still disabled.
let bed: Sandbox;
let scenario: CodeOceanScenario;
const scenarios: CodeOceanScenario[] = [];
let aws: AwsClients;
const rows: string[] = [];

beforeAll(async () => {
  bed = await startSandbox();
  aws = createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
});
afterAll(async () => {
  aws?.destroy();
  for (const s of scenarios) await s.stop();
  await bed?.stop();
  process.stderr.write(["", "alarm protocol: kill -9 after each AWS call", ...rows, ""].join("\n"));
});

/** The deployment's alarms: name → actions enabled, and name → suspension tag value. */
async function alarms(): Promise<{ enabled: Record<string, boolean>; tags: Record<string, string> }> {
  const tagged = await aws.tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ["cloudwatch:alarm"], TagFilters: [{ Key: "deployment", Values: [scenario.deploymentName] }] }));
  const names = (tagged.ResourceTagMappingList ?? []).map((r) => r.ResourceARN!.split(":alarm:")[1]!);
  const tags = Object.fromEntries((tagged.ResourceTagMappingList ?? []).flatMap((r) => {
    const v = r.Tags?.find((t) => t.Key === SUSPENDED_TAG)?.Value;
    return v ? [[r.ResourceARN!.split(":alarm:")[1]!, v]] : [];
  }));
  const { MetricAlarms = [] } = await aws.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNames: names }));
  return { enabled: Object.fromEntries(MetricAlarms.map((a) => [a.AlarmName!, a.ActionsEnabled === true])), tags };
}

const body = (c: InterceptedCall) => c.body.toString("utf8");
/** Where to kill: the n-th call that matches. The 13 alarms of this deployment are suspended in one DisableAlarmActions. */
const KILL_POINTS: Array<[string, (c: InterceptedCall) => boolean, number]> = [
  ["suspend: after the first TagResource", (c) => c.action === "TagResource" && !body(c).includes("restoring:"), 1],
  // the run dies with DisableAlarmActions sent (recorded as intended) but not applied: the journal
  // cannot tell it from "applied, answer lost"; the batch's alarms now can (it lands whole or not at all)
  ["suspend: during DisableAlarmActions (sent, not applied)", (c) => c.action === "TagResource" && !body(c).includes("restoring:"), 13],
  ["suspend: after DisableAlarmActions", (c) => c.action === "DisableAlarmActions", 1],
  ["restore: after the first re-tag (restoring)", (c) => c.action === "TagResource" && body(c).includes("restoring:"), 1],
  ["restore: after EnableAlarmActions, before any UntagResource", (c) => c.action === "EnableAlarmActions", 1],
  ["restore: after the first UntagResource", (c) => c.action === "UntagResource", 1],
];

test.each(KILL_POINTS.map(([name, match, nth], i) => [name, match, nth, i] as const))("kill -9 %s; a person disables an alarm; the re-run restores exactly what the runs disabled", async (_name, match, nth, i) => {
  const started = Date.now();
  // a deployment of its own at 1.0.0 per case (the services simulator follows the ASGs it started with)
  scenario = await startCodeOceanScenario(bed, { stackName: `protocol-${i}`, workers: 1, gpuWorkers: 0, drainMs: 1000 });
  scenarios.push(scenario);
  const release = "2.0.0";
  const args = ["upgrade", ...scenario.upgradeArgs, "--release", release, "--yes", "--json"];
  let seen = 0;
  let cli: LiveCli | undefined;
  // between two calls: the chosen one is applied and answered; the run dies as its next AWS call
  // (the driver's or its engine's) arrives, before that one is applied
  let armed = false;
  const unhook = bed.aws!.intercept(async (call) => {
    if (armed) {
      cli!.signal("SIGKILL", true);
      await cli!.exited;
      return { status: 503, headers: {}, body: Buffer.from("") };
    }
    if (match(call) && ++seen === nth) armed = true;
    return undefined;
  });
  try {
    cli = startCli(args, bed.env);
    const code = await cli.exited;
    // killed at the chosen call, not ended some other way (the summary says how, if so)
    expect({ code, summary: code === 137 ? undefined : cli.stdout().trim().split("\n").at(-1) }).toEqual({ code: 137, summary: undefined });
  } finally {
    unhook();
  }
  const killed = await alarms();
  // a person silences one alarm by hand now: a tagged one still enabled if there is one, else any enabled one
  const enabledNow = Object.keys(killed.enabled).filter((n) => killed.enabled[n]);
  const byHand = enabledNow.find((n) => killed.tags[n]) ?? enabledNow[0];
  if (byHand) await aws.cloudWatch.send(new DisableAlarmActionsCommand({ AlarmNames: [byHand] }));

  const again = await runCli(args, bed.env);
  expect(again.stderr).not.toMatch(/error/i);
  expect({ code: again.code, summary: again.code === 0 ? undefined : again.stdout.trim().split("\n").at(-1) }).toEqual({ code: 0, summary: undefined });
  const after = await alarms();
  expect(after.tags).toEqual({});
  expect(Object.keys(after.enabled)).toHaveLength(13);
  for (const [name, enabled] of Object.entries(after.enabled)) expect([name, enabled]).toEqual([name, name !== byHand]);
  const restore = again.events().find((e) => e.type === "step-end" && e.step === "restore-alarms")!;
  if (byHand && killed.tags[byHand]) expect(restore.note).toMatch(new RegExp(`${byHand} \\(disabled by someone[^;]*: left disabled\\)`));
  expect(Object.keys(killed.enabled)).toHaveLength(13);
  rows.push(`${_name.padEnd(64)} by hand: ${byHand ? `${byHand}${killed.tags[byHand] ? ` (tagged ${killed.tags[byHand]!.split("-")[0]})` : " (untagged)"}` : "none enabled"}  ${((Date.now() - started) / 1000).toFixed(0)}s`);
}, 600_000);
