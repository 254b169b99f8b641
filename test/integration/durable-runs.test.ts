import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { engineLocksPrefix, openBackendStore } from "../../stacks/backend";
import { awsSnapshot } from "../sandbox/awsState";
import { runCli, startCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { startSandbox, type Sandbox } from "../sandbox";

// Crashes, interrupts and concurrent runs against the real bed. Each scenario prints a row of the
// fault-suite table at the end. The resume, concurrency and interrupted-`up` cases run on both
// Pulumi backends (a file:// directory and an s3:// bucket in moto); the rest on file:// only.
type Backend = "file" | "s3";
const BACKENDS: Backend[] = ["file", "s3"];
const beds = {} as Record<Backend, Sandbox>;
let bed: Sandbox; // the file:// bed, for the cases that run there only
const scenarios: CodeOceanScenario[] = [];
// Known secrets for the whole suite: the Pulumi passphrase (the bed's), an SSH key protected by a
// passphrase, and the deployment's database password. None may appear anywhere but encrypted.
const SSH_KEY_PASSPHRASE = "suite-ssh-key-passphrase-7c1e";
const DB_PASSWORD = "suite-db-password-51ab";
const sshKeys = {} as Record<Backend, string>;
const captured: string[] = [];
const envs = {} as Record<Backend, Record<string, string>>;
const table: Array<{ scenario: string; outcome: string; seconds: number }> = [];
jest.setTimeout(600_000); // two beds, Code Ocean deployments on each: minutes on a busy machine

beforeAll(async () => {
  await Promise.all(
    BACKENDS.map(async (backend) => {
      const b = (beds[backend] = await startSandbox({ backend }));
      const key = (sshKeys[backend] = path.join(b.dir, "operator_key"));
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", SSH_KEY_PASSPHRASE, "-f", key]);
      fs.appendFileSync(path.join(b.dir, "ssh", "authorized_keys"), fs.readFileSync(`${key}.pub`));
      envs[backend] = { ...b.env, UPGRADE_SSH_KEY_PASSPHRASE: SSH_KEY_PASSPHRASE };
    }),
  );
  bed = beds.file;
});

/** The suite's scenario: a deployment whose upgrade uses the passphrase-protected key. */
async function deploy(options: Parameters<typeof startCodeOceanScenario>[1], backend: Backend = "file"): Promise<{ s: CodeOceanScenario; args: string[] }> {
  const s = await startCodeOceanScenario(beds[backend], { ...options, dbPassword: DB_PASSWORD });
  scenarios.push(s);
  const args = [...s.upgradeArgs];
  args[args.indexOf("--ssh-key") + 1] = sshKeys[backend];
  return { s, args };
}

const run = async (args: string[], extraEnv: Record<string, string> = {}, backend: Backend = "file") => {
  const result = await runCli(args, { ...envs[backend], ...extraEnv });
  captured.push(result.stdout, result.stderr);
  return result;
};
const start = (args: string[], onEvent: Parameters<typeof startCli>[2], backend: Backend = "file") => {
  const cli = startCli(args, envs[backend], onEvent);
  void cli.exited.then(() => captured.push(cli.stdout(), cli.stderr()));
  return cli;
};
afterAll(async () => {
  for (const s of scenarios) await s.stop();
  for (const b of Object.values(beds)) await b?.stop();
  const width = Math.max(...table.map((r) => r.scenario.length), 8);
  process.stderr.write(
    ["", "fault suite", `${"scenario".padEnd(width)}  outcome                         time`, ...table.map((r) => `${r.scenario.padEnd(width)}  ${r.outcome.padEnd(30)}  ${r.seconds.toFixed(1)}s`), ""].join("\n"),
  );
});

async function scenario(name: string, body: () => Promise<string>): Promise<void> {
  const started = Date.now();
  let outcome = "FAILED";
  try {
    outcome = await body();
  } finally {
    table.push({ scenario: name, outcome, seconds: (Date.now() - started) / 1000 });
  }
}

/** Runs the upgrade and kill -9s its whole process group as `up` starts its first replacement; resolves with the exit code. */
function killDuringUp(args: string[], backend: Backend = "file"): Promise<number> {
  let killed = false;
  const first = start(args, (e) => {
    const op = (e as { event?: { resourcePreEvent?: { metadata?: { op?: string } } } }).event?.resourcePreEvent?.metadata?.op;
    if (!killed && e.type === "engine" && e.step === "up" && op === "create-replacement") {
      killed = true;
      first.signal("SIGKILL", true);
    }
  }, backend);
  return first.exited;
}

const alarmsOf = async (stack: string, backend: Backend = "file") =>
  Object.fromEntries(Object.entries((await awsSnapshot(beds[backend].env)).alarms).filter(([name]) => name.includes(stack)));

describe.each(BACKENDS)("on the %s backend", (backend) => {
  test("kill -9 during wait-idle-workers, then the same command: resumes without cancelling twice", () =>
    scenario(`kill -9 in wait-idle-workers (${backend})`, async () => {
      const { s, args: bedArgs } = await deploy({ stackName: "crashwait", workers: 2, gpuWorkers: 1, drainMs: 15_000 }, backend);
      const alarmsBefore = await alarmsOf("crashwait", backend);
      const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
      const first = start(args, (e) => {
        if (e.type === "progress" && e.step === "wait-idle-workers") first.signal("SIGKILL", true);
      }, backend);
      expect(await first.exited).toBe(137);

      const status = await run(["status", "--stack", "crashwait", "--cwd", s.deployment.workDir, "--json"], {}, backend);
      const last = JSON.parse(status.stdout).lastRun;
      expect(last).toMatchObject({ status: "running", unfinishedStep: "wait-idle-workers" });
      expect(last.steps.map((x: { step: string }) => x.step)).toContain("cancel-computations");
      const human = await run(["status", "--stack", "crashwait", "--cwd", s.deployment.workDir], {}, backend);
      expect(human.stdout).toMatch(/unfinished .*stopped during wait-idle-workers/);
      // another machine (no local journal) reads the same from the journal beside the state
      const elsewhere = await run(["status", "--stack", "crashwait", "--cwd", s.deployment.workDir, "--json"], { UPGRADE_ORCHESTRATOR_STATE: fs.mkdtempSync(path.join(beds[backend].dir, "machine-b-")) }, backend);
      expect(JSON.parse(elsewhere.stdout).lastRun).toMatchObject({ runId: last.runId, status: "running", journal: expect.stringMatching(/\.pulumi\/upgrade-orchestrator\/journal\/codeocean-deployment\/crashwait\//) });

      const second = await run(args, {}, backend);
      expect(second.code).toBe(0);
      const events = second.events();
      expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/took over \(its process has exited\)/) }));
      expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/resuming after run .* during wait-idle-workers/) }));
      expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "cancel-computations", status: "skipped", note: expect.stringMatching(/already requested/) }));
      expect(s.services.requests().filter((r) => r.path === "/cancel_computations")).toHaveLength(1);
      // the replaced ASG's alarms are new ones, of the new ASG; every alarm enabled
      expect(await alarmsOf("crashwait", backend)).toEqual(Object.fromEntries(Object.keys(alarmsBefore).map((n) => [n.replace("-1-asg", "-2-asg"), true])));
      return "resumed, succeeded";
    }));

  test("two concurrent runs on one stack: exactly one proceeds, the other is refused naming the holder", () =>
    scenario(`two concurrent runs (${backend})`, async () => {
      const { args: bedArgs } = await deploy({ stackName: "twice", workers: 1, gpuWorkers: 0, drainMs: 4000 }, backend);
      const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const first = start(args, (e) => e.type === "step-end" && e.step === "lock-stack" && locked(), backend);
      await isLocked;
      const second = await run(args, {}, backend);
      expect(second.code).toBe(3);
      const summary = second.events().at(-1);
      expect(summary).toMatchObject({ type: "summary", exitCode: 3, error: expect.stringMatching(/held by run \S+ by \S+ on \S+ \(pid \d+\) since /) });
      expect(await first.exited).toBe(0);
      return "one ran, one refused (exit 3)";
    }));

  test("kill -9 of the whole run during up (driver and engine), then the same command: repaired, succeeds", () =>
    scenario(`kill -9 in up (${backend})`, async () => {
      const { s, args: bedArgs } = await deploy({ stackName: "crashup", workers: 1, gpuWorkers: 1, drainMs: 3000 }, backend);
      const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
      expect(await killDuringUp(args, backend)).toBe(137);
      // the killed engine left its lock (and, depending on the moment, pending operations)
      const store = openBackendStore(beds[backend].pulumi!.backendUrl, beds[backend].env)!;
      const lockFiles = async () => (await store.list(engineLocksPrefix)).filter((k) => k.startsWith(`${engineLocksPrefix}organization/codeocean-deployment/crashup/`) && k.endsWith(".json")); // fileblob keeps .attrs beside
      expect(await lockFiles()).toHaveLength(1);

      const second = await run(args, {}, backend);
      // the summary beside the code: a failure says why, not only "1"
      expect([second.code, second.code === 0 ? "" : JSON.stringify(second.events().filter((e) => e.type === "step-end" || e.type === "summary").slice(-4))]).toEqual([0, ""]);
      const events = second.events();
      expect(events).toContainEqual(expect.objectContaining({ type: "note", message: expect.stringMatching(/interrupted and left: Pulumi's lock from pid \d+ .*process gone/) }));
      expect(events).toContainEqual(expect.objectContaining({ type: "step-end", step: "repair-interrupted-update", status: "done", note: expect.stringMatching(/^repaired: pulumi cancel/) }));
      expect(s.services.requests().filter((r) => r.path === "/cancel_computations")).toHaveLength(1);
      expect(await lockFiles()).toEqual([]);
      store.close();
      expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
      const alarms = await alarmsOf("crashup", backend);
      expect(Object.values(alarms).every((enabled) => enabled)).toBe(true);
      return "repaired, succeeded";
    }));
});

test("kill -9 during up leaves fileblob's metadata sidecar empty ('failed to load checkpoint: EOF', seen in CI and under stress-ng): the same command keeps it aside, repairs, succeeds", () =>
  scenario("torn sidecar after kill -9 in up", async () => {
    const { s, args: bedArgs } = await deploy({ stackName: "sidecar", workers: 1, gpuWorkers: 1, drainMs: 3000 });
    const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
    expect(await killDuringUp(args)).toBe(137);
    // what fileblob leaves when the kill lands between its os.Create of <stack>.json.attrs and the JSON
    const checkpoint = path.join(fileURLToPath(bed.pulumi!.backendUrl.split("?")[0]!), ".pulumi", "stacks", "codeocean-deployment", "sidecar.json");
    const whole = fs.readFileSync(checkpoint, "utf8");
    fs.truncateSync(`${checkpoint}.attrs`, 0);
    // the oracle: the real Pulumi CLI can no longer read the stack, with the message CI showed
    await expect(s.deployment.stack.exportStack()).rejects.toThrow(/failed to load checkpoint: EOF/);

    const again = await run(args);
    expect([again.code, again.code === 0 ? "" : JSON.stringify(again.events().filter((e) => e.type === "step-end" || e.type === "summary").slice(-3))]).toEqual([0, ""]);
    expect(again.events()).toContainEqual(expect.objectContaining({ type: "note", step: "select-stack", message: expect.stringMatching(/metadata sidecar .* is torn \(0 bytes .*; the checkpoint itself is whole: kept the sidecar as sidecar\.json\.attrs\.torn-\S+ \(run \S+ died in up\)/) }));
    expect(again.events()).toContainEqual(expect.objectContaining({ type: "step-end", step: "repair-interrupted-update", status: "done" }));
    // the checkpoint was not replaced by the backup: the run went on from the last whole save
    expect(again.events().filter((e) => e.type === "note" && /Pulumi's backup/.test(String((e as { message?: unknown }).message)))).toEqual([]);
    expect(fs.readdirSync(path.dirname(checkpoint)).filter((f) => f.startsWith("sidecar.json.attrs.torn-"))).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(`${checkpoint}.attrs`, "utf8"))).toEqual(expect.objectContaining({ md5: expect.any(String) })); // Pulumi's next saves wrote a new one
    expect(fs.readFileSync(checkpoint, "utf8")).not.toBe(whole);
    expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
    expect(Object.values(await alarmsOf("sidecar")).every((enabled) => enabled)).toBe(true);
    return "sidecar kept aside, repaired, succeeded";
  }));

test("a checkpoint torn as a machine crash can leave it (after kill -9 in up): refused without this machine's journal, restored from Pulumi's .bak with it, then repaired", () =>
  scenario("torn checkpoint after kill -9 in up", async () => {
    const { s, args: bedArgs } = await deploy({ stackName: "torn", workers: 1, gpuWorkers: 1, drainMs: 3000 });
    const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
    expect(await killDuringUp(args)).toBe(137);
    // fileblob's rename never leaves this; an unflushed page cache at a crash can: the checkpoint empty,
    // Pulumi's backup of the one before beside it
    const checkpoint = path.join(fileURLToPath(bed.pulumi!.backendUrl.split("?")[0]!), ".pulumi", "stacks", "codeocean-deployment", "torn.json");
    expect(fs.existsSync(`${checkpoint}.bak`)).toBe(true);
    fs.truncateSync(checkpoint, 0);

    // another machine (no journal of the killed run): refused, told about --repair, nothing touched
    const elsewhere = await run(args, { UPGRADE_ORCHESTRATOR_STATE: fs.mkdtempSync(path.join(bed.dir, "machine-b-")) });
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.events().at(-1)).toMatchObject({ type: "summary", error: expect.stringMatching(/checkpoint of stack torn .* is torn \(0 bytes/), hint: expect.stringMatching(/--repair/) });
    expect(fs.statSync(checkpoint).size).toBe(0);

    const again = await run(args);
    expect([again.code, again.code === 0 ? "" : JSON.stringify(again.events().filter((e) => e.type === "step-end" || e.type === "summary").slice(-3))]).toEqual([0, ""]);
    expect(again.events()).toContainEqual(expect.objectContaining({ type: "note", step: "select-stack", message: expect.stringMatching(/is torn .*: kept it as torn\.json\.torn-\S+ and put Pulumi's backup torn\.json\.bak in its place \(run \S+ died in up\)/) }));
    expect(again.events()).toContainEqual(expect.objectContaining({ type: "step-end", step: "repair-interrupted-update", status: "done" }));
    expect(fs.readdirSync(path.dirname(checkpoint)).filter((f) => f.startsWith("torn.json.torn-"))).toHaveLength(1);
    expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
    expect(Object.values(await alarmsOf("torn")).every((enabled) => enabled)).toBe(true);
    return "restored from .bak, repaired, succeeded";
  }));

test("Ctrl-C during up: the update is cancelled, alarms restored, exit 130, the next run succeeds", () =>
  scenario("SIGINT in up", async () => {
    const { s, args: bedArgs } = await deploy({ stackName: "sigint", workers: 1, gpuWorkers: 1, drainMs: 3000 });
    const alarmsBefore = await alarmsOf("sigint");
    const args = ["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"];
    let sent = false;
    const first = start(args, (e) => {
      if (!sent && e.type === "step-start" && e.step === "up") {
        sent = true;
        setTimeout(() => first.signal("SIGINT"), 300);
      }
    });
    expect(await first.exited).toBe(130);
    expect(first.stderr()).toMatch(/SIGINT: stopping after the current step/);
    const summary = first.stdout().trim().split("\n").map((l) => JSON.parse(l)).at(-1);
    expect(summary).toMatchObject({ type: "summary", status: "failed", exitCode: 130 });
    const restore = first.stdout().trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.type === "step-end" && e.step === "restore-alarms");
    expect(restore).toMatchObject({ status: "done" });
    // every alarm that still exists has its actions back
    const after = await alarmsOf("sigint");
    for (const [name, enabled] of Object.entries(after)) expect([name, enabled]).toEqual([name, alarmsBefore[name] ?? true]);

    const second = await run(args);
    expect(second.stderr).toBe("");
    expect(second.code).toBe(0);
    expect((await s.deployment.stack.outputs()).deployedRelease?.value).toBe("2.0.0");
    return "exit 130, restored; rerun succeeded";
  }));

test("an engine lock from another host is not cleared without --repair", () =>
  scenario("foreign engine lock", async () => {
    const { s, args: bedArgs } = await deploy({ stackName: "foreign", workers: 1, gpuWorkers: 0 });
    const { url } = await s.deployment.stack.workspace.whoAmI();
    const dir = path.join(fileURLToPath(url!), ".pulumi", "locks", "organization", "codeocean-deployment", "foreign");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "e0d1.json"), JSON.stringify({ pid: 4242, username: "ci", hostname: "runner-7", timestamp: new Date().toISOString() }));
    const refusedRun = await run(["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json"]);
    expect(refusedRun.code).toBe(3);
    expect(refusedRun.events().at(-1)).toMatchObject({ error: expect.stringMatching(/pid 4242 on runner-7.*another host/), hint: expect.stringMatching(/--repair/) });
    expect(s.services.requests()).toEqual([]);
    const repaired = await run(["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json", "--repair"]);
    expect(repaired.code).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".json"))).toEqual([]);
    return "refused, then --repair succeeded";
  }));

test("no secret reaches stdout, stderr, JSON events, journals, reports or plaintext state", () =>
  scenario("secrets scan", async () => {
    const { args: bedArgs } = await deploy({ stackName: "secrets", workers: 1, gpuWorkers: 1, drainMs: 2000 });
    const report = path.join(bed.dir, "secrets-report.md");
    const ok = await run(["upgrade", ...bedArgs, "--release", "2.0.0", "--yes", "--json", "--report", report, "--verbose"]);
    expect(ok.code).toBe(0);
    const files = (dir: string): string[] =>
      fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(path.join(dir, d.name)) : [path.join(dir, d.name)])) : [];
    const journals = files(bed.env.UPGRADE_ORCHESTRATOR_STATE!);
    const state = files(fileURLToPath(bed.pulumi!.backendUrl)).filter((f) => f.endsWith(".json"));
    expect(journals.length).toBeGreaterThanOrEqual(1);
    expect(state.some((f) => f.includes(`${path.sep}stacks${path.sep}`))).toBe(true);
    const haystack = [...captured, ...[...journals, ...state, report].map((f) => fs.readFileSync(f, "utf8"))].join("\n");
    expect(haystack).toContain("upgrade-orchestrator"); // the scan reads real content
    const key = fs.readFileSync(sshKeys.file, "utf8").split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
    for (const secret of [bed.pulumi!.passphrase, SSH_KEY_PASSPHRASE, DB_PASSWORD, ...key]) {
      expect({ secret, found: haystack.includes(secret) }).toEqual({ secret, found: false });
    }
    // the DB password is in the state, encrypted
    const stackState = fs.readFileSync(state.find((f) => f.endsWith(`${path.sep}secrets.json`))!, "utf8");
    const encrypted = /"dbPassword":\{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext":"v1:/.test(stackState);
    expect({ dbPasswordEncryptedInState: encrypted }).toEqual({ dbPasswordEncryptedInState: true });
      return "none found";
  }));
