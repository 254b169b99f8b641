import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { lockKey, openBackendStore, type BackendStore } from "../../stacks/backend";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli, startCli } from "../sandbox/cli";
import { cloneCheckout, createFleetStacks } from "../sandbox/fleetStacks";
import { s3BackendUrl } from "../sandbox/pulumi";

// The S3 backend runbook 1's operators use (`pulumi login s3://…`), in moto behind the fault
// proxy: two "machines" (separate HOME, PULUMI_HOME and journal dirs) sharing one bucket, and
// the bad input a real bucket produces. Cheap fixture stacks (fleet-project); the Code Ocean cases on S3 are in
// codeocean-upgrade.test.ts and durable-runs.test.ts.
let bed: Sandbox;
let store: BackendStore;
let workDir: string;
const PROJECT = "fleet-project";

beforeAll(async () => {
  bed = await startSandbox({ backend: "s3", ssh: false });
  store = openBackendStore(bed.pulumi!.backendUrl, bed.env)!;
  workDir = await createFleetStacks(bed, ["shared", "bad-input"]);
});
afterAll(async () => {
  store?.close();
  await bed?.stop();
  for (const d of [workDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** A machine of its own: HOME, PULUMI_HOME and the local journal dir are not shared. */
function machine(name: string): Record<string, string> {
  const home = fs.mkdtempSync(path.join(bed.dir, `${name}-`));
  return { ...bed.env, HOME: home, PULUMI_HOME: path.join(home, ".pulumi"), UPGRADE_ORCHESTRATOR_STATE: path.join(home, "state") };
}

const upgradeArgs = (stack: string, cwd: string, ...more: string[]) => ["upgrade", "--stack", stack, "--cwd", cwd, "--yes", "--json", ...more];

/** Every object of the backend with its content: "unchanged" compares this before and after. */
async function backendState(): Promise<Record<string, string>> {
  const keys = await store.list(".pulumi/");
  const entries = await Promise.all(keys.filter((k) => !k.includes("/history/") && !k.includes("/backups/")).map(async (k) => [k, (await store.get(k))?.body ?? ""] as const));
  return Object.fromEntries(entries);
}

test("two machines share the S3 backend: the second run is refused at once, naming the first", async () => {
  const a = machine("machine-a");
  const b = machine("machine-b");
  const checkoutB = cloneCheckout(workDir);
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const first = startCli(upgradeArgs("shared", workDir), a, (e) => {
    if (e.type === "step-end" && e.step === "lock-stack") {
      first.signal("SIGSTOP", true); // machine A holds the lock and is busy (paused) in its run
      locked();
    }
  });
  try {
    await isLocked;
    const lockObject = JSON.parse((await store.get(lockKey(PROJECT, "shared")))!.body);
    const startedAt = Date.now();
    const second = await runCli(upgradeArgs("shared", checkoutB), b);
    const tookMs = Date.now() - startedAt;
    expect(second.code).toBe(3);
    const summary = second.events().at(-1);
    expect(summary).toMatchObject({
      type: "summary",
      exitCode: 3,
      error: expect.stringContaining(`held by run ${lockObject.runId} by ${lockObject.user} on ${os.hostname()} (pid ${lockObject.pid}) since ${lockObject.since}`),
    });
    expect(tookMs).toBeLessThan(60_000); // refused at lock-stack, not after a wait
    expect(second.events().filter((e) => e.type === "step-end").map((e) => e.step)).toEqual(["select-stack", "lock-stack"]);
  } finally {
    first.signal("SIGCONT", true);
  }
  expect(await first.exited).toBe(0);
  expect(await store.get(lockKey(PROJECT, "shared"))).toBeUndefined();
  // a third machine, which never ran it, reads the last run from the backend's journal
  const status = await runCli(["status", "--stack", "shared", "--cwd", checkoutB, "--json"], machine("machine-c"));
  expect(JSON.parse(status.stdout).lastRun).toMatchObject({ status: "succeeded", exitCode: 0, journal: expect.stringMatching(/^s3:\/\/uo-pulumi-state\/\.pulumi\/upgrade-orchestrator\/journal\/fleet-project\/shared\//) });
  fs.rmSync(checkoutB, { recursive: true, force: true });
});

test("conditional writes: of concurrent creates one wins; a heartbeat with an old ETag is refused; S3 kept the winner", async () => {
  const key = ".pulumi/upgrade-orchestrator/locks/race/test.json";
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.createIfAbsent(key, JSON.stringify({ writer: i }))));
  const winners = results.flatMap((r, i) => (r.created ? [{ i, etag: r.etag }] : []));
  expect(winners).toHaveLength(1);
  const stored = (await store.get(key))!;
  expect(JSON.parse(stored.body)).toEqual({ writer: winners[0]!.i });
  const replaced = await store.replaceIf(key, "{\"writer\":\"heartbeat\"}", winners[0]!.etag);
  expect(replaced.replaced).toBe(true);
  expect(await store.replaceIf(key, "{\"writer\":\"late\"}", winners[0]!.etag)).toEqual({ replaced: false });
  expect(await store.deleteIf(key, winners[0]!.etag)).toBe(false);
  expect((await store.get(key))!.body).toBe("{\"writer\":\"heartbeat\"}");
  expect(await store.deleteIf(key, (replaced as { etag: string }).etag)).toBe(true);
  expect(await store.get(key)).toBeUndefined();
});

describe("bad input is refused and changes nothing", () => {
  test.each([
    ["malformed", "{\"runId\": \"r1\", \"user\": tru"],
    ["not ours", JSON.stringify({ owner: "terraform", lockId: "7f3a" })],
  ])("a lock object that is %s: refused (also with --force-unlock), not overwritten", async (kind, body) => {
    const key = lockKey(PROJECT, "bad-input");
    await store.put(key, body);
    const before = await backendState();
    for (const extra of [[], ["--force-unlock"]]) {
      const run = await runCli(upgradeArgs("bad-input", workDir, ...extra), bed.env);
      expect(run.code).toBe(3);
      expect(run.events().at(-1)).toMatchObject({
        exitCode: 3,
        error: expect.stringContaining(kind === "malformed" ? "is malformed" : "is not a run lock of upgrade-orchestrator"),
        hint: expect.stringMatching(/delete that object/),
      });
    }
    expect((await store.get(key))!.body).toBe(body);
    const after = await backendState();
    // the refused runs wrote their journals beside the state; nothing else changed
    expect(Object.fromEntries(Object.entries(after).filter(([k]) => !k.includes("/upgrade-orchestrator/journal/")))).toEqual(
      Object.fromEntries(Object.entries(before).filter(([k]) => !k.includes("/upgrade-orchestrator/journal/"))),
    );
    await store.deleteIf(key, (await store.get(key))!.etag);
  });

  test("credentials the bucket refuses: exit 2 naming the credentials; nothing written", async () => {
    const before = await backendState();
    const run = await runCli(upgradeArgs("bad-input", workDir), { ...bed.env, AWS_ACCESS_KEY_ID: "denied-operator-key" });
    expect(run.code).toBe(2);
    expect(run.events().at(-1)).toMatchObject({ exitCode: 2, error: expect.stringMatching(/open the Pulumi backend of stack bad-input: .*InvalidAccessKeyId/), hint: expect.stringMatching(/AWS credentials/) });
    expect(await backendState()).toEqual(before);
  });

  test("a bucket that does not exist: exit 2 naming it; no bucket created", async () => {
    const missing = s3BackendUrl("no-such-state-bucket", bed.aws!.url, "us-east-1");
    const run = await runCli(upgradeArgs("bad-input", workDir), { ...bed.env, PULUMI_BACKEND_URL: missing });
    expect(run.code).toBe(2);
    expect(run.events().at(-1)).toMatchObject({ exitCode: 2, error: expect.stringMatching(/NoSuchBucket|does not exist/), hint: expect.stringContaining("s3://no-such-state-bucket") });
    const s3 = new S3Client({ endpoint: bed.aws!.url, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    const { Buckets = [] } = await s3.send(new ListBucketsCommand({}));
    s3.destroy();
    expect(Buckets.map((b) => b.Name)).toEqual(["uo-pulumi-state"]);
  });
});
