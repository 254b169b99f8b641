import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade } from "../../stacks/upgrade";
import { runCli } from "../sandbox/cli";
import { backupKey, localhostUrl, ownStackConfig, REPLACING_KEY, startVpcFixture, templateKey, VARIANTS, variantKey, type VpcDeployment, type VpcFixture } from "../sandbox/codeoceanVpc";
import { ownStack, type OwnStack } from "../sandbox/ownStack";
import { startSandbox, type Sandbox } from "../sandbox";

// Runbook 2 (Code Ocean VPC, CloudFormation) as the CodeOceanVpc resource of an own stack, through
// the same driver as any stack: moto's CloudFormation, S3, RDS, Batch and Auto Scaling behind the
// bed's fault proxy (which compensates where moto is not AWS: see the README).
let bed: Sandbox;
let vpc: VpcFixture;
let acc: VpcDeployment;
let own: OwnStack;
const outputs: string[] = [];

async function run(target: OwnStack) {
  const events: UpgradeEvent[] = [];
  const result = await upgrade({ stack: target.stack.name, cwd: target.workDir, yes: true, env: bed.env, onEvent: (e) => void events.push(e) });
  outputs.push(JSON.stringify(events), result.report);
  const diagnostics = events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));
  return { result, events, diagnostics };
}

beforeAll(async () => {
  bed = await startSandbox({ ssh: false });
  vpc = await startVpcFixture(bed);
  // The database auto-scaled to 150 GiB, past the stack's pRdsMaxAllocatedStorage (100), after the operator raised its ceiling to 400 in the console.
  acc = await vpc.deploy("acc", { liveStorage: 150, liveMaxStorage: 400 });
  own = await ownStack(bed, "vpc", ownStackConfig);
  await own.setSystems({ vpc: vpc.systemConfig(acc, "3.7.0") });
});

/** The engine's preview line of the resource, through the real CLI's --dry-run. */
async function previewLine(target: OwnStack): Promise<string | undefined> {
  const dry = await runCli(["upgrade", "--stack", target.stack.name, "--cwd", target.workDir, "--dry-run"], bed.env);
  outputs.push(dry.stdout, dry.stderr);
  expect(dry.code).toBe(0);
  return dry.stdout.split("\n").find((l) => l.includes("[confirm-plan] ~ pulumi-nodejs:dynamic/codeocean-vpc:CodeOceanVpc vpc ("));
}
afterAll(async () => {
  await own?.remove();
  await vpc?.stop();
  await bed?.stop();
});

test("a first `up` (version: 3.7.0) adopts the deployment at v3.7.0, changes nothing in AWS and calls no maintenance hook", async () => {
  const before = await vpc.snapshot(acc);
  const { result, diagnostics } = await run(own);
  expect(result.error).toBeUndefined();
  expect(result.outputs?.versions).toEqual({ vpc: "v3.7.0" });
  expect(diagnostics.join("\n")).toMatch(/disable-maintenance skipped \(nothing was updated by this run\)/);
  expect(await vpc.snapshot(acc)).toBe(before);
  expect(vpc.hook.requests).toEqual([]);
});

test("the preview of version: 3.8.2 shows v3.7.0 → v3.8.2, as the template writes it, and the stacks in order", async () => {
  await own.setSystems({ vpc: vpc.systemConfig(acc, "3.8.2") });
  const before = await vpc.snapshot(acc);
  const line = await previewLine(own);
  expect(line).toMatch(/version: v3\.7\.0 → v3\.8\.2/);
  expect(line).toMatch(/plannedStacks: \(none\) → role acc-role, backup acc-backup, primary acc-vpc/);
  expect(await vpc.snapshot(acc)).toBe(before);
});

