import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { DeleteAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { DeleteVolumeCommand, DetachVolumeCommand } from "@aws-sdk/client-ec2";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";
import { upgrade, type UpgradeOptions } from "../../stacks/upgrade";
import { copyFixture } from "../sandbox/fixtures";
import { startSandbox, type Sandbox } from "../sandbox";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";

// Refusals change nothing; transient faults are retried; permanent ones are not.
let bed: Sandbox;
let refusals: CodeOceanScenario;

beforeAll(async () => {
  bed = await startSandbox();
  refusals = await startCodeOceanScenario(bed, { stackName: "refusals", workers: 2, gpuWorkers: 1 });
});
// Each test starts from the operator's state: code at 1.0.0 (a run that fails after checking out
// the release leaves the checkout there, and a re-run resumes from it), computations running.
beforeEach(async () => {
  execFileSync("git", ["-c", "advice.detachedHead=false", "checkout", "-q", "1.0.0"], { cwd: refusals.deployment.workDir });
  await refusals.services.reset();
});
afterAll(async () => {
  await refusals?.stop();
  await bed?.stop();
});

/** The scenario's `upgrade()` options (test/sandbox/codeocean.ts), with `extra`. */
const optionsFor = (scenario: CodeOceanScenario, extra: Partial<UpgradeOptions> = {}): UpgradeOptions => scenario.upgradeOptions(extra);

async function expectUnchanged(scenario: CodeOceanScenario, action: () => Promise<void>): Promise<void> {
  const before = await awsSnapshot(bed.env);
  const history = (await scenario.deployment.stack.history()).length;
  await action();
  expect(await awsSnapshot(bed.env)).toEqual(before);
  expect((await scenario.deployment.stack.history()).length).toBe(history);
}

test("bad input exits 2 with what, why and a hint, and changes nothing", async () => {
  await expectUnchanged(refusals, async () => {
    const unknownStack = await runCli(["upgrade", ...refusals.upgradeArgs, "--stack", "nope", "--yes"], bed.env);
    expect(unknownStack.code).toBe(2);
    expect(unknownStack.stdout + unknownStack.stderr).toMatch(/could not select the stack nope: no stack of that name.*\n.*known stacks: refusals/);

    const noTty = await runCli(["upgrade", ...refusals.upgradeArgs], bed.env);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/not a terminal[\s\S]*hint: pass --yes/);

    const badDuration = await runCli(["upgrade", ...refusals.upgradeArgs, "--yes", "--drain-timeout", "soon"], bed.env);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toMatch(/--drain-timeout: "soon" is not a duration/);

    const noStack = await runCli(["upgrade", "--yes"], bed.env);
    expect(noStack.code).toBe(2);
    expect(noStack.stderr).toMatch(/--stack/);
  });
  expect(refusals.services.requests()).toEqual([]);
});

test("a dirty working tree or an unknown tag refuses --release with exit 3 before anything changes", async () => {
  const file = path.join(refusals.deployment.workDir, "index.ts");
  const original = fs.readFileSync(file, "utf8");
  await expectUnchanged(refusals, async () => {
    const unknown = await upgrade(optionsFor(refusals, { release: "9.9.9" }));
    expect(unknown.exitCode).toBe(3);
    expect(unknown.error?.message).toMatch(/no tag 9\.9\.9/);

    fs.appendFileSync(file, "\n// local hotfix\n");
    try {
      const dirty = await upgrade(optionsFor(refusals, { release: "2.0.0" }));
      expect(dirty.exitCode).toBe(3);
      expect(dirty.error?.message).toMatch(/uncommitted changes[\s\S]*index\.ts/);
      expect(dirty.steps.find((s) => s.step === "checkout-release")).toMatchObject({ status: "failed" });
      expect(dirty.steps.map((s) => s.step)).not.toContain("cancel-computations");
    } finally {
      fs.writeFileSync(file, original);
    }
  });
  expect(refusals.services.requests()).toEqual([]);
  expect(execFileSync("git", ["describe", "--tags"], { cwd: refusals.deployment.workDir, encoding: "utf8" }).trim()).toBe("1.0.0");
});

