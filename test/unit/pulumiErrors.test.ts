import { pulumiErrors } from "../../stacks/pulumiCall";

// What the operator reads when `pulumi preview|up` fails: the engine's own message, not its framing.
const failure = (stderr: string) => Object.assign(new Error("code: 255\n stdout: \n stderr: ..."), { stderr });

test("a provider's errors, announced by 'N error(s) occurred:'", () => {
  const stderr = [
    "  pulumi-nodejs:dynamic/backendai:BackendAiCluster (faulty):",
    "    error: 1 error occurred:",
    "    \t* updating urn:pulumi:faulty::upgrade-orchestrator::pulumi-nodejs:dynamic/backendai:BackendAiCluster::faulty: 1 error occurred:",
    "    \t* Backend.AI upgrade stopped in hop 24.03.0 → 24.03.2; the cluster's completed version stays 24.03.0: could not …",
    "",
    "  pulumi:pulumi:Stack (upgrade-orchestrator-faulty):",
    "    error: update failed",
  ].join("\n");
  expect(pulumiErrors(failure(stderr))).toBe("Backend.AI upgrade stopped in hop 24.03.0 → 24.03.2; the cluster's completed version stays 24.03.0: could not …");
});

test("a program that threw: its exception's message, without the stack trace", () => {
  const stderr = [
    "    error: Running program '/tmp/own/index.js' failed with an unhandled exception:",
    "    Error: invalid stack config:",
    "      upgrade-orchestrator:systems.bai.hosts[1].ssh.port: Invalid input: expected number, received string",
    "        at Object.<anonymous> (/work/main/dist/index.js:40:15)",
  ].join("\n");
  expect(pulumiErrors(failure(stderr))).toBe(
    "the program failed: invalid stack config: upgrade-orchestrator:systems.bai.hosts[1].ssh.port: Invalid input: expected number, received string",
  );
});

test("plain engine errors are kept once each, the framing lines dropped", () => {
  const stderr = "error: the stack is currently locked by 1 lock(s)\nerror: the stack is currently locked by 1 lock(s)\nerror: preview failed";
  expect(pulumiErrors(failure(stderr))).toBe("the stack is currently locked by 1 lock(s)");
});

test("a torn file:// checkpoint is recognised in the Pulumi CLI's own words (an empty file, and one cut short)", () => {
  const { TORN_CHECKPOINT } = require("../../stacks/checkpointRepair") as typeof import("../../stacks/checkpointRepair");
  // pulumi 3.274 `stack export` on a 0-byte <stack>.json (seen here), and on a 0-byte <stack>.json.attrs
  // sidecar, which a kill -9 in up leaves (seen in CI and under stress-ng; durable-runs.test.ts holds it)
  expect(TORN_CHECKPOINT.test("error: failed to load checkpoint: place 1: unexpected end of JSON input")).toBe(true);
  expect(TORN_CHECKPOINT.test("failed to load checkpoint: EOF")).toBe(true);
  expect(TORN_CHECKPOINT.test("error: no stack named 'prod' found")).toBe(false);
});
