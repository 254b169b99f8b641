import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backendKind, backendUrlFromSettings, lockKey, openBackendStore, parseS3BackendUrl } from "../../stacks/backend";
import { acquireRunLock, engineLocks, parseHolder, processAlive } from "../../stacks/lock";
import { spawn } from "node:child_process";

test("the backend URL comes from PULUMI_BACKEND_URL, then Pulumi.yaml backend.url, then the login", () => {
  expect(backendUrlFromSettings({ PULUMI_BACKEND_URL: "s3://env" }, "s3://project", "s3://login")).toBe("s3://env");
  expect(backendUrlFromSettings({}, "s3://project", "s3://login")).toBe("s3://project");
  expect(backendUrlFromSettings({ PULUMI_BACKEND_URL: "" }, undefined, "file:///x")).toBe("file:///x");
});

test("s3:// URLs are read as Pulumi's s3blob driver reads them (v2 and v1-era parameters)", () => {
  expect(parseS3BackendUrl("s3://state/team-a?endpoint=http://127.0.0.1:9000&region=eu-west-1&use_path_style=true")).toEqual({
    bucket: "state", prefix: "team-a", endpoint: "http://127.0.0.1:9000", region: "eu-west-1", forcePathStyle: true, profile: undefined,
  });
  expect(parseS3BackendUrl("s3://state?endpoint=minio:9000&disableSSL=true&s3ForcePathStyle=true")).toMatchObject({ endpoint: "http://minio:9000", forcePathStyle: true, prefix: "" });
  expect(parseS3BackendUrl("s3://state?endpoint=minio:9000")).toMatchObject({ endpoint: "https://minio:9000", forcePathStyle: false });
  expect(parseS3BackendUrl("s3://state?profile=ops")).toMatchObject({ profile: "ops", region: undefined });
});

test("Pulumi Cloud and other blob stores hold no objects of ours", () => {
  expect(backendKind("https://api.pulumi.com")).toBe("cloud");
  expect(backendKind("")).toBe("cloud");
  expect(backendKind("gs://bucket")).toBe("other");
  expect(openBackendStore("https://api.pulumi.com", {})).toBeUndefined();
  expect(openBackendStore("azblob://c", {})).toBeUndefined();
});

test("a lock object is ours only with every field of a holder", () => {
  expect(parseHolder("{")).toMatchObject({ invalid: "malformed" });
  expect(parseHolder("[]")).toMatchObject({ invalid: "not ours" });
  expect(parseHolder(JSON.stringify({ owner: "terraform" }))).toMatchObject({ invalid: "not ours", detail: expect.stringContaining("runId") });
  const h = { runId: "r", user: "u", host: "h", pid: 1, since: "2026-01-01T00:00:00Z", heartbeat: "2026-01-01T00:00:00Z" };
  expect(parseHolder(JSON.stringify(h))).toEqual(h);
  expect(parseHolder(JSON.stringify({ ...h, heartbeat: "yesterday" }))).toMatchObject({ invalid: "malformed" });
});

describe("file:// backend through the same interface", () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "uo-backend-"))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test("lock: created once, refused to a second run, released only by its holder", async () => {
    const store = openBackendStore(`file://${root}`, {})!;
    const key = lockKey("proj", "org/dev");
    expect(key).toBe(".pulumi/upgrade-orchestrator/locks/proj/org_dev.json");
    const lock = await acquireRunLock(store, key, "run-1", false);
    expect(lock.location).toBe(`file://${root}/${key}`);
    await expect(acquireRunLock(store, key, "run-2", false)).rejects.toThrow(/held by run run-1 by .* \(pid \d+\)/);
    await lock.release();
    expect(fs.existsSync(path.join(root, key))).toBe(false);
    const again = await acquireRunLock(store, key, "run-3", false);
    await again.release();
  });

  test("a malformed lock file is refused, also with --force-unlock, and left as it is", async () => {
    const store = openBackendStore(`file://${root}`, {})!;
    const key = lockKey("proj", "dev");
    await store.put(key, "garbage");
    await expect(acquireRunLock(store, key, "run-1", true)).rejects.toThrow(/is malformed.*left as it is/);
    expect(fs.readFileSync(path.join(root, key), "utf8")).toBe("garbage");
  });

  test("Pulumi's engine locks of a stack are found under .pulumi/locks", async () => {
    const store = openBackendStore(`file://${root}`, {})!;
    await store.put(".pulumi/locks/organization/proj/dev/a1.json", JSON.stringify({ pid: 7, username: "ci", hostname: "runner", timestamp: "t" }));
    await store.put(".pulumi/locks/organization/proj/prod/b2.json", "{}");
    expect(await engineLocks(store, "proj", "dev")).toEqual([
      { file: `file://${root}/.pulumi/locks/organization/proj/dev/a1.json`, key: ".pulumi/locks/organization/proj/dev/a1.json", pid: 7, username: "ci", hostname: "runner", timestamp: "t" },
    ]);
  });
});

test("processAlive: this process is; a process that exited is not, also before its parent reaps it (a zombie holds no lock)", async () => {
  expect(processAlive(process.pid)).toBe(true);
  // sh starts `sleep` and exits without waiting: the sleeper is reparented; kill it and look before and after reaping
  const child = spawn("sh", ["-c", "sleep 30 & echo $!"], { stdio: ["ignore", "pipe", "ignore"] });
  const pid = Number((await new Promise<string>((resolve) => child.stdout.on("data", (d: Buffer) => resolve(d.toString())))).trim());
  expect(processAlive(pid)).toBe(true);
  process.kill(pid, "SIGKILL");
  const deadline = Date.now() + 10_000;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(processAlive(pid)).toBe(false);
});
