import { runCli } from "../sandbox/cli";

// The built CLI answers the RUNBOOKS.md examples with the documented JSON and exit codes.
const path = (...args: string[]) => runCli(["backendai", "path", ...args, "--json"], {});

test("allowed paths print the hops, exit 0", async () => {
  const run = await path("--from", "23.09.8", "--to", "24.03.2");
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ allowed: true, path: ["23.09.10", "24.03.0", "24.03.2"] });
  const direct = await path("--from", "23.09.10", "--to", "24.03.5", "--direct");
  expect([direct.code, JSON.parse(direct.stdout).allowed]).toEqual([0, true]);
});

test("refusals print the reason, exit 3; malformed input exits 2", async () => {
  const rc = await path("--from", "23.09.9", "--to", "24.03.0");
  expect(rc.code).toBe(3);
  expect(JSON.parse(rc.stdout)).toMatchObject({ allowed: false, reason: expect.stringMatching(/23\.09\.9 was never released/) });
  const skip = await path("--from", "23.03.0", "--to", "24.03.0", "--direct");
  expect(skip.code).toBe(3);
  expect(JSON.parse(skip.stdout)).toEqual({ allowed: false, reason: "skips the major release 23.09" });
  const down = await path("--from", "24.03.2", "--to", "23.09.10");
  expect([down.code, JSON.parse(down.stdout).reason]).toEqual([3, expect.stringMatching(/downgrades/)]);
  const bad = await runCli(["backendai", "path", "--from", "next", "--to", "24.03.0"], {});
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/could not read --from: "next" is not a Backend\.AI version/);
});

test("with --json, errors stay JSON: malformed input prints {allowed:false, reason} (exit 2), usage errors one error event", async () => {
  const bad = await path("--from", "next", "--to", "24.03.0");
  expect(bad.code).toBe(2);
  expect(bad.stderr).toBe("");
  expect(JSON.parse(bad.stdout)).toMatchObject({ allowed: false, reason: expect.stringMatching(/could not read --from: "next" is not a Backend\.AI version/) });

  for (const args of [["upgrade", "--json"], ["upgrade", "--json", "--stack", "prod", "--drain-timeout", "soon", "--yes"], ["upgrade", "--stack", "prod", "--json", "--no-such-flag"]]) {
    const run = await runCli(args, {});
    const events = run.events();
    expect([args, run.code, events.length, run.stderr]).toEqual([args, 2, 1, ""]);
    expect(events[0]).toMatchObject({ type: "error", exitCode: 2, error: expect.any(String) });
  }
  const missing = (await runCli(["upgrade", "--json"], {})).events()[0]!;
  expect(missing.error).toMatch(/no --stack and no --stacks-file/);
  const duration = (await runCli(["upgrade", "--json", "--stack", "prod", "--drain-timeout", "soon", "--yes"], {})).events()[0]!;
  expect([duration.error, duration.hint]).toEqual([expect.stringMatching(/could not read --drain-timeout: "soon" is not a duration/), "use e.g. 30m, 15s, 1h30m"]);
});
