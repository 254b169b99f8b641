import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type ConfigMap, type Stack } from "@pulumi/pulumi/automation";
import { REPO_ROOT } from "./fixtures";
import type { Sandbox } from "./index";

/**
 * A stack of the orchestrator's own Pulumi project (Pulumi.yaml, dist/index.js) on the bed's
 * backend. The project directory is a temp copy whose program is the checkout's built
 * dist/index.js, so stack config files never land in the checkout.
 */
export interface OwnStack {
  workDir: string;
  stack: Stack;
  /** Replaces `upgrade-orchestrator:systems` (structured config, read with getObject). */
  setSystems(systems: Record<string, unknown>): Promise<void>;
  remove(): Promise<void>;
}

export async function ownStack(bed: Sandbox, stackName: string, config: ConfigMap = {}): Promise<OwnStack> {
  const program = path.join(REPO_ROOT, "dist", "index.js");
  if (!fs.existsSync(program)) throw new Error(`${program} is missing: run \`npm run build\` (npm test does)`);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-own-"));
  fs.writeFileSync(
    path.join(workDir, "Pulumi.yaml"),
    "name: upgrade-orchestrator\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n",
  );
  fs.writeFileSync(path.join(workDir, "index.js"), `module.exports = require(${JSON.stringify(program)});\n`);
  // The language host would otherwise pick up an enclosing package.json.
  fs.writeFileSync(path.join(workDir, "package.json"), JSON.stringify({ name: "own-stack", private: true }) + "\n");
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(workDir, "node_modules"), "dir");
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  const stack = await LocalWorkspace.createStack({ stackName, workDir }, { pulumiCommand, envVars: bed.env });
  if (Object.keys(config).length > 0) await stack.setAllConfig(config);
  return {
    workDir,
    stack,
    setSystems: (systems) => stack.setConfig("systems", { value: JSON.stringify(systems) }),
    async remove() {
      await stack.workspace.removeStack(stackName, { force: true }).catch(() => undefined);
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
