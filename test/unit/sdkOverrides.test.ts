import { Stack, type Workspace } from "@pulumi/pulumi/automation";
import { foundStack, withoutReadBack } from "../../stacks/sdkOverrides";

// The driver overrides two members the Automation API calls (stacks/sdkOverrides.ts). These tests
// read the installed SDK: they fail when it stops making the calls (the override is dead code and
// should go) or when an override no longer takes effect, so an SDK upgrade cannot change either silently.

test("Stack.select calls the workspace's selectStack, and on foundStack(workspace) it does not", async () => {
  const calls: string[] = [];
  const workspace = { selectStack: async (name: string) => void calls.push(name) } as unknown as Workspace;
  await Stack.select("prod", workspace);
  expect(calls).toEqual(["prod"]);
  const selected = await Stack.select("prod", foundStack(workspace));
  expect(calls).toEqual(["prod"]);
  expect(selected.workspace.selectStack).not.toBe(workspace.selectStack);
});

test("Stack.up reads back outputs() and info() after the update: the calls withoutReadBack answers", () => {
  // the SDK's own code, as installed: its `up` ends with these two reads (stack.js, "do this in parallel after …")
  const up = Stack.prototype.up.toString();
  expect(up).toMatch(/await this\.outputs\(\)/);
  expect(up).toMatch(/await this\.info\(/);
  expect(up).not.toMatch(/this\.(history|exportStack)\(/); // a new read-back would be worth overriding too
});

test("withoutReadBack answers outputs() and info() without the CLI and keeps every other member the stack's own", async () => {
  const stack = Object.create(Stack.prototype, { name: { value: "prod" } }) as Stack;
  const view = withoutReadBack(stack);
  await expect(view.outputs()).resolves.toEqual({});
  await expect(view.info()).resolves.toBeUndefined();
  expect(view.up).toBe(stack.up);
  expect(view.name).toBe("prod");
});
