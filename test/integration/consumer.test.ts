import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { startBackendAiCluster, type BackendAiFixture } from "../sandbox/backendai";
import { copyFixture, REPO_ROOT } from "../sandbox/fixtures";
import { startSandbox, type Sandbox } from "../sandbox";

// The package as a user installs it: `npm pack`, installed with its own @pulumi/pulumi into a fresh
// Pulumi project outside the checkout, type-checked against the shipped .d.ts, and run: the driver
// as a function, and a BackendAiCluster whose forbidden path fails at preview.
const run = promisify(execFile);
const repoPackage = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  devDependencies: Record<string, string>;
};
const sdkVersion = (require("@pulumi/pulumi/package.json") as { version: string }).version;

let tarball: string;
let packed: string[];
let consumer: string;

beforeAll(async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "uo-pack-"));
  // --ignore-scripts: `npm test` built dist already; a rebuild here would race the other test files
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", out], { cwd: REPO_ROOT });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(out, info!.filename);
  packed = info!.files.map((f) => f.path).sort();
}, 120_000);

test("the tarball holds the runtime only: dist of stacks, workflows, lib and the own program, the catalog, Pulumi.yaml, the example config", () => {
  for (const file of ["package.json", "README.md", "Pulumi.yaml", "stacks/config/Pulumi.example.yaml", "workflows/backendai/releases.json", "dist/index.js", "dist/stacks/index.js", "dist/stacks/index.d.ts", "dist/stacks/cli.js", "dist/workflows/index.js", "dist/workflows/index.d.ts", "dist/workflows/backendai/provider.js"]) {
    expect(packed).toContain(file);
  }
  const outside = packed.filter((f) => !/^dist\/(index|stacks\/|workflows\/|lib\/)/.test(f) && !["package.json", "README.md", "Pulumi.yaml", "stacks/config/Pulumi.example.yaml", "workflows/backendai/releases.json"].includes(f));
  expect(outside).toEqual([]);
  expect(packed.filter((f) => /^dist\/(test|bench|scripts)\//.test(f) || f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
  // every compiled module comes with its declarations, and its source map carries its sources
  for (const js of packed.filter((f) => f.endsWith(".js"))) {
    expect([js, packed.includes(js.replace(/\.js$/, ".d.ts"))]).toEqual([js, true]);
    const map = `${js}.map`;
    if (!fs.readFileSync(path.join(REPO_ROOT, js), "utf8").includes("sourceMappingURL")) continue;
    expect([map, packed.includes(map)]).toEqual([map, true]);
    const parsed = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, map), "utf8")) as { sources: string[]; sourcesContent?: string[] };
    expect([map, parsed.sourcesContent?.length]).toEqual([map, parsed.sources.length]);
  }
});

