import type { Command } from "commander";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildProgram } from "../../stacks/cli";
import { checkStackFlags, FLEET_LEVEL_FLAGS, fleetPlanFromFlags, perStackArgs } from "../../stacks/commands/fleet";
import { durationText, failureLimit } from "../../stacks/commands/flags";
import { DEFAULTS } from "../../stacks/defaults";
import { NOTIFY_DEFAULTS } from "../../lib/notify";
import { parseDuration } from "../../lib/wait";
import { planMatrix, readFleetFile } from "../../stacks/fleetPlan";

// A fleet runs `upgrade` once per stack. Every flag the operator gives must reach each stack's run
// unless it is the fleet's own (issue 21: --ssh-config and --wait-dedicated were silently dropped).
function upgradeCommand(): Command {
  return buildProgram().commands.find((c) => c.name() === "upgrade")!;
}

/** A value the option accepts, by its argument's name. */
function sample(flag: string, takesValue: boolean, choices?: readonly string[]): string[] {
  if (!takesValue) return [flag];
  if (choices?.length) return [flag, choices.at(-1)!];
  return [flag, `value-of${flag}`];
}

test("every upgrade flag the operator gives reaches each stack of a fleet, unless it is fleet-level", () => {
  const cmd = upgradeCommand();
  const given: Array<{ flag: string; argv: string[] }> = [];
  for (const option of cmd.options) {
    const flag = option.long!;
    if (FLEET_LEVEL_FLAGS.has(flag)) continue;
    given.push({ flag, argv: sample(flag, option.required || option.optional, option.argChoices) });
  }
  expect(given.map((g) => g.flag)).toEqual(expect.arrayContaining(["--ssh-config", "--wait-dedicated", "--yes", "--ssh-key", "--drain-timeout"]));
  cmd.parseOptions(["--stacks-file", "fleet.yaml", ...given.flatMap((g) => g.argv)]);
  const args = perStackArgs(cmd);
  for (const g of given) {
    const at = args.indexOf(g.flag);
    expect({ flag: g.flag, forwarded: at >= 0 }).toEqual({ flag: g.flag, forwarded: true });
    expect(args.slice(at, at + g.argv.length)).toEqual(g.argv);
  }
  expect(args).not.toContain("--stacks-file");
});

test("fleet-level flags are real flags of upgrade and stay with the fleet; defaults are not passed", () => {
  const cmd = upgradeCommand();
  const longs = new Set(cmd.options.map((o) => o.long));
  for (const flag of FLEET_LEVEL_FLAGS) expect({ flag, known: longs.has(flag) }).toEqual({ flag, known: true });
  cmd.parseOptions(["--stack", "a", "--stack", "b", "--concurrency", "3", "--notify", "https://hooks.example/x", "--report", "fleet.md", "--json", "--cwd", "/tmp"]);
  expect(perStackArgs(cmd)).toEqual([]);
});

test("repeated values and given defaults are passed as given", () => {
  const cmd = upgradeCommand();
  cmd.parseOptions(["--stack", "prod-*", "--drain-timeout", "30m", "--runbook", "none", "--yes"]);
  expect(perStackArgs(cmd)).toEqual(["--runbook", "none", "--yes", "--drain-timeout", "30m"]);
});

test("--max-failures takes a count or a share of a wave; anything else is bad input naming the flag", () => {
  expect(failureLimit("3")).toBe(3);
  expect(failureLimit("50%")).toEqual({ percent: 50 });
  expect(failureLimit("12.5%")).toEqual({ percent: 12.5 });
  for (const bad of ["0", "-1", "0%", "100%", "150%", "ten", "5 %x"]) expect(() => failureLimit(bad)).toThrow(/--max-failures/);
});

test("--no-restore-point reaches every stack of a fleet", () => {
  const cmd = upgradeCommand();
  cmd.parseOptions(["--stack", "a", "--stack", "b", "--no-restore-point", "--wave-delay", "5m"]);
  expect(perStackArgs(cmd)).toEqual(["--no-restore-point"]);
});

