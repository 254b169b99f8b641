import { runCli } from "../test/sandbox/cli";
import { startBackendAiCluster } from "../test/sandbox/backendai";
import { startCodeOceanScenario } from "../test/sandbox/codeocean";
import { ownStack } from "../test/sandbox/ownStack";
import { startSandbox } from "../test/sandbox";
import { createFleetStacks } from "../test/sandbox/fleetStacks";

/**
 * `npm run bench`: figures, not tests. Runs each main job once on the sandbox through the CLI
 * (as a pipeline does, --yes --json) and prints the wall time of every step, and for Backend.AI
 * of every hop (timed by when the provider's progress lines arrive). Numbers vary with the
 * machine; the goals (README) are a demo under 3 minutes with a warm toolchain.
 */
type Row = [string, number];

// The bed runs Node 20 on purpose (README); the AWS SDK's notice about Node 22 is known.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

async function timeRun(args: string[], env: Record<string, string>, hopTimes?: Row[]): Promise<{ total: number; steps: Row[] }> {
  const started = Date.now();
  const hopStart = new Map<string, number>();
  let partial = "";
  const result = await runCli(args, env, {
    timeoutMs: 900_000,
    onStdout: (chunk) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const message = (JSON.parse(line) as { event?: { diagnosticEvent?: { message?: string } } }).event?.diagnosticEvent?.message ?? "";
        const hop = /hop (\S+ → \S+)(?: \(major\))?: (starting|done)$/.exec(message.trim());
        if (hop?.[2] === "starting") hopStart.set(hop[1]!, Date.now());
        if (hop?.[2] === "done") hopTimes?.push([hop[1]!, Date.now() - (hopStart.get(hop[1]!) ?? Date.now())]);
      }
    },
  });
  const total = Date.now() - started;
  if (result.code !== 0) throw new Error(`the run failed (exit ${result.code}):\n${result.stderr}\n${result.stdout.slice(-2000)}`);
  const steps = result.events().flatMap((e) => (e.type === "step-end" ? [[`${e.step} (${e.status})`, e.durationMs as number] as Row] : []));
  return { total, steps };
}

function print(title: string, total: number, rows: Row[]): void {
  const width = Math.max(...rows.map(([name]) => name.length), 10);
  process.stdout.write(`\n${title}: ${(total / 1000).toFixed(1)}s wall\n`);
  for (const [name, ms] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${(ms / 1000).toFixed(1).padStart(6)}s\n`);
}

async function codeOcean(): Promise<void> {
  const bed = await startSandbox();
  try {
    const scenario = await startCodeOceanScenario(bed, { stackName: "bench" });
    try {
      const { total, steps } = await timeRun(["upgrade", ...scenario.upgradeArgs, "--release", "2.0.0", "--yes", "--json"], bed.env);
      print("Code Ocean 1.0.0 → 2.0.0 (3 general + 2 GPU workers, 6 s drain)", total, steps);
    } finally {
      await scenario.stop();
    }
  } finally {
    await bed.stop();
  }
}

async function backendAi(): Promise<void> {
  const bed = await startSandbox({ aws: false });
  try {
    const cluster = await startBackendAiCluster(bed, { version: "23.09.8" });
    const own = await ownStack(bed, "bench", { sshKey: { value: cluster.privateKey, secret: true } });
    try {
      const system = (version: string) => ({ bai: cluster.systemConfig(version, "sshKey") });
      const args = ["upgrade", "--stack", "bench", "--cwd", own.workDir, "--yes", "--json"];
      await own.setSystems(system("23.09.8"));
      const adopt = await timeRun(args, bed.env);
      print("Backend.AI: adopt the running cluster at 23.09.8 (first up)", adopt.total, adopt.steps);
      await own.setSystems(system("24.03.2"));
      const hops: Row[] = [];
      const upgrade = await timeRun(args, bed.env, hops);
      print("Backend.AI 23.09.8 → 24.03.2 (3 hosts, 3 hops)", upgrade.total, upgrade.steps);
      print("  per hop", hops.reduce((n, [, ms]) => n + ms, 0), hops);
    } finally {
      await own.remove();
      await cluster.stop();
    }
  } finally {
    await bed.stop();
  }
}

/**
 * A fleet against the same stacks run one after another: 6 fixture stacks (1 canary + 5) on the
 * S3 backend in moto, once as `--stacks-file` with --concurrency 3, once as six single runs.
 */
async function fleet(): Promise<void> {
  const bed = await startSandbox({ backend: "s3", ssh: false });
  const fs = await import("node:fs");
  const path = await import("node:path");
  try {
    const names = ["canary", "s1", "s2", "s3", "s4", "s5"];
    const stacks = (prefix: string) => names.map((n) => `${prefix}-${n}`);
    const workDir = await createFleetStacks(bed, [...stacks("fleet"), ...stacks("seq")]);
    const file = path.join(bed.dir, "fleet.yaml");
    fs.writeFileSync(file, `cwd: ${workDir}\nwaves:\n  - name: canary\n    canary: true\n    stacks: [fleet-canary]\n  - name: rest\n    stacks: [${stacks("fleet").slice(1).join(", ")}]\n`);
    const fleetStarted = Date.now();
    const fleetRun = await runCli(["upgrade", "--stacks-file", file, "--concurrency", "3", "--yes", "--json"], bed.env, { timeoutMs: 900_000 });
    const fleetMs = Date.now() - fleetStarted;
    if (fleetRun.code !== 0) throw new Error(`the fleet failed (exit ${fleetRun.code}):\n${fleetRun.stdout.slice(-2000)}`);
    const rows: Row[] = [];
    const seqStarted = Date.now();
    for (const stack of stacks("seq")) {
      const one = await timeRun(["upgrade", "--stack", stack, "--cwd", workDir, "--yes", "--json"], bed.env);
      rows.push([stack, one.total]);
    }
    const seqMs = Date.now() - seqStarted;
    print("Fleet of 6 fixture stacks (1 canary + 5), --concurrency 3, S3 backend", fleetMs, [["fleet (canary, then 5 at 3 at once)", fleetMs], ["same stacks one after another", seqMs]]);
    print("  one after another, per stack", seqMs, rows);
    process.stdout.write(`  fleet / sequential: ${(fleetMs / seqMs).toFixed(2)}\n`);
  } finally {
    await bed.stop();
  }
}

async function main(which: string[]): Promise<void> {
  const all = which.length === 0;
  if (all || which.includes("codeocean")) await codeOcean();
  if (all || which.includes("backendai")) await backendAi();
  if (all || which.includes("fleet")) await fleet();
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