test("a services host key that does not match is refused once, not retried, nothing changed", async () => {
  const wrong = path.join(bed.dir, "known_hosts_other");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(bed.dir, "impostor")]);
  const key = fs.readFileSync(path.join(bed.dir, "impostor.pub"), "utf8").split(" ").slice(0, 2).join(" ");
  fs.writeFileSync(wrong, `[127.0.0.1]:${bed.sshd!.port} ${key}\n`);
  await expectUnchanged(refusals, async () => {
    const events: string[] = [];
    const result = await upgrade(optionsFor(refusals, {
      codeOcean: { ssh: { ...optionsFor(refusals).codeOcean!.ssh, knownHostsPath: wrong } },
      onEvent: (e) => e.type === "progress" && e.step === "cancel-computations" && events.push(e.message),
    }));
    expect(result.exitCode).toBe(1);
    expect(result.error?.message).toMatch(/host key it presented does not match/);
    expect(events).toEqual([]); // no retry
  });
  expect(refusals.services.requests()).toEqual([]);
});

test("a 4xx from the services API fails the step without retrying", async () => {
  refusals.services.setMode({ kind: "error", status: 403, times: 5 });
  try {
    await expectUnchanged(refusals, async () => {
      const result = await upgrade(optionsFor(refusals));
      expect(result.exitCode).toBe(1);
      expect(result.error?.message).toMatch(/services API answered HTTP 403/);
      expect(result.steps.map((s) => [s.step, s.status])).toEqual([
        ["select-stack", "done"], ["lock-stack", "done"], ["repair-interrupted-update", "done"],
        ["read-outputs", "done"], ["refresh-config", "done"], ["checkout-release", "done"], ["plan-update", "done"],
        ["confirm-plan", "done"], ["cancel-computations", "failed"], ["restore-alarms", "done"],
      ]);
    });
    expect(refusals.services.requests()).toHaveLength(1);
  } finally {
    refusals.services.setMode({ kind: "normal" });
  }
});

test("a services API that hangs: each request times out, is retried within the budget, then the run stops with nothing changed", async () => {
  refusals.services.setMode({ kind: "hang" });
  const retries: string[] = [];
  try {
    await expectUnchanged(refusals, async () => {
      const result = await upgrade(optionsFor(refusals, { codeOcean: { servicesTimeoutMs: 1000 }, onEvent: (e) => e.type === "progress" && e.step === "cancel-computations" && retries.push(e.message) }));
      expect(result.exitCode).toBe(1);
      expect(result.error?.message).toMatch(/cancel the running computations .*: no answer within 1s \(curl timed out\)/);
    });
    expect(retries).toHaveLength(4);
    expect(refusals.services.requests().filter((r) => r.status === "hung")).toHaveLength(5);
  } finally {
    refusals.services.setMode({ kind: "normal" });
  }
});

test("workers that never drain: exit 3 at the deadline with the last values, nothing changed after the cancel", async () => {
  refusals.services.setMode({ kind: "never-drains" });
  const progress: string[] = [];
  await expectUnchanged(refusals, async () => {
    const result = await upgrade(optionsFor(refusals, { codeOcean: { drainTimeoutMs: 6000 }, onEvent: (e) => e.type === "progress" && progress.push(e.message) }));
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/not drained within 0:0\d; last seen: workers-refusals-1-asg: .*workers-gpu-refusals-asg: /);
    expect(result.steps.map((s) => s.step)).not.toContain("up");
  });
  expect(progress.length).toBeGreaterThanOrEqual(3);
  expect(progress.at(-1)).toMatch(/deadline 0:06/);
});

test("an update that skips stripping scale-in protection fails as it would in production", async () => {
  execFileSync("git", ["checkout", "-q", "2.0.0"], { cwd: refusals.deployment.workDir });
  try {
    await expect(refusals.deployment.stack.up()).rejects.toThrow(/protected from scale-in/);
    // The old ASG stays in the state marked for deletion: the preview does not count it, but the
    // stack is not up to date (the next `up` deletes it), so the runbook must still run.
    const dry = await upgrade(optionsFor(refusals, { dryRun: true }));
    expect(dry.steps.find((s) => s.step === "plan-update")?.note).toMatch(/1 replaced resource\(s\) still to delete \(workers-asg\)/);
    expect(dry.steps.find((s) => s.step === "cancel-computations")).toMatchObject({ status: "skipped", note: expect.stringMatching(/^dry run: would POST/) });
  } finally {
    execFileSync("git", ["checkout", "-q", "1.0.0"], { cwd: refusals.deployment.workDir });
  }
});

