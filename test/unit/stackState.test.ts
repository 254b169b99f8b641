import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readsSecretOutputs } from "../../stacks/runbooks/codeocean/targets";
import { configuredValue, outputsFrom, outputsOf, parseStackState, pendingDeletes } from "../../stacks/stackState";

// The root resource's outputs as `pulumi stack export` (no --show-secrets) of CLI v3.274.1 wrote them
// for `export const token = pulumi.secret("hush"); export const nested = { id: "i-1", key: pulumi.secret("k") }`.
const secret = (ciphertext: string) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext });
const exported = JSON.stringify({
  version: 3,
  deployment: {
    resources: [
      {
        urn: "urn:pulumi:s::secret-project::pulumi:pulumi:Stack::secret-project-s",
        type: "pulumi:pulumi:Stack",
        outputs: { message: "x", nested: { id: "i-1", key: secret("v1:Hy…") }, plain: ["a", 1], token: secret("v1:jj…"), updates: 0 },
      },
      { urn: "urn:pulumi:s::p::aws:autoscaling/group:Group::workers-asg", type: "aws:autoscaling/group:Group", delete: true },
      { urn: "urn:pulumi:s::p::aws:autoscaling/group:Group::workers-asg", type: "aws:autoscaling/group:Group" },
    ],
    pending_operations: [{ type: "creating", resource: { urn: "urn:pulumi:s::p::Echo::echo" } }],
  },
});

test("outputs from the checkpoint read as `pulumi stack output --json` shows them; secrets stay masked", () => {
  const outputs = outputsOf(parseStackState(exported));
  expect(outputs).toEqual({
    message: { value: "x", secret: false },
    nested: { value: { id: "i-1", key: "[secret]" }, secret: false },
    plain: { value: ["a", 1], secret: false },
    token: { value: "[secret]", secret: true },
    updates: { value: 0, secret: false },
  });
  expect(JSON.stringify(outputs)).not.toMatch(/ciphertext|v1:/);
});

test("an export with --show-secrets gives the plaintext back, still marked secret", () => {
  const state = parseStackState(exported.replace(/"ciphertext":"v1:jj…"/, `"plaintext":${JSON.stringify(JSON.stringify("hush"))}`));
  expect(outputsOf(state).token).toEqual({ value: "hush", secret: true });
});

test("pending operations and replaced resources still to delete", () => {
  const state = parseStackState(exported);
  expect(state.pendingOperations).toEqual([{ type: "creating", resource: { urn: "urn:pulumi:s::p::Echo::echo" } }]);
  expect(pendingDeletes(state)).toEqual(["workers-asg"]);
  expect(parseStackState(JSON.stringify({ version: 3, deployment: {} }))).toEqual({ resources: [], pendingOperations: [] });
  expect(outputsOf(parseStackState(JSON.stringify({ version: 3, deployment: {} })))).toEqual({});
});

test("the Code Ocean runbook decrypts the outputs only when one it reads is secret", () => {
  expect(readsSecretOutputs({ ec2ServicesInstanceId: { value: "i-1", secret: false }, dbPassword: { value: "[secret]", secret: true } })).toBe(false);
  expect(readsSecretOutputs({ ec2ServicesInstanceId: { value: "[secret]", secret: true } })).toBe(true);
  expect(readsSecretOutputs({ ec2ServicesInstanceId: { value: "i-1", secret: false }, workersGpuAsgName: { value: "[secret]", secret: true } })).toBe(true);
});

test("a config key from the stack's file (in stackConfigDir), else the project's value or default", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-config-"));
  try {
    fs.mkdirSync(path.join(dir, "config"));
    fs.writeFileSync(path.join(dir, "config", "Pulumi.prod.yaml"), "config:\n  upgrade:runbook: codeocean-private-cloud\n  app:key:\n    secure: v1:abc\n");
    fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), "config:\n  app:other: 1\n");
    expect(configuredValue(dir, "org/proj/prod", "upgrade:runbook", { stackConfigDir: "config" })).toBe("codeocean-private-cloud");
    expect(configuredValue(dir, "prod", "app:key", { stackConfigDir: "config" })).toBe("secure");
    expect(configuredValue(dir, "prod", "upgrade:runbook", {})).toBeUndefined();
    expect(configuredValue(dir, "dev", "app:other", {})).toBe("1");
    expect(configuredValue(dir, "dev", "upgrade:runbook", { config: { "upgrade:runbook": { default: "none" } } })).toBe("none");
    expect(configuredValue(dir, "dev", "upgrade:runbook", { config: { "upgrade:runbook": "none" } })).toBe("none");
    expect(configuredValue(dir, "missing", "upgrade:runbook", {})).toBeUndefined();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("outputs from the root stack's outputs event of an up (CLI v3.274.1) read the same: secrets marked and masked", () => {
  // `resOutputsEvent.metadata.new.outputs` of `export const hidden = pulumi.secret({ pw: "…", n: 1 })`
  const fromEvent = { hidden: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "[secret]" }, message: "m1", updates: 0 };
  expect(outputsFrom(fromEvent)).toEqual({ hidden: { value: "[secret]", secret: true }, message: { value: "m1", secret: false }, updates: { value: 0, secret: false } });
});
