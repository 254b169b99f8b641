import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { OutputMap } from "@pulumi/pulumi/automation";
import { parse as parseYaml } from "yaml";
import type { RunContext } from "./context";
import { pulumiCall } from "./pulumiCall";

/**
 * What the driver reads of a stack before its preview, in one `pulumi stack export` (secrets left
 * encrypted: decrypting them costs a second of key derivation the driver does not need): pending
 * operations for repair, the outputs for the runbook, and replaced resources still to delete for
 * plan-update. One CLI start instead of five (`stack export` twice, `stack output` twice, `config`).
 */
export interface StackState {
  resources: Array<{ urn: string; type: string; delete?: boolean; outputs?: Record<string, unknown> }>;
  pendingOperations: Array<{ type: string; resource: { urn: string } }>;
}

/** Pulumi's marker of a secret value in a checkpoint (`sig.Secret`). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** `pulumi stack export` of the CLI in `binDir` (the Automation API's `exportStack` always decrypts). */
export async function readStackState(binDir: string, cwd: string, env: Record<string, string>, stack: string): Promise<StackState> {
  const { stdout } = await promisify(execFile)(path.join(binDir, "pulumi"), ["stack", "export", "--stack", stack], { cwd, env, maxBuffer: 1 << 30 });
  return parseStackState(stdout);
}

export function parseStackState(exported: string): StackState {
  const { deployment } = JSON.parse(exported) as { deployment?: { resources?: StackState["resources"]; pending_operations?: StackState["pendingOperations"] } };
  return { resources: deployment?.resources ?? [], pendingOperations: deployment?.pending_operations ?? [] };
}

/**
 * The stack's outputs from the root resource of the checkpoint, as `pulumi stack output --json`
 * shows them: an output that is a secret is marked `secret` (as `stack.outputs()` does) and a
 * secret not decrypted by the export reads "[secret]", at any depth.
 */
export function outputsOf(state: StackState): OutputMap {
  return outputsFrom(state.resources.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs ?? {});
}

/**
 * Outputs as the checkpoint or the engine's events hold them (the root stack's `resOutputsEvent`
 * marks a secret the same way and gives its ciphertext as "[secret]"), marked and masked as above.
 */
export function outputsFrom(raw: Record<string, unknown>): OutputMap {
  const outputs: OutputMap = {};
  for (const [key, value] of Object.entries(raw)) outputs[key] = { value: unwrapSecrets(value), secret: isSecret(value) };
  return outputs;
}

const isSecret = (value: unknown): value is { plaintext?: unknown } =>
  value !== null && typeof value === "object" && (value as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;

function unwrapSecrets(value: unknown): unknown {
  if (isSecret(value)) return typeof value.plaintext === "string" ? unwrapSecrets(JSON.parse(value.plaintext)) : "[secret]";
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
}

/** Replaced resources the state still holds for deletion (an old ASG held up by protected instances). */
export function pendingDeletes(state: StackState): string[] {
  return state.resources.filter((r) => r.delete).map((r) => r.urn.split("::").at(-1)!);
}

/**
 * A plain config value of the stack as the CLI would resolve it from files: the stack's settings
 * file (in the project's `stackConfigDir`), else the project's `config` value or default.
 * `{ secure: … }` (encrypted) comes back as "secure": the caller asks the CLI instead.
 */
export function configuredValue(cwd: string, stack: string, key: string, project: { stackConfigDir?: string; config?: Record<string, unknown> }): string | "secure" | undefined {
  const name = stack.split("/").at(-1)!;
  const dir = path.resolve(cwd, project.stackConfigDir ?? ".");
  for (const file of [`Pulumi.${name}.yaml`, `Pulumi.${name}.yml`, `Pulumi.${name}.json`]) {
    const full = path.join(dir, file);
    if (!fs.existsSync(full)) continue;
    const settings = (parseYaml(fs.readFileSync(full, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const value = settings.config?.[key];
    if (value !== undefined) return plainOrSecure(value);
    break;
  }
  const declared = project.config?.[key];
  if (declared !== null && typeof declared === "object") {
    const { value, default: fallback } = declared as { value?: unknown; default?: unknown };
    return plainOrSecure(value ?? fallback);
  }
  return plainOrSecure(declared);
}

function plainOrSecure(value: unknown): string | "secure" | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "object") return "secure" in (value as object) ? "secure" : JSON.stringify(value);
  return String(value);
}

/** The stack's state as the driver reads it (one `pulumi stack export`), its failure for people. */
export const readState = (ctx: RunContext) => pulumiCall("read the stack's state", () => readStackState(ctx.pulumiBinDir!, ctx.options.cwd, ctx.env, ctx.options.stack));
