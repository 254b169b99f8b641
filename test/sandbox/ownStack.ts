import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { LocalWorkspace, PulumiCommand, type ConfigMap, type Stack } from "@pulumi/pulumi/automation";
import { REPO_ROOT } from "./fixtures";
import type { Sandbox } from "./index";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade, type UpgradeResult } from "../../stacks/upgrade";

/**
 * A stack of the orchestrator's own Pulumi project (Pulumi.yaml, dist/index.js) on the bed's
 * backend. The project directory is a temp copy whose program is the checkout's built
 * dist/index.js, so stack config files never land in the checkout.
 */
export interface OwnStack {
  workDir: string;
  stack: Stack;
  /** The stack's config file, as an operator edits it. */
  configFile: string;
  /**
   * Replaces `upgrade-orchestrator:systems` in the stack's config file as structured YAML, the
   * way an operator writes it (the secrets set through Pulumi stay as they are).
   */
  setSystems(systems: Record<string, unknown>): Promise<void>;
  remove(): Promise<void>;
}

export async function ownStack(bed: Sandbox, stackName: string, config: ConfigMap = {}, dir?: string): Promise<OwnStack> {
  const program = path.join(REPO_ROOT, "dist", "index.js");
  if (!fs.existsSync(program)) throw new Error(`${program} is missing: run \`npm run build\` (npm test does)`);
  const workDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "uo-own-"));
  fs.mkdirSync(workDir, { recursive: true });
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
  const configFile = path.join(workDir, `Pulumi.${stackName}.yaml`);
  return {
    workDir,
    stack,
    configFile,
    async setSystems(systems) {
      const file = (fs.existsSync(configFile) ? yaml.load(fs.readFileSync(configFile, "utf8")) : undefined) as { config?: Record<string, unknown> } | undefined;
      const next = { ...file, config: { ...file?.config, "upgrade-orchestrator:systems": systems } };
      fs.writeFileSync(configFile, yaml.dump(next, { lineWidth: 140 }));
    },
    async remove() {
      await stack.workspace.removeStack(stackName, { force: true }).catch(() => undefined);
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/**
 * One run of the driver on an own stack, with no prompt (`--yes`): its result, every event, and
 * the engine's diagnostics (the workflows' progress lines) as lines and as one log.
 */
export async function upOwnStack(bed: Sandbox, own: OwnStack): Promise<{ result: UpgradeResult; events: UpgradeEvent[]; diagnostics: string[]; log: string; ms: number }> {
  const events: UpgradeEvent[] = [];
  const started = Date.now();
  const result = await upgrade({ stack: own.stack.name, cwd: own.workDir, yes: true, env: bed.env, onEvent: (e) => events.push(e) });
  const diagnostics = events.flatMap((e) => (e.type === "engine" && e.event.diagnosticEvent ? [e.event.diagnosticEvent.message.trim()] : []));
  return { result, events, diagnostics, log: diagnostics.join("\n"), ms: Date.now() - started };
}
