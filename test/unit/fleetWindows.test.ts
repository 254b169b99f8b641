import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { planMatrix, readFleetFile, withoutWindows } from "../../stacks/fleetPlan";

// A fleet file's waves and stacks may carry their own maintenance windows (--window).
function fleetFile(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-windows-"));
  const file = path.join(dir, "fleet.yaml");
  fs.writeFileSync(file, yaml);
  return file;
}

test("a wave's window goes to each of its stacks; a stack's own window (a spec or a list) wins", async () => {
  const file = fleetFile(`
waves:
  - name: canary
    canary: true
    stacks: [staging]
  - name: eu
    window: "Sat 02:00-06:00 Europe/Berlin"
    stacks:
      - prod-de
      - { stack: prod-us, window: ["Sun 01:00-05:00 America/New_York", "Sat 22:00-02:00 America/New_York"] }
`);
  const plan = await readFleetFile(file, {}, "/projects/p");
  const windows = Object.fromEntries(plan.waves.flatMap((w) => w.stacks.map((s) => [s.stack, s.windows])));
  expect(windows).toEqual({
    staging: undefined,
    "prod-de": ["Sat 02:00-06:00 Europe/Berlin"],
    "prod-us": ["Sun 01:00-05:00 America/New_York", "Sat 22:00-02:00 America/New_York"],
  });
  expect(planMatrix(plan, "/projects").waves[1]!.matrix.include[0]).toEqual({ stack: "prod-de", cwd: "p", windows: ["Sat 02:00-06:00 Europe/Berlin"] });
});

test("a bad window in the fleet file is bad input naming the file, the wave and the stack", async () => {
  const file = fleetFile(`
waves:
  - name: eu
    stacks: [{ stack: prod-de, window: "Sat 02:00-06:00 Europe/Paris-ish" }]
`);
  const err = (await readFleetFile(file, {}, "/p").catch((e: unknown) => e)) as UpgradeError;
  expect(err).toBeInstanceOf(UpgradeError);
  expect(err.exitCode).toBe(2);
  expect(err.message).toMatch(new RegExp(`^could not read the fleet file ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: wave eu, stack prod-de\\.window: "Europe/Paris-ish" is not a time zone`));
  expect(err.hint).toMatch(/IANA/);
});

test("a stack's own windows replace the command line's --window (every one of them), nothing else", () => {
  expect(withoutWindows(["--yes", "--window", "Sat 02:00-06:00 UTC", "--drain-timeout", "30m", "--window", "Sun 02:00-06:00 UTC"])).toEqual(["--yes", "--drain-timeout", "30m"]);
  expect(withoutWindows(["--yes"])).toEqual(["--yes"]);
});