describe("a consumer project with its own @pulumi/pulumi", () => {
  let bed: Sandbox;
  let cluster: BackendAiFixture;
  let stack: Stack;

  beforeAll(async () => {
    consumer = fs.mkdtempSync(path.join(os.tmpdir(), "uo-consumer-"));
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "consumer"), consumer, { recursive: true });
    const dependencies = {
      "upgrade-orchestrator": `file:${tarball}`,
      "@pulumi/pulumi": sdkVersion,
      typescript: repoPackage.devDependencies.typescript!,
      "@types/node": repoPackage.devDependencies["@types/node"]!,
    };
    fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer-project", private: true, dependencies }, null, 2));
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--loglevel=error"], { cwd: consumer, timeout: 300_000 });
    bed = await startSandbox({ aws: false });
    cluster = await startBackendAiCluster(bed, { version: "23.09.8" });
  }, 420_000);
  afterAll(async () => {
    await stack?.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
    await cluster?.stop();
    await bed?.stop();
    if (consumer) fs.rmSync(consumer, { recursive: true, force: true });
  });

  test("the public API type-checks against the shipped declarations (strict; nodenext and bundler resolution)", async () => {
    const tsc = path.join(consumer, "node_modules", "typescript", "bin", "tsc");
    for (const config of ["tsconfig.nodenext.json", "tsconfig.bundler.json"]) {
      const result = await run(process.execPath, [tsc, "-p", config], { cwd: consumer }).then(() => "ok", (err: { stdout: string }) => err.stdout);
      expect([config, result]).toEqual([config, "ok"]);
    }
    expect(fs.existsSync(path.join(consumer, "out", "api.js"))).toBe(true);
  });

  test("npm installs one copy of the Pulumi SDK: the project's own, which the package shares", async () => {
    const { stdout } = await run("npm", ["ls", "@pulumi/pulumi", "--all", "--parseable"], { cwd: consumer });
    const copies = [...new Set(stdout.split("\n").filter(Boolean))];
    expect(copies).toEqual([path.join(fs.realpathSync(consumer), "node_modules", "@pulumi", "pulumi")]);
    const installed = JSON.parse(fs.readFileSync(path.join(consumer, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as { version: string };
    expect(installed.version).toBe(sdkVersion);
  });

  test("upgrade() from the installed package adopts, previews a planned path, and a forbidden path fails at preview", async () => {
    const api = path.join(consumer, "out", "api.js");
    const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
    stack = await LocalWorkspace.createStack({ stackName: "consumer", workDir: consumer }, { pulumiCommand, envVars: bed.env });
    const { version: _v, hosts, ...rest } = cluster.settings("23.09.8");
    const setCluster = (version: string) =>
      stack.setAllConfig({
        cluster: { value: JSON.stringify({ ...rest, version, hosts: hosts.map(({ ssh: { privateKey: _k, ...ssh }, ...h }) => ({ ...h, ssh })) }) },
        sshKey: { value: cluster.privateKey, secret: true },
      });
    const runApi = async (...args: string[]) => {
      const result = await run(process.execPath, [api, "consumer", consumer, ...args], { cwd: consumer, env: { ...process.env, ...bed.env }, timeout: 240_000 }).catch((err: { code: number; stdout: string; stderr: string }) => err);
      const parsed = JSON.parse(result.stdout.trim().split("\n").pop()!) as { exitCode: number; status: string; error?: { message: string }; outputs?: Record<string, unknown>; lines: string[]; plannedHops: string[] };
      return parsed;
    };

    await setCluster("23.09.8");
    const adopted = await runApi("--yes");
    expect(adopted.error).toBeUndefined();
    expect([adopted.exitCode, adopted.outputs?.version]).toEqual([0, "23.09.8"]);
    expect(adopted.plannedHops).toEqual(["23.09.10", "24.03.0", "24.03.2"]);

    await setCluster("24.03.2");
    const planned = await runApi();
    expect(planned.exitCode).toBe(0);
    expect(planned.lines).toContainEqual(expect.stringMatching(/^up skipped .*dry run/));
    expect(planned.lines.join("\n")).toMatch(/preview done/);

    // 24.03 has no final .1 (RUNBOOKS.md): a version never released is refused at preview
    await setCluster("24.03.1");
    const forbidden = await runApi();
    expect(forbidden.exitCode).toBe(1);
    expect(forbidden.error?.message).toMatch(/23\.09\.8 → 24\.03\.1 is not an allowed upgrade/);
    // nothing was applied: the state still holds the adopted version, every host still runs it
    expect((await stack.outputs()).version?.value).toBe("23.09.8");
    expect(cluster.installedVersion("manager")).toBe("23.09.8");
  });
  test("a runbook of the consumer's own runs around up: through upgrade({ runbook }) and through --runbook ./out/runbook.js; a module that is not one is bad input", async () => {
    const echoDir = copyFixture("echo-project");
    const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
    const echo = await LocalWorkspace.createStack({ stackName: "own-runbook", workDir: echoDir }, { pulumiCommand, envVars: bed.env });
    await echo.setConfig("message", { value: "first" });
    await echo.up();
    const env = { ...process.env, ...bed.env };
    const flag = path.join(echoDir, "MAINTENANCE");

    // the API: the runbook object itself
    await echo.setConfig("message", { value: "second" });
    const api = await run(process.execPath, [path.join(consumer, "out", "api.js"), "own-runbook", echoDir, "--yes", "--own-runbook"], { cwd: consumer, env, timeout: 240_000 }).catch((err: { stdout: string }) => err);
    const viaApi = JSON.parse(api.stdout.trim().split("\n").pop()!) as { exitCode: number; steps: string[]; lines: string[]; outputs?: Record<string, { value: unknown }> };
    expect(viaApi.exitCode).toBe(0);
    expect(viaApi.steps).toEqual(expect.arrayContaining(["raise-maintenance-flag:done", "up:done", "check-outputs:done", "lower-maintenance-flag:done"]));
    expect(viaApi.steps.indexOf("raise-maintenance-flag:done")).toBeLessThan(viaApi.steps.indexOf("up:done"));
    expect(viaApi.lines).toContainEqual(expect.stringMatching(/^check-outputs done .*: message is second$/));
    expect(viaApi.lines).toContainEqual(expect.stringMatching(/^run .* of own-runbook/));
    expect(fs.existsSync(flag)).toBe(false);

    // the CLI of the installed package: a module path, relative to where the command runs
    const cli = path.join(consumer, "node_modules", "upgrade-orchestrator", "dist", "stacks", "cli.js");
    const cliRun = (runbook: string) =>
      run(process.execPath, [cli, "upgrade", "--stack", "own-runbook", "--cwd", echoDir, "--runbook", runbook, "--yes", "--json"], { cwd: consumer, env, timeout: 240_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
      );
    const events = (stdout: string) => stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; step?: string; status?: string; note?: string; exitCode?: number; error?: string });
    await echo.setConfig("message", { value: "third" });
    const viaCli = await cliRun("./out/runbook.js");
    expect([viaCli.code, viaCli.code === 0 ? "" : viaCli.stdout.trim().split("\n").at(-1)]).toEqual([0, ""]);
    const ended = events(viaCli.stdout).filter((e) => e.type === "step-end").map((e) => `${e.step}:${e.status}`);
    expect(ended).toEqual(expect.arrayContaining(["read-outputs:done", "raise-maintenance-flag:done", "up:done", "check-outputs:done", "lower-maintenance-flag:done"]));
    expect(events(viaCli.stdout).find((e) => e.step === "read-outputs" && e.type === "step-end")?.note).toMatch(/^runbook consumer-maintenance/);
    expect((await echo.outputs()).message?.value).toBe("third");

    // a module that exports no runbook: exit 2 naming what is wrong, before any step of it ran
    fs.writeFileSync(path.join(consumer, "out", "not-a-runbook.js"), "module.exports = { name: 'x', beforeUp: [{ id: 'a' }] };\n");
    await echo.setConfig("message", { value: "fourth" });
    const refused = await cliRun("./out/not-a-runbook.js");
    expect(refused.code).toBe(2);
    expect(events(refused.stdout).at(-1)).toMatchObject({ type: "summary", exitCode: 2, error: expect.stringMatching(/not-a-runbook\.js.*beforeUp\[0\] is not a step/) });
    expect((await echo.outputs()).message?.value).toBe("third");
    await echo.workspace.removeStack("own-runbook", { force: true }).catch(() => undefined);
  }, 600_000);
});
