import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import type { UpgradeEvent } from "../../lib/events";
import { upgrade } from "../../stacks/upgrade";
import { startSandbox, type Sandbox } from "../sandbox";
import { copyFixture } from "../sandbox/fixtures";

// One engine preview per run: the plan shown and confirmed at `preview` is plan-update's own,
// unless the project's inputs change in between; then it previews again and says why.
let bed: Sandbox;
let workDir: string;
let stack: Stack;

beforeAll(async () => {
  bed = await startSandbox({ aws: false, ssh: false });
  workDir = copyFixture("echo-project");
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  stack = await LocalWorkspace.createStack({ stackName: "one", workDir }, { pulumiCommand, envVars: bed.env });
  await stack.setConfig("message", { value: "first" });
  await stack.up();
}, 180_000);
afterAll(async () => {
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

async function run(onEvent?: (e: UpgradeEvent) => void) {
  const events: UpgradeEvent[] = [];
  const result = await upgrade({ stack: "one", cwd: workDir, runbook: "none", yes: true, env: bed.env, onEvent: (e) => (events.push(e), onEvent?.(e)) });
  const engine = (step: string) => events.flatMap((e) => (e.type === "engine" && e.step === step ? [e.event as EngineEvent] : []));
  const prelude = (step: string) => engine(step).filter((e) => e.preludeEvent).length;
  return { result, engine, prelude, note: (step: string) => result.steps.find((s) => s.step === step)?.note };
}

test("confirm-plan shows plan-update's preview (the same engine events, no second engine pass), and preview keeps it", async () => {
  await stack.setConfig("message", { value: "second" });
  const { result, engine, prelude, note } = await run();
  expect(result.exitCode).toBe(0);
  expect(prelude("plan-update")).toBe(1);
  // replayed, not re-run: the very events (sequence numbers and timestamps) of plan-update's pass
  expect(engine("confirm-plan")).toEqual(engine("plan-update"));
  expect(engine("preview")).toEqual([]);
  expect(note("confirm-plan")).toBe("1 same, 1 update: accepted by --yes");
  expect(note("preview")).toMatch(/^1 same, 1 update \(plan-update's preview: the checkout and config are unchanged since it was confirmed\)$/);
  expect(result.outputs?.message).toBe("second");
});

test("a config edit between plan-update and preview makes the preview run again, and the note says why", async () => {
  await stack.setConfig("message", { value: "third" });
  const config = path.join(workDir, "Pulumi.one.yaml");
  const { result, engine, prelude, note } = await run((e) => {
    // the stack config changes while the runbook would be draining
    if (e.type === "step-end" && e.step === "plan-update") fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace("third", "fourth"));
  });
  expect(result.exitCode).toBe(0);
  expect([prelude("plan-update"), prelude("preview")]).toEqual([1, 1]);
  expect(engine("preview")).not.toEqual(engine("plan-update"));
  expect(note("preview")).toMatch(/previewed again: the checkout or the stack config changed since plan-update's preview; the same changes as confirmed/);
  // what was confirmed is what was applied: the edited config
  expect(result.outputs?.message).toBe("fourth");
  expect(result.steps.map((s) => [s.step, s.status])).toContainEqual(["up", "done"]);
});

test("the driver starts the Pulumi CLI twice before the preview (version, stack export) and not at all after the up", async () => {
  // a `pulumi` on PATH that logs its arguments, then runs the bed's CLI
  const root = fs.mkdtempSync(path.join(bed.dir, "logged-pulumi-"));
  const log = path.join(root, "calls.log");
  fs.mkdirSync(path.join(root, "bin"));
  const real = path.join(bed.pulumi!.install.binDir, "pulumi");
  fs.writeFileSync(path.join(root, "bin", "pulumi"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  fs.symlinkSync(path.join(bed.pulumi!.install.binDir, "pulumi-language-nodejs"), path.join(root, "bin", "pulumi-language-nodejs"));
  await stack.setConfig("message", { value: "logged" });
  const result = await upgrade({ stack: "one", cwd: workDir, runbook: "none", yes: true, env: { ...bed.env, PATH: `${path.join(root, "bin")}${path.delimiter}${bed.env.PATH}` } });
  expect(result.exitCode).toBe(0);
  const calls = fs.readFileSync(log, "utf8").trim().split("\n").map((c) => c.split(" --")[0]!.replace(/ --stack one.*/, ""));
  const firstEngine = calls.findIndex((c) => /^(preview|up)\b/.test(c));
  expect(calls.slice(0, firstEngine).sort()).toEqual(["stack export", "version"]);
  // one preview (replayed at the preview step), one up, and nothing after it: the outputs come from
  // the engine's events, not from `stack output` or `stack history`
  expect(calls.slice(firstEngine).map((c) => c.split(" ")[0])).toEqual(["preview", "up"]);
  expect(result.outputs?.message).toBe("logged");
  expect(result.steps.find((s) => s.step === "up")?.note).toBe("1 same, 1 update");
});

test("a secret output read from the up's events stays masked in the result, the events and the journal", async () => {
  fs.appendFileSync(path.join(workDir, "index.ts"), '\nexport const token = pulumi.secret({ key: "hush-" + config.require("message") });\n');
  await stack.setConfig("message", { value: "secretive" });
  const events: UpgradeEvent[] = [];
  const { result } = await run((e) => events.push(e));
  expect(result.exitCode).toBe(0);
  expect(result.outputs?.token).toBe("[secret]");
  expect(result.outputs?.message).toBe("secretive");
  expect(events.some((e) => e.type === "engine" && e.step === "up")).toBe(true);
  expect(JSON.stringify(events)).not.toContain("hush-");
  expect(JSON.stringify(result)).not.toContain("hush-");
  const journals = fs.readdirSync(bed.env.UPGRADE_ORCHESTRATOR_STATE!, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
  expect(journals.length).toBeGreaterThan(0);
  for (const file of journals) expect(fs.readFileSync(path.join(file.parentPath, file.name), "utf8")).not.toContain("hush-");
  // the stack does hold the secret: the mask is ours, not a missing output
  expect((await stack.outputs()).token).toEqual({ value: { key: "hush-secretive" }, secret: true });
});
