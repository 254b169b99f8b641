import type { Command } from "commander";
import { buildProgram, failureLimit, FLEET_LEVEL_FLAGS, perStackArgs } from "../../stacks/cli";

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
