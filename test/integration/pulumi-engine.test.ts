import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { startSandbox, type Sandbox } from "../sandbox";
import { copyFixture, REPO_ROOT } from "../sandbox/fixtures";
import { compareVersions, pulumiSdkVersion } from "../../lib/toolchain";

// The real engine (CLI + Node.js language host + dynamic-provider shim) on a file backend,
// driving a TypeScript project directory through the Automation API.
let bed: Sandbox;
let workDir: string;
let stack: Stack;

beforeAll(async () => {
  bed = await startSandbox({ aws: false, ssh: false });
  workDir = copyFixture("echo-project");
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  stack = await LocalWorkspace.createStack(
    { stackName: "proof", workDir },
    { pulumiCommand, envVars: bed.env },
  );
});

afterAll(async () => {
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

test("the CLI in use is the leg's (scripts/legs.json), at or above the SDK, and the process runs the leg's Node", async () => {
  const info = await stack.workspace.whoAmI();
  expect(info.user).toBeTruthy();
  const legs = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "scripts", "legs.json"), "utf8")) as { default: string; legs: Record<string, { node: string; sdk: string; cli: string }> };
  const leg = legs.legs[process.env.UO_LEG ?? legs.default]!;
  expect(stack.workspace.pulumiVersion).toBe(bed.pulumi!.install.version);
  expect([stack.workspace.pulumiVersion, process.versions.node, pulumiSdkVersion()]).toEqual([leg.cli, leg.node, leg.sdk]);
  expect(compareVersions(leg.cli, leg.sdk)).toBeGreaterThanOrEqual(0);
});

test("create, refresh config, read outputs, preview an update, apply it, destroy", async () => {
  await stack.setConfig("message", { value: "hello" });
  const created = await stack.up();
  expect(created.summary.result).toBe("succeeded");
  expect(created.summary.resourceChanges).toMatchObject({ create: 2 });
  expect(created.outputs.message?.value).toBe("hello");
  expect(created.outputs.updates?.value).toBe(0);

  // `pulumi config refresh -f`: the local config file is rewritten from the last deployment.
  await stack.setConfig("message", { value: "local edit" });
  await stack.refreshConfig();
  expect((await stack.getConfig("message")).value).toBe("hello");

  const outputs = await stack.outputs();
  expect(outputs.message?.value).toBe("hello");

  await stack.setConfig("message", { value: "hello again" });
  const preview = await stack.preview({ diff: true });
  expect(preview.changeSummary).toMatchObject({ update: 1, same: 1 });
  expect(preview.changeSummary.replace).toBeUndefined();

  const updated = await stack.up();
  expect(updated.summary.resourceChanges).toMatchObject({ update: 1 });
  expect(updated.outputs.message?.value).toBe("hello again");
  expect(updated.outputs.updates?.value).toBe(1);

  const destroyed = await stack.destroy();
  expect(destroyed.summary.resourceChanges).toMatchObject({ delete: 2 });
  expect(await stack.exportStack().then((d) => d.deployment.resources ?? [])).toHaveLength(0);
});
