import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type OutputMap, type Stack } from "@pulumi/pulumi/automation";
import { copyFixture } from "./fixtures";
import type { Sandbox } from "./index";

/**
 * The fixture Code Ocean deployment as an operator has it: a git clone with release tags
 * 1.0.0 and 2.0.0 (2.0.0 changes the worker launch template, so `up` replaces the general
 * worker ASG), checked out at 1.0.0 and deployed to a stack on the bed's backend.
 */
export interface CodeOceanDeployment {
  workDir: string;
  stackName: string;
  stack: Stack;
  outputs: OutputMap;
}

export interface DeployOptions {
  stackName?: string;
  workers?: number;
  /** 0: no GPU fleet (workersGpuAsgId is null). */
  gpuWorkers?: number;
  asgDrainTimeoutSeconds?: number;
  dir?: string;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=fixture", "-c", "user.email=fixture@localhost", "-c", "advice.detachedHead=false", ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });

export function codeOceanCheckout(dir?: string): string {
  const workDir = copyFixture("codeocean-deployment", dir);
  fs.writeFileSync(path.join(workDir, ".gitignore"), "node_modules\nPulumi.*.yaml\n");
  git(workDir, "init", "-q", "-b", "main");
  git(workDir, "add", "-A");
  git(workDir, "commit", "-q", "-m", "release 1.0.0");
  git(workDir, "tag", "1.0.0");
  fs.writeFileSync(path.join(workDir, "release.json"), JSON.stringify({ version: "2.0.0" }) + "\n");
  git(workDir, "commit", "-q", "-am", "release 2.0.0: new worker launch template");
  git(workDir, "tag", "2.0.0");
  git(workDir, "checkout", "-q", "1.0.0");
  return workDir;
}

export async function deployCodeOcean(bed: Sandbox, options: DeployOptions = {}): Promise<CodeOceanDeployment> {
  const stackName = options.stackName ?? "prod";
  const workDir = codeOceanCheckout(options.dir);
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  const stack = await LocalWorkspace.createStack({ stackName, workDir }, { pulumiCommand, envVars: bed.env });
  await stack.setAllConfig({
    workers: { value: String(options.workers ?? 3) },
    gpuWorkers: { value: String(options.gpuWorkers ?? 2) },
    asgDrainTimeoutSeconds: { value: String(options.asgDrainTimeoutSeconds ?? 10) },
  });
  const result = await stack.up();
  return { workDir, stackName, stack, outputs: result.outputs };
}
