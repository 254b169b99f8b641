import * as fs from "node:fs";
import * as path from "node:path";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli } from "../sandbox/cli";
import { createFleetStacks } from "../sandbox/fleetStacks";

// Maintenance windows in a fleet: the command line's --window reaches every stack unless the
// fleet file gives a wave or a stack its own, which replaces it. The clock is the test's
// (UPGRADE_ORCHESTRATOR_TEST_NOW, inherited by every stack's run): Monday 2026-12-07 12:00 UTC.
let bed: Sandbox;
let workDir: string;
jest.setTimeout(600_000);

beforeAll(async () => {
  bed = await startSandbox({ aws: false, ssh: false });
  workDir = await createFleetStacks(bed, ["w-always", "w-weekend"]);
});
afterAll(async () => {
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

test("a wave's window and a stack's own replace --window: the stack whose window is open runs, the other is refused (exit 3)", async () => {
  const file = path.join(bed.dir, "windows.yaml");
  fs.writeFileSync(
    file,
    [
      `cwd: ${workDir}`,
      "waves:",
      "  - name: all",
      '    window: "Sat 02:00-06:00 Europe/Berlin"',
      "    stacks:",
      '      - { stack: w-always, window: ["Mon 11:00-14:00 UTC"] }',
      "      - w-weekend",
      "",
    ].join("\n"),
  );
  // the command line's window is always open: w-weekend is refused only because its wave's window
  // replaces it (not added to it); w-always runs only because its own replaces the wave's
  const run = await runCli(["upgrade", "--stacks-file", file, "--window", "daily 00:00-24:00 UTC", "--keep-going", "--yes", "--json"], { ...bed.env, UPGRADE_ORCHESTRATOR_TEST_NOW: "2026-12-07T12:00:00Z" });
  expect(run.code).toBe(3);
  const events = run.events();
  const ends = Object.fromEntries(events.filter((e) => e.type === "fleet-stack-end").map((e) => [e.stack as string, e]));
  expect(ends["w-always"]).toMatchObject({ status: "succeeded", exitCode: 0 });
  expect(ends["w-weekend"]).toMatchObject({ status: "failed", exitCode: 3 });
  const checks = Object.fromEntries(events.filter((e) => e.type === "step-end" && e.step === "check-window").map((e) => [e.stack as string, e]));
  expect(checks["w-always"]).toMatchObject({ status: "done", note: expect.stringMatching(/^in the window "Mon 11:00-14:00 UTC" until Mon 2026-12-07 14:00 UTC/) });
  expect(checks["w-weekend"]).toMatchObject({ status: "failed", error: expect.stringMatching(/it is Mon 2026-12-07 13:\d\d Europe\/Berlin, outside the maintenance window "Sat 02:00-06:00 Europe\/Berlin"/) });
  expect(events.filter((e) => e.stack === "w-weekend" && e.type === "step-start").map((e) => e.step)).toEqual(["check-window"]);
});