test("transient faults are retried: services 5xx, throttled GetMetricData, a 5xx and a dropped call on Auto Scaling", async () => {
  const scenario = await startCodeOceanScenario(bed, { stackName: "faults", workers: 2, gpuWorkers: 1 });
  try {
    scenario.services.setMode({ kind: "error", status: 503, times: 2 });
    bed.aws!.clearCalls();
    bed.aws!.inject({ action: "GetMetricData", kind: "throttle", times: 2 });
    bed.aws!.inject({ action: "SetInstanceProtection", kind: "server-error", times: 1 });
    bed.aws!.inject({ action: "DisableAlarmActions", kind: "drop", times: 1 });
    const retries: string[] = [];
    const result = await upgrade(optionsFor(scenario, { release: "2.0.0", onEvent: (e) => e.type === "progress" && e.step === "cancel-computations" && retries.push(e.message) }));
    expect(result.error).toBeUndefined();
    expect(result.exitCode).toBe(0);
    // (verify-deployment's GETs of the services API after `up` are not cancel requests)
    expect(scenario.services.requests().filter((r) => r.method === "POST").map((r) => r.status)).toEqual([503, 503, 200]);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatch(/attempt 1 failed \(.*HTTP 503\); retrying/);
    const statuses = (action: string) => bed.aws!.calls().filter((c) => c.action === action).map((c) => c.status);
    expect(statuses("GetMetricData").slice(0, 3)).toEqual([400, 400, 200]);
    expect(statuses("SetInstanceProtection").slice(0, 2)).toEqual([500, 200]);
    expect(statuses("DisableAlarmActions")).toEqual(["dropped", 200]);
    expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
  } finally {
    await scenario.stop();
  }
});

test("a project dir without Pulumi.yaml, and a wrong passphrase: exit 2, named, nothing changed", async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "uo-empty-"));
  await expectUnchanged(refusals, async () => {
    const noProject = await upgrade(optionsFor(refusals, { cwd: empty }));
    expect(noProject.exitCode).toBe(2);
    expect(noProject.error?.message).toMatch(/could not open the Pulumi project in .*uo-empty-.*: there is no Pulumi.yaml there\n  hint: pass --cwd/);

    const wrong = await runCli(["upgrade", ...refusals.upgradeArgs, "--yes", "--json"], { ...bed.env, PULUMI_CONFIG_PASSPHRASE: "not-the-passphrase" });
    expect(wrong.code).toBe(2);
    const summary = wrong.events().at(-1);
    expect(summary).toMatchObject({ type: "summary", exitCode: 2, error: expect.stringMatching(/passphrase/i), hint: expect.stringMatching(/PULUMI_CONFIG_PASSPHRASE/) });
    expect(wrong.stdout + wrong.stderr).not.toContain("not-the-passphrase");
  });
  expect(refusals.services.requests()).toEqual([]);
});

test("a stack without ec2ServicesInstanceId is refused for the Code Ocean runbook (exit 2)", async () => {
  const workDir = copyFixture("echo-project");
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  const stack = await LocalWorkspace.createStack({ stackName: "not-codeocean", workDir }, { pulumiCommand, envVars: bed.env });
  await stack.setConfig("message", { value: "hi" });
  await stack.up();
  const result = await upgrade({ ...optionsFor(refusals), stack: "not-codeocean", cwd: workDir, runbook: "codeocean-private-cloud" });
  expect(result.exitCode).toBe(2);
  expect(result.error?.message).toMatch(/the stack has no ec2ServicesInstanceId output\n  hint: .*--runbook none/);
  expect((await stack.history()).length).toBe(1);
  fs.rmSync(workDir, { recursive: true, force: true });
});

test("SSH refused (nothing listens on the port): retried, then a clear failure, nothing changed", async () => {
  const closed = 1; // tcpmux: nothing listens there on loopback
  const retries: string[] = [];
  await expectUnchanged(refusals, async () => {
    const result = await upgrade(optionsFor(refusals, {
      codeOcean: { ssh: { ...optionsFor(refusals).codeOcean!.ssh, port: closed } },
      onEvent: (e) => e.type === "progress" && e.step === "cancel-computations" && retries.push(e.message),
    }));
    expect(result.exitCode).toBe(1);
    expect(result.error?.message).toMatch(/could not connect to .*@127\.0\.0\.1:1: .*ECONNREFUSED[\s\S]*hint: check that the host is up/);
  });
  expect(retries).toHaveLength(4);
});

