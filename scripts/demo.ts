import { spawn } from "node:child_process";
import * as path from "node:path";
import { startSandbox } from "../test/sandbox";
import { startCodeOceanScenario } from "../test/sandbox/codeocean";
import { REPO_ROOT } from "../test/sandbox/fixtures";

/**
 * `npm run demo`: a whole Code Ocean private-cloud upgrade on the local sandbox. Narration goes to
 * stderr so that `npm run demo -- --json` leaves stdout to the upgrade's JSON lines.
 */
const say = (text: string) => process.stderr.write(`\x1b[1m▶ ${text}\x1b[0m\n`);

async function main(passThrough: string[]): Promise<number> {
  const started = Date.now();
  say("starting the sandbox: moto (AWS API), a fault-injecting proxy, sshd on loopback, a Pulumi file backend");
  const bed = await startSandbox();
  let scenario;
  try {
    say("deploying the fixture Code Ocean deployment at release 1.0.0 (services instance, worker ASGs protected from scale-in, alarms)");
    scenario = await startCodeOceanScenario(bed);
    const { outputs } = scenario.deployment;
    say(`deployed: services ${outputs.ec2ServicesInstanceId?.value}, workers ${outputs.workersAsgId?.value} and ${outputs.workersGpuAsgId?.value}`);
    say(`computations running: ${JSON.stringify(scenario.services.running())} (the services simulator publishes SlotsUtilization)`);
    const args = ["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--message", "demo upgrade to 2.0.0", ...passThrough];
    say(`running: upgrade-orchestrator ${args.join(" ")}`);
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, "dist", "stacks", "cli.js"), ...args], {
        env: { ...process.env, ...bed.env },
        stdio: "inherit",
      });
      child.on("exit", (c, signal) => resolve(c ?? (signal ? 130 : 1)));
    });
    const after = await scenario.deployment.stack.outputs();
    say(`upgrade exited ${code}; the deployment now runs release ${after.deployedRelease?.value}, general workers in ${after.workersAsgId?.value}`);
    return code;
  } finally {
    say("stopping the sandbox");
    await scenario?.stop();
    await bed.stop();
    say(`demo done in ${Math.round((Date.now() - started) / 1000)}s`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
