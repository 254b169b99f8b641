import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { copyFixture } from "./fixtures";
import type { Sandbox } from "./index";

/**
 * Cheap stacks for fleet and backend tests: the fleet-project fixture (plain JavaScript, no
 * provider plugin: a stack output from config), one project directory, one stack per name, never
 * deployed. Their upgrade is the first `up` (1 create: the stack itself); `fail` makes a stack's
 * program throw.
 */
export const FLEET_PROJECT = "fleet-project";

export async function createFleetStacks(bed: Sandbox, names: string[], options: { workDir?: string; message?: string; fail?: Record<string, string> } = {}): Promise<string> {
  const workDir = options.workDir ?? copyFixture(FLEET_PROJECT);
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  for (const stackName of names) {
    const stack = await LocalWorkspace.createStack({ stackName, workDir }, { pulumiCommand, envVars: bed.env });
    await stack.setConfig("message", { value: options.message ?? `hello from ${stackName}` });
    const fail = options.fail?.[stackName];
    if (fail) await stack.setConfig("fail", { value: fail });
  }
  return workDir;
}

/** A second checkout of the same project (another machine): the stack config files copied over. */
export function cloneCheckout(workDir: string): string {
  const other = copyFixture(FLEET_PROJECT);
  for (const f of fs.readdirSync(workDir).filter((n) => /^Pulumi\..+\.yaml$/.test(n))) fs.copyFileSync(path.join(workDir, f), path.join(other, f));
  return other;
}