test("5xx forever from the services API: retried within the budget, then exit 1, nothing changed", async () => {
  refusals.services.setMode({ kind: "error", status: 502, times: 100 });
  try {
    await expectUnchanged(refusals, async () => {
      const result = await upgrade(optionsFor(refusals));
      expect(result.exitCode).toBe(1);
      expect(result.error?.message).toMatch(/services API answered HTTP 502/);
    });
    expect(refusals.services.requests().filter((r) => r.status === 502)).toHaveLength(5);
  } finally {
    refusals.services.setMode({ kind: "normal" });
  }
});

test("a worker ASG output naming an ASG that does not exist: its own error, not 'idle'", async () => {
  const ghost = await startCodeOceanScenario(bed, { stackName: "ghost", workers: 1, gpuWorkers: 1 });
  try {
    const aws = createAwsClients(awsSettingsFromEnv(bed.env));
    await aws.autoScaling.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "workers-gpu-ghost-asg", ForceDelete: true }));
    aws.destroy();
    await expectUnchanged(ghost, async () => {
      const result = await upgrade(optionsFor(ghost));
      expect(result.exitCode).toBe(1);
      expect(result.error?.message).toMatch(/could not find the worker auto scaling groups: workers-gpu-ghost-asg does not exist in this account and region/);
    });
    expect(ghost.services.requests()).toEqual([]);
  } finally {
    await ghost.stop();
  }
});

test("a metric with no datapoints is unknown, never idle: the deadline refuses with exit 3", async () => {
  const silent = await startCodeOceanScenario(bed, { stackName: "silent", workers: 1, gpuWorkers: 0, publishMetrics: false });
  try {
    await expectUnchanged(silent, async () => {
      const result = await upgrade(optionsFor(silent, { codeOcean: { drainTimeoutMs: 4000 } }));
      expect(result.exitCode).toBe(3);
      expect(result.error?.message).toMatch(/last seen: workers-silent-1-asg: unknown \(no datapoints\)/);
    });
  } finally {
    await silent.stop();
  }
});

test("`up` failing in a resource: exit 1 naming the resource error, alarms still restored", async () => {
  const broken = await startCodeOceanScenario(bed, { stackName: "broken", workers: 1, gpuWorkers: 1, drainMs: 2000 });
  try {
    const before = (await awsSnapshot(bed.env)).alarms;
    bed.aws!.inject({ action: "CreateAutoScalingGroup", kind: "server-error", times: 10 });
    const result = await upgrade(optionsFor(broken, { release: "2.0.0" }));
    bed.aws!.clearFaults();
    expect(result.exitCode).toBe(1);
    expect(result.error?.message).toMatch(/could not apply the update \(pulumi up\): .*(InternalFailure|Internal failure)/);
    expect(result.steps.at(-1)).toMatchObject({ step: "restore-alarms", status: "done" });
    const after = (await awsSnapshot(bed.env)).alarms;
    for (const name of Object.keys(before).filter((n) => n.includes("-broken-"))) expect([name, after[name]]).toEqual([name, true]);
  } finally {
    await broken.stop();
  }
});

// last in this file: it deletes the refusals deployment's data volume
test("no data volume to take the restore point of: refused at confirm-plan (exit 3), before any disruption; nothing changed", async () => {
  const volume = refusals.deployment.outputs.ebsVolumeId!.value as string;
  const aws = createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
  try {
    // (moto answers a DetachVolume without the instance with a 500)
    await aws.ec2.send(new DetachVolumeCommand({ VolumeId: volume, InstanceId: refusals.deployment.outputs.ec2ServicesInstanceId!.value as string }));
    await aws.ec2.send(new DeleteVolumeCommand({ VolumeId: volume }));
  } finally {
    aws.destroy();
  }
  await refusals.services.reset();
  await expectUnchanged(refusals, async () => {
    const result = await upgrade(optionsFor(refusals));
    expect(result.exitCode).toBe(3);
    expect(result.steps.find((s) => s.status === "failed")).toMatchObject({
      step: "confirm-plan",
      error: expect.stringMatching(new RegExp(`could not take a restore point before \`up\`: no data volume of the services machine found: the ebsVolumeId output names ${volume}, which EC2 does not have[\\s\\S]*hint: .*--no-restore-point`)),
    });
    expect(result.steps.map((s) => s.step)).not.toContain("cancel-computations");
  });
  expect(refusals.services.requests()).toEqual([]);
  expect(Object.values(refusals.services.running()).every((n) => n > 0)).toBe(true);
});