test("a stack's own flags in the fleet file come after the command line's: commander gives that stack its own value", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-flags-"));
  const file = path.join(dir, "fleet.yaml");
  fs.writeFileSync(file, `waves:\n  - name: all\n    stacks:\n      - prod-us\n      - { stack: prod-eu, flags: [--services-port, "8400", --wait-dedicated] }\n`);
  const plan = await readFleetFile(file, {}, "/projects/p");
  const [us, eu] = plan.waves[0]!.stacks;
  expect([us!.flags, eu!.flags]).toEqual([undefined, ["--services-port", "8400", "--wait-dedicated"]]);
  expect(planMatrix(plan, "/projects").waves[0]!.matrix.include[1]).toEqual({ stack: "prod-eu", cwd: "p", flags: ["--services-port", "8400", "--wait-dedicated"] });

  const fleetCmd = upgradeCommand();
  fleetCmd.parseOptions(["--stacks-file", file, "--services-port", "8300", "--drain-timeout", "30m", "--yes"]);
  checkStackFlags(fleetCmd, "prod-eu", eu!.flags!);
  // what the fleet runs for prod-eu, parsed as that stack's run parses it
  const stackCmd = upgradeCommand();
  stackCmd.parseOptions(["--stack", "prod-eu", ...perStackArgs(fleetCmd), ...eu!.flags!]);
  expect(stackCmd.opts()).toMatchObject({ servicesPort: "8400", waitDedicated: true, drainTimeout: "30m", yes: true });
});

test("a stack's flags that upgrade does not know, fleet-level ones, or one missing its value are bad input before anything runs", () => {
  const cmd = upgradeCommand();
  const refusal = (flags: string[]) => {
    try {
      checkStackFlags(cmd, "prod-eu", flags);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
  expect(refusal(["--services-port", "8400", "--no-restore-point"])).toBeUndefined();
  expect(refusal(["--services-prot", "8400"])).toMatch(/stack prod-eu .*"--services-prot" is not an upgrade flag/);
  expect(refusal(["8400"])).toMatch(/"8400" is not an upgrade flag/);
  expect(refusal(["--concurrency", "2"])).toMatch(/--concurrency is for the whole fleet/);
  expect(refusal(["--release", "3.0.0"])).toMatch(/--release is for the whole fleet/);
  expect(refusal(["--services-port"])).toMatch(/--services-port needs a value/);
  expect(refusal(["--services-port", "--yes"])).toMatch(/--services-port needs a value/);
});

test("--release with --stacks-file is each stack's release unless the file gives it one (it was dropped)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-release-"));
  const file = path.join(dir, "fleet.yaml");
  fs.writeFileSync(file, "waves:\n  - name: all\n    stacks: [a, { stack: b, release: 1.9.0 }]\n");
  const plan = await fleetPlanFromFlags({ stack: [], stacksFile: file, cwd: dir, release: "2.0.0", notify: [] });
  expect(plan.waves[0]!.stacks.map((s) => [s.stack, s.release])).toEqual([["a", "2.0.0"], ["b", "1.9.0"]]);
});

test("the defaults --help shows are the ones the driver uses (one defaults object, stacks/defaults.ts)", () => {
  const cmd = upgradeCommand();
  const defaultOf = (flag: string) => cmd.options.find((o) => o.long === flag)!.defaultValue as string;
  const ms = (flag: string) => parseDuration(defaultOf(flag));
  expect({
    drainTimeoutMs: ms("--drain-timeout"),
    pollIntervalMs: ms("--poll-interval"),
    metricPeriodSeconds: ms("--metric-period")! / 1000,
    bakeTimeMs: ms("--bake-time"),
    verifyTimeoutMs: ms("--verify-timeout"),
    servicesTimeoutMs: ms("--services-timeout"),
    servicesPort: Number(defaultOf("--services-port")),
  }).toEqual({
    drainTimeoutMs: DEFAULTS.drainTimeoutMs,
    pollIntervalMs: DEFAULTS.pollIntervalMs,
    metricPeriodSeconds: DEFAULTS.metricPeriodSeconds,
    bakeTimeMs: DEFAULTS.bakeTimeMs,
    verifyTimeoutMs: DEFAULTS.verifyTimeoutMs,
    servicesTimeoutMs: DEFAULTS.servicesTimeoutMs,
    servicesPort: DEFAULTS.servicesPort,
  });
  expect([ms("--notify-timeout"), ms("--notify-backoff")]).toEqual([NOTIFY_DEFAULTS.timeoutMs, NOTIFY_DEFAULTS.minBackoffMs]);
  // and the help text says them
  expect(cmd.helpInformation()).toContain(`(default: "${durationText(DEFAULTS.drainTimeoutMs)}")`);
});
