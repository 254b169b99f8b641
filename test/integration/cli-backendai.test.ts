import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as nodePath from "node:path";
import { runCli } from "../sandbox/cli";

// The built CLI answers the RUNBOOKS.md examples with the documented JSON and exit codes.
const path = (...args: string[]) => runCli(["backendai", "path", ...args, "--json", "--catalog", "bundled"], {});

// A loopback index serving PyPI's real page of backend.ai-manager (saved as served) as PyPI does:
// PEP 691 JSON at /simple/backend-ai-manager/, for the catalog read at run time.
const PAGE = fs.readFileSync(nodePath.join(__dirname, "..", "fixtures", "backendai", "pypi-simple-backend-ai-manager.json"));
let index: http.Server;
let indexUrl: string;
const requests: Array<{ url?: string; accept?: string }> = [];
beforeAll(async () => {
  index = http.createServer((req, res) => {
    requests.push({ url: req.url, accept: req.headers.accept });
    if (req.url !== "/simple/backend-ai-manager/") return void res.writeHead(404).end("not found");
    res.writeHead(200, { "content-type": "application/vnd.pypi.simple.v1+json" }).end(PAGE);
  });
  await new Promise<void>((resolve) => index.listen(0, "127.0.0.1", resolve));
  indexUrl = `http://127.0.0.1:${(index.address() as AddressInfo).port}/simple`;
});
afterAll(() => new Promise<void>((resolve) => index.close(() => resolve())));

test("the catalog is read from the index pip uses (PIP_INDEX_URL), with pip's Accept header", async () => {
  const run = await runCli(["backendai", "path", "--from", "24.09.3", "--to", "25.5.2"], { PIP_INDEX_URL: indexUrl });
  expect([run.code, run.stderr]).toEqual([0, ""]);
  expect(run.stdout.split("\n")[0]).toBe("24.09.3 → 24.09.4 → 24.09.5 → 25.1.1 → 25.2.0 → 25.3.0 → 25.3.1 → 25.3.2 → 25.3.3 → 25.4.0 → 25.5.0 → 25.5.1 → 25.5.2");
  expect(run.stdout).toMatch(/note: skipped 24\.12\.1: yanked on the index \(broken version\)/);
  expect(requests.at(-1)).toEqual({ url: "/simple/backend-ai-manager/", accept: expect.stringMatching(/^application\/vnd\.pypi\.simple\.v1\+json/) });
  const refused = await runCli(["backendai", "path", "--from", "24.09.3", "--to", "24.12.1", "--catalog", indexUrl, "--json"], {});
  expect(refused.code).toBe(3);
  expect(JSON.parse(refused.stdout).reason).toContain(`catalog: the package index ${indexUrl}/backend-ai-manager/ (PEP 691 JSON`);
});

test("a live read that fails falls back to the bundled catalog, with a warning", async () => {
  const run = await runCli(["backendai", "path", "--from", "23.09.8", "--to", "24.03.2", "--catalog", `${indexUrl}/nowhere`, "--json"], {});
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ allowed: true, path: ["23.09.10", "24.03.0", "24.03.2"] });
  expect(run.stderr).toMatch(/^warning: could not read the release catalog from http:\/\/127\.0\.0\.1:\d+\/simple\/nowhere\/backend-ai-manager\/ \(HTTP 404\); planning over the bundled catalog of \d{4}-\d{2}-\d{2}/);
  const unknown = await runCli(["backendai", "path", "--from", "18.09.1", "--to", "24.03.2", "--catalog", "http://127.0.0.1:9/simple", "--json"], {});
  expect(unknown.code).toBe(3);
  expect(JSON.parse(unknown.stdout).reason).toMatch(/not in the release catalog .*catalog: the bundled catalog .*because reading http:\/\/127\.0\.0\.1:9\/simple\/backend-ai-manager\/ failed.*--catalog/);
});

test("allowed paths print the hops, exit 0", async () => {
  const run = await path("--from", "23.09.8", "--to", "24.03.2");
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ allowed: true, path: ["23.09.10", "24.03.0", "24.03.2"] });
  const direct = await path("--from", "23.09.10", "--to", "24.03.5", "--direct");
  expect([direct.code, JSON.parse(direct.stdout).allowed]).toEqual([0, true]);
});

test("refusals print the reason, exit 3; malformed input exits 2", async () => {
  const rc = await path("--from", "23.09.9", "--to", "24.03.0");
  expect(rc.code).toBe(3);
  expect(JSON.parse(rc.stdout)).toMatchObject({ allowed: false, reason: expect.stringMatching(/23\.09\.9 was never released/) });
  const skip = await path("--from", "23.03.0", "--to", "24.03.0", "--direct");
  expect(skip.code).toBe(3);
  expect(JSON.parse(skip.stdout)).toEqual({ allowed: false, reason: "skips the major release 23.09" });
  const down = await path("--from", "24.03.2", "--to", "23.09.10");
  expect([down.code, JSON.parse(down.stdout).reason]).toEqual([3, expect.stringMatching(/downgrades/)]);
  const bad = await runCli(["backendai", "path", "--from", "next", "--to", "24.03.0"], {});
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/could not read --from: "next" is not a Backend\.AI version/);
});

test("with --json, errors stay JSON: malformed input prints {allowed:false, reason} (exit 2), usage errors one error event", async () => {
  const bad = await path("--from", "next", "--to", "24.03.0");
  expect(bad.code).toBe(2);
  expect(bad.stderr).toBe("");
  expect(JSON.parse(bad.stdout)).toMatchObject({ allowed: false, reason: expect.stringMatching(/could not read --from: "next" is not a Backend\.AI version/) });

  for (const args of [["upgrade", "--json"], ["upgrade", "--json", "--stack", "prod", "--drain-timeout", "soon", "--yes"], ["upgrade", "--stack", "prod", "--json", "--no-such-flag"]]) {
    const run = await runCli(args, {});
    const events = run.events();
    expect([args, run.code, events.length, run.stderr]).toEqual([args, 2, 1, ""]);
    expect(events[0]).toMatchObject({ type: "error", exitCode: 2, error: expect.any(String) });
  }
  const missing = (await runCli(["upgrade", "--json"], {})).events()[0]!;
  expect(missing.error).toMatch(/no --stack and no --stacks-file/);
  const duration = (await runCli(["upgrade", "--json", "--stack", "prod", "--drain-timeout", "soon", "--yes"], {})).events()[0]!;
  expect([duration.error, duration.hint]).toEqual([expect.stringMatching(/could not read --drain-timeout: "soon" is not a duration/), "use e.g. 30m, 15s, 1h30m"]);
});