test("`up` updates role, backup and primary stacks in order, passing the live storage and a ceiling valid for it; the primary ends UPDATE_COMPLETE at v3.8.2", async () => {
  const started = Date.now();
  const { result, diagnostics } = await run(own);
  const log = diagnostics.join("\n");
  expect(result.error).toBeUndefined();
  expect(result.exitCode).toBe(0);
  expect(result.outputs?.versions).toEqual({ vpc: "v3.8.2" });
  for (const [name, version] of [[acc.role, "v3.8.2"], [acc.backup, "v1.2.1"], [acc.primary, "v3.8.2"]]) {
    const s = await vpc.status(name!);
    expect([name, s.status]).toEqual([name, "UPDATE_COMPLETE"]);
    expect(s.template).toMatch(new RegExp(`Version: ${version!.replace(/\./g, "\\.")}\\n`));
  }
  // What the change set carried, as moto recorded it: the live storage, and the operator's live ceiling (400), not the stack's stale 100.
  const primary = await vpc.status(acc.primary);
  expect(primary.parameters).toMatchObject({ pRdsAllocatedStorage: "150", pRdsMaxAllocatedStorage: "400", pRdsInstanceType: "db.t4g.small", pWorkerInstanceType: "t3.medium" });
  expect(Number(primary.parameters.pRdsMaxAllocatedStorage)).toBeGreaterThanOrEqual(Math.ceil(150 * 1.1));
  expect(await vpc.allocatedStorage(acc)).toBe(150);
  expect(log).toMatch(/pRdsAllocatedStorage: the database has auto-scaled to 150 GiB, above the stack's 20; passing 150/);
  expect(log).toMatch(/pRdsMaxAllocatedStorage: the database's live ceiling is 400 GiB \(set outside the stack\), the stack's is 100; passing 400/);
  // the order of the runbook, and per-resource progress of the primary's update
  const at = (re: RegExp) => diagnostics.findIndex((l) => re.test(l));
  // reading and reviewing first; maintenance mode verified before any stack is updated
  const order = [
    /check-rds-storage done/,
    /review-primary-stack done \(\d+ resource change\(s\)/,
    /review-role-stack done \(acc-role: \d+ resource change\(s\)/,
    /review-backup-stack done \(acc-backup: \d+ resource change\(s\)/,
    /maintenance: enable hook: POST .* → HTTP 200/,
    /enable-maintenance done \(verified: 0 Batch job/,
    /update-role-stack done \(acc-role: UPDATE_COMPLETE/,
    /update-backup-stack done \(acc-backup: UPDATE_COMPLETE/,
    /acc-vpc: DataVolume UPDATE_COMPLETE/,
    /update-primary-stack done \(UPDATE_COMPLETE at v3\.8\.2\)/,
    /disable-maintenance done \(disable hook/,
  ].map(at);
  expect(order.every((i) => i >= 0)).toBe(true);
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  expect(log).toMatch(/maintenance: waiting for its effects: 3 Batch job\(s\) active in 1 queue\(s\), 2 worker instance\(s\)/);
  expect(await vpc.workerInstances(acc)).toBe(0);
  expect(vpc.hook.requests.map((r) => [r.path, r.authorization])).toEqual([["/maintenance/enable", "Bearer bed-admin-token"], ["/maintenance/disable", undefined]]);
  expect(vpc.compensation.executions(acc.primary)).toBe(1);
  // the workflow's step-end lines carry each step's duration
  const workflowSteps = diagnostics.flatMap((l) => {
    const m = /codeocean-vpc acc-vpc → v3\.8\.2: ([a-z-]+) (done|skipped|failed)\b.* \[(\d+\.\d)s\]$/.exec(l);
    return m ? [`${m[1]} ${m[2]} ${m[3]}s`] : [];
  });
  expect(workflowSteps.map((l) => l.split(" ")[0])).toEqual([
    "check-rds-storage", "review-primary-stack", "review-role-stack", "review-backup-stack", "enable-maintenance",
    "update-role-stack", "update-backup-stack", "update-primary-stack", "disable-maintenance",
  ]);
  const timing = result.steps.map((s) => `${s.step} ${(s.durationMs / 1000).toFixed(1)}s`).join(", ");
  outputs.push(timing);
  console.log(`acceptance run ${((Date.now() - started) / 1000).toFixed(1)} s\ndriver steps: ${timing}\nworkflow steps (up): ${workflowSteps.join(", ")}`);
});

test("a second `up`, with the setting written 3.8.2 or v3.8.2, changes nothing and calls no maintenance hook", async () => {
  const before = await vpc.snapshot(acc);
  const hookCalls = vpc.hook.requests.length;
  for (const version of ["3.8.2", "v3.8.2"]) {
    await own.setSystems({ vpc: vpc.systemConfig(acc, version) });
    const { result } = await run(own);
    expect(result.exitCode).toBe(0);
    expect(result.steps.find((s) => s.step === "up")).toMatchObject({ status: "skipped", note: "nothing to update" });
    expect(result.outputs?.versions).toEqual({ vpc: "v3.8.2" });
  }
  expect(await vpc.snapshot(acc)).toBe(before);
  expect(vpc.hook.requests.length).toBe(hookCalls);
});

describe("the setting written as the template writes it (v3.7.0, then v3.8.2)", () => {
  let d: VpcDeployment;
  let target: OwnStack;
  beforeAll(async () => {
    // Auto-scaled to 150 GiB past the stack's ceiling of 100, and no ceiling set live: the change set must carry one RDS accepts.
    d = await vpc.deploy("accv", { liveStorage: 150 });
    target = await ownStack(bed, "vpcv", ownStackConfig);
  });
  afterAll(async () => target?.remove());

  test("adoption at v3.7.0 calls no hook; the preview shows v3.7.0 → v3.8.2; the update ends at v3.8.2 with a ceiling 10 % above the storage", async () => {
    const hookCalls = vpc.hook.requests.length;
    await target.setSystems({ vpc: vpc.systemConfig(d, "v3.7.0") });
    const adopted = await run(target);
    expect(adopted.result.outputs?.versions).toEqual({ vpc: "v3.7.0" });
    expect(adopted.diagnostics.join("\n")).toMatch(/disable-maintenance skipped \(nothing was updated by this run\)/);
    expect(vpc.hook.requests.length).toBe(hookCalls);

    await target.setSystems({ vpc: vpc.systemConfig(d, "v3.8.2") });
    expect(await previewLine(target)).toMatch(/version: v3\.7\.0 → v3\.8\.2/);
    const { result } = await run(target);
    expect(result.error).toBeUndefined();
    expect(result.outputs?.versions).toEqual({ vpc: "v3.8.2" });
    const primary = await vpc.status(d.primary);
    expect(primary.status).toBe("UPDATE_COMPLETE");
    expect(primary.template).toMatch(/Version: v3\.8\.2\n/);
    expect(primary.parameters).toMatchObject({ pRdsAllocatedStorage: "150", pRdsMaxAllocatedStorage: "165" });
  });
});

describe("refused with a clear error, every stack byte-identical", () => {
  let ref: VpcDeployment;
  let old: VpcDeployment;
  let target: OwnStack;
  beforeAll(async () => {
    ref = await vpc.deploy("ref");
    old = await vpc.deploy("old", { version: "3.0.5" });
    target = await ownStack(bed, "vpcref", ownStackConfig);
  });
  afterAll(async () => target?.remove());

  // Through the whole driver (its preview fails, exit code and message as an operator sees them).
  const driverCases: Array<{ name: string; config: () => Record<string, unknown>; reason: RegExp; pin?: string }> = [
    { name: "a downgrade", config: () => vpc.systemConfig(ref, "3.6.0"), reason: /refused: v3\.7\.0 → v3\.6\.0 is a downgrade/ },
    { name: "a stack in UPDATE_ROLLBACK_FAILED", config: () => vpc.systemConfig(ref, "3.8.2"), reason: /refused: the stack ref-vpc is in UPDATE_ROLLBACK_FAILED; continue the rollback first: aws cloudformation continue-update-rollback --stack-name ref-vpc/, pin: "UPDATE_ROLLBACK_FAILED" },
  ];
  test.each(driverCases)("$name: the preview fails", async ({ config, reason, pin }) => {
    if (pin) vpc.compensation.pinStatus(ref.primary, pin);
    try {
      const before = [await vpc.snapshot(ref), await vpc.snapshot(old)];
      await target.setSystems({ vpc: config() });
      const { result } = await run(target);
      expect(result.exitCode).toBe(1);
      expect(result.steps.find((s) => s.step === "plan-update")).toMatchObject({ status: "failed" });
      expect(result.error?.message).toMatch(reason);
      expect([await vpc.snapshot(ref), await vpc.snapshot(old)]).toEqual(before);
      expect(vpc.compensation.executions(ref.primary)).toBe(0);
    } finally {
      vpc.compensation.pinStatus(ref.primary, undefined);
    }
  });

  // The same check the engine calls at preview, called directly (the engine's part is shown above): quicker.
  const checkCases: Array<{ name: string; config: () => Record<string, unknown>; reason: RegExp; pin?: string }> = [
    { name: "an unknown stack", config: () => ({ ...vpc.systemConfig(ref, "3.8.2"), stackName: "nope-vpc" }), reason: /no stack named nope-vpc in this account and region.*check stackName and region/ },
    { name: "a version below 3.1", config: () => vpc.systemConfig(old, "3.8.2"), reason: /refused: Code Ocean v3\.0\.5 has no maintenance mode.*stop running computations and AWS Batch jobs .* by hand/ },
    { name: "a missing template", config: () => ({ ...vpc.systemConfig(ref, "3.9.0"), templateUrl: localhostUrl(templateKey("v3.9.0")) }), reason: /could not read the template http:\/\/localhost\/codeocean-vpc\/templates\/v3\.9\.0\/codeocean\.template\.yaml.*is the version published/ },
    { name: "a stack in ROLLBACK_COMPLETE", config: () => vpc.systemConfig(ref, "3.8.2"), reason: /refused: the stack ref-vpc is in ROLLBACK_COMPLETE; the stack's creation failed and it can only be deleted/, pin: "ROLLBACK_COMPLETE" },
    {
      name: "a backup stack whose template is missing",
      config: () => ({ ...vpc.systemConfig(ref, "3.8.2"), backupStack: { stackName: ref.backup, templateUrl: localhostUrl(backupKey("v9.9.9")) } }),
      reason: /backupStack: could not read the template http:\/\/localhost\/codeocean-vpc\/templates\/codeocean-backup\/v9\.9\.9\/codeocean-backup\.template\.yaml/,
    },
  ];
  test.each(checkCases)("$name: refused by check", async ({ config, reason, pin }) => {
    if (pin) vpc.compensation.pinStatus(ref.primary, pin);
    const saved = { ...process.env };
    Object.assign(process.env, bed.env);
    try {
      const before = [await vpc.snapshot(ref), await vpc.snapshot(old)];
      const { kind: _kind, ...inputs } = config();
      const { check } = await import("../../workflows/codeocean-vpc/provider");
      const result = await check({ version: "3.7.0" }, inputs);
      expect(result.failures?.map((f) => f.reason).join("\n")).toMatch(reason);
      expect([await vpc.snapshot(ref), await vpc.snapshot(old)]).toEqual(before);
    } finally {
      process.env = saved;
      vpc.compensation.pinStatus(ref.primary, undefined);
    }
  });

  test("a change set that would remove the database: refused before any stack is touched, the change set deleted", async () => {
    const before = await vpc.snapshot(ref);
    const hookCalls = vpc.hook.requests.length;
    await target.setSystems({ vpc: { ...vpc.systemConfig(ref, "3.8.2"), templateUrl: localhostUrl(REPLACING_KEY) } });
    const { result, diagnostics } = await run(target);
    expect(result.exitCode).toBe(3);
    expect(result.error?.message).toMatch(/refused: could not update the CloudFormation stack ref-vpc: the change set would destroy data: Remove AnalyticsDBInstance AWS::RDS::DBInstance: a database: its rows go with it; the change set was deleted and the stack is untouched/);
    expect(diagnostics.join("\n")).toMatch(/change set upgrade-orchestrator-\w+: Add AnalyticsDBInstanceV2 AWS::RDS::DBInstance;.*Remove AnalyticsDBInstance/);
    expect(await vpc.snapshot(ref)).toBe(before);
    expect(vpc.hook.requests.length).toBe(hookCalls); // maintenance mode was never asked for
  });

  // The provider's update, called directly as the engine calls it (the engine's part is shown above): quicker.
  async function updateDirectly(config: Record<string, unknown>): Promise<string> {
    const saved = { ...process.env };
    Object.assign(process.env, bed.env);
    try {
      const { kind: _kind, ...inputs } = config;
      const { update } = await import("../../workflows/codeocean-vpc/provider");
      return await update("id", {}, inputs).then(() => "updated", (err: Error) => err.message);
    } finally {
      process.env = saved;
    }
  }

  const replaced = Object.entries(VARIANTS).filter(([, v]) => v.action === "Modify");
  test.each(replaced.map(([name, v]) => ({ name, ...v })))("a change set replacing $logicalId ($type): refused at review, naming it, its type and why", async ({ name, logicalId, type }) => {
    const before = await vpc.snapshot(ref);
    const hookCalls = vpc.hook.requests.length;
    const message = await updateDirectly({ ...vpc.systemConfig(ref, "3.8.2"), templateUrl: localhostUrl(variantKey(name)) });
    const escaped = type.replace(/:/g, ":");
    expect(message).toMatch(new RegExp(`refused: could not update the CloudFormation stack ref-vpc: the change set would destroy data: Modify ${logicalId} ${escaped} \\(replacement: True\\): [^;]+; the change set was deleted and the stack is untouched`));
    expect(await vpc.snapshot(ref)).toBe(before);
    expect(vpc.hook.requests.length).toBe(hookCalls);
    expect(vpc.compensation.executions(ref.primary)).toBe(0);
  });

  test("a change set removing a Retain-marked resource of a type on no list: refused by the template author's word", async () => {
    const kept = await vpc.deploy("kept", { retainedExtra: true });
    const before = await vpc.snapshot(kept);
    const message = await updateDirectly(vpc.systemConfig(kept, "3.8.2"));
    expect(message).toMatch(/the change set would destroy data: Remove LicenseKeyParameter AWS::SSM::Parameter: the template marks it DeletionPolicy: Retain \(its author keeps its data\); the change set was deleted/);
    expect(await vpc.snapshot(kept)).toBe(before);
    expect(vpc.compensation.executions(kept.primary)).toBe(0);
  });

  test("a DataVolume grown live above the template's 500 GiB: refused at review, naming it", async () => {
    const grown = await vpc.deploy("grown", { dataVolumeSize: 800 });
    const before = await vpc.snapshot(grown);
    const message = await updateDirectly(vpc.systemConfig(grown, "3.8.2"));
    expect(message).toMatch(new RegExp(`the change set would shrink what was grown live: DataVolume AWS::EC2::Volume \\(${grown.dataVolume}\\) is 800 GiB live, the template sets 500 GiB; the change set was deleted and the stack is untouched`));
    expect(await vpc.snapshot(grown)).toBe(before);
    expect(await vpc.dataVolumeSize(grown)).toBe(800);
    expect(vpc.compensation.executions(grown.primary)).toBe(0);
  });
});

test("no hook token or passphrase in the plaintext state, the events or the reports", async () => {
  const backend = fileURLToPath(bed.pulumi!.backendUrl);
  const state = files(backend).filter((f) => f.endsWith(".json")).map((f) => fs.readFileSync(f, "utf8")).join("\n");
  expect(state).toMatch(/codeocean-vpc:CodeOceanVpc/);
  for (const text of [state, ...outputs]) {
    expect(text.includes("bed-admin-token")).toBe(false);
    expect(text.includes(bed.env.PULUMI_CONFIG_PASSPHRASE!)).toBe(false);
  }
});

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
