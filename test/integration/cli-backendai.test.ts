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
