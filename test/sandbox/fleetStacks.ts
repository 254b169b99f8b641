import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { copyFixture } from "./fixtures";
import type { Sandbox } from "./index";

/**
 * Cheap stacks for fleet and backend tests: the fleet-project fixture (plain JavaScript, no
 * provider plugin: a stack output from config), one project directory, one stack per name, never
 * deployed. Their upgrade is the first `up` (1 create: the stack itself). The checkout is no git
 * repository, so a stack given a `release` fails at checkout-release (a stack "made to fail"):
 * a program that throws hangs this bed's fallback language host (README), so that is not used.
 */
export const FLEET_PROJECT = "fleet-project";

export async function createFleetStacks(bed: Sandbox, names: string[], options: { workDir?: string; message?: string } = {}): Promise<string> {
  const workDir = options.workDir ?? copyFixture(FLEET_PROJECT);
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  for (const stackName of names) {
    const stack = await LocalWorkspace.createStack({ stackName, workDir }, { pulumiCommand, envVars: bed.env });
    await stack.setConfig("message", { value: options.message ?? `hello from ${stackName}` });
  }
  return workDir;
}

/** A second checkout of the same project (another machine): the stack config files copied over. */
export function cloneCheckout(workDir: string): string {
  const other = copyFixture(FLEET_PROJECT);
  for (const f of fs.readdirSync(workDir).filter((n) => /^Pulumi\..+\.yaml$/.test(n))) fs.copyFileSync(path.join(workDir, f), path.join(other, f));
  return other;
}
