import * as fs from "node:fs";
import * as path from "node:path";
import { startSandbox, type Sandbox } from "../sandbox";
import { startCli } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { ssmLikeSshConfig } from "../sandbox/sshProxy";

// A fleet of two Code Ocean deployments run with the operator's own SSH config (Session Manager's
// ProxyCommand, routed by instance id) and --wait-dedicated: both flags reach every stack's run
// (issue 21: a fleet used to drop them silently). Each deployment's services API has its own port
// on the bed; the fleet file gives it as that stack's `flags`.
let bed: Sandbox;
const scenarios: CodeOceanScenario[] = [];
jest.setTimeout(600_000);

beforeAll(async () => {
  bed = await startSandbox();
  for (const stackName of ["fleet-a", "fleet-b"]) scenarios.push(await startCodeOceanScenario(bed, { stackName, workers: 1, gpuWorkers: 0, drainMs: 2000 }));
});
afterAll(async () => {
  for (const s of scenarios) await s.stop();
  await bed?.stop();
});

test("--ssh-config and --wait-dedicated given to a fleet apply to every stack; a stack's own flags (its services port) come from the fleet file", async () => {
  const servicesId = (s: CodeOceanScenario) => s.deployment.outputs.ec2ServicesInstanceId!.value as string;
  const ssh = ssmLikeSshConfig(bed.sshd!, path.join(bed.dir, "fleet-ssh"), scenarios.map(servicesId));
  const dedicated = new Map<string, string>();
  for (const s of scenarios) dedicated.set(s.deployment.stackName, await s.launchDedicatedWorker(`user-of-${s.deployment.stackName}@example.com`, "capsule-1"));
  const file = path.join(bed.dir, "fleet-codeocean.yaml");
  const entry = (s: CodeOceanScenario) => `{ stack: ${s.deployment.stackName}, cwd: ${JSON.stringify(s.deployment.workDir)}, flags: [--services-port, "${s.services.port}"] }`;
  fs.writeFileSync(file, `waves:\n  - name: all\n    stacks: [${scenarios.map(entry).join(", ")}]\n`);

  const events: Array<Record<string, unknown> & { type: string }> = [];
  const terminated = new Map<string, Promise<void>>();
  const cli = startCli(
    ["upgrade", "--stacks-file", file, "--release", "2.0.0", "--concurrency", "2", "--ssh-config", ssh.configPath, "--wait-dedicated",
      "--poll-interval", "2s", "--metric-period", "10s", "--drain-timeout", "2m", "--bake-time", "3s", "--verify-timeout", "30s", "--yes", "--json"],
    bed.env,
    (e) => {
      events.push(e);
      // the ASG is idle and only the stack's dedicated worker runs: its user's run ends now
      const stack = e.stack as string;
      const data = (e as { data?: { asgs?: Array<{ state: string }>; dedicated?: { count: number } } }).data;
      if (e.type === "progress" && e.step === "wait-idle-workers" && !terminated.has(stack) && data?.dedicated?.count === 1 && data.asgs?.every((a) => a.state === "idle")) {
        terminated.set(stack, scenarios.find((s) => s.deployment.stackName === stack)!.terminateInstance(dedicated.get(stack)!));
      }
    },
  );
  const code = await cli.exited;
  await Promise.all(terminated.values());
  expect([code, code === 0 ? "" : cli.stdout().trim().split("\n").at(-1)]).toEqual([0, ""]);

  for (const s of scenarios) {
    const stack = s.deployment.stackName;
    const ofStack = events.filter((e) => e.stack === stack);
    const ended = (step: string) => ofStack.find((e) => e.type === "step-end" && e.step === step) as { status: string; note?: string } | undefined;
    // --ssh-config: the services machine reached by its instance id through the config's ProxyCommand
    expect(ended("cancel-computations")?.note).toMatch(new RegExp(`^HTTP 200 via ${servicesId(s)} \\(the instance id, routed by ${ssh.configPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)`));
    // --wait-dedicated: it waited for the dedicated worker, which ran until the test ended it
    expect(terminated.has(stack)).toBe(true);
    expect(ofStack.some((e) => e.type === "progress" && e.step === "wait-idle-workers" && /\(waiting for them\)/.test(String(e.message)))).toBe(true);
    expect(ended("wait-idle-workers")).toMatchObject({ status: "done", note: expect.stringContaining("no dedicated worker running") });
    expect(ended("wait-idle-workers")?.note).not.toMatch(/not waited for/);
    // its own services port: the cancel reached this deployment's simulator, once
    expect(s.services.requests().filter((r) => r.path === "/cancel_computations")).toHaveLength(1);
    expect(ended("verify-deployment")?.status).toBe("done");
  }
});
