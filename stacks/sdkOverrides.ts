import type { Stack, Workspace } from "@pulumi/pulumi/automation";

// The driver's two overrides of the Automation API's own members, in one place. Each answers a call
// the SDK makes that the driver does not need (it already has the answer); every other member is
// the SDK's own. test/unit/sdkOverrides.test.ts fails if the SDK stops making these calls (then an
// override is dead and should go) or if an override stops taking effect.

/**
 * The workspace, for `Stack.select` once the state read has found the stack: its `selectStack`
 * (`pulumi stack select`, which only checks that the stack exists and makes it the project's
 * current one) is answered as done; every other member is the workspace's own.
 */
export function foundStack(workspace: Workspace): Workspace {
  return Object.create(workspace, { selectStack: { value: async () => undefined } }) as Workspace;
}

/**
 * The stack, for one `up`: `Stack.up()` ends by reading back the outputs (`pulumi stack output`,
 * twice: plain and with secrets) and the update's summary (`pulumi stack history`), three CLI starts
 * and 0.8 s after every update, all of it decrypted. The driver needs neither read: the engine's
 * summary event carries the resource changes, and the root stack's outputs event the outputs
 * (secrets masked). So `up` runs on a view of the stack whose `outputs` and `info` answer nothing (its
 * result's `outputs` and `summary` are not used); every other member is the stack's own.
 */
export function withoutReadBack(stack: Stack): Stack {
  return Object.create(stack, {
    outputs: { value: async () => ({}) },
    info: { value: async () => undefined },
  }) as Stack;
}
