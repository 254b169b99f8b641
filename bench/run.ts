import * as fs from "node:fs";
import * as path from "node:path";
import { DescribeAutoScalingGroupsCommand, SetInstanceProtectionCommand } from "@aws-sdk/client-auto-scaling";
import { runCli } from "../test/sandbox/cli";
import { startBackendAiCluster } from "../test/sandbox/backendai";
import { startCodeOceanScenario } from "../test/sandbox/codeocean";
import { copyFixture } from "../test/sandbox/fixtures";
import { createProtectedFleet, runbookContext } from "../test/sandbox/fleet";
import { ownStack } from "../test/sandbox/ownStack";
import { startSandbox } from "../test/sandbox";
import { createFleetStacks } from "../test/sandbox/fleetStacks";
import { startUtilitarian } from "../test/sandbox/utilitarian";
import { compileCacheDir } from "../lib/compileCache";
import { CLI_JS, DIST, mb, measure, ms, pair, print, printRow, row, rows, RUNS, spread, TMP, timeRun, type Row } from "./measure";

/**
 * `npm run bench [-- <section>...]`: figures, not tests; it never fails on a number.
 *
 * Sections (default: startup engine fleet, the table of issue 10):
 *   startup    `upgrade --help` and `backendai path` vs `node -e 0`: CPU time, peak RSS, wall
 *   engine     whole `upgrade --yes` vs bare `pulumi up --yes` on the same stack (echo-project on
 *              the bed's file backend), with no changes and with a change; the driver's own peak RSS
 *   fleet      unprotecting 1,000 instances in 4 worker ASGs on moto: time and calls
 *   codeocean, backendai   wall time per step of the sandbox upgrades (and per hop)
 *   codeocean-fleet   6 Code Ocean deployments (20 s drains) as a fleet (1 canary + 5 at
 *              --concurrency 3) against 6 more upgraded one after another (issue 22)
 *
 * Each pair is run alternately (A B, B A, ...) BENCH_RUNS times (default 5); each figure is the
 * median with its spread (min–max), and the ratio of medians A/B is measured within this one run.
 * CPU time and peak RSS of a Node.js process come from its own process.resourceUsage(), recorded
 * at exit by dist/test/sandbox/processProbe.js (node --require); the Pulumi CLI's from /usr/bin/time.
 * BENCH_DIST=<a dist dir> measures another build's CLI and runbook steps (e.g. the base commit's).
 */

async function startup(): Promise<void> {
  const node = () => measure("node", ["-e", "0"], { node: true });
  const [help, node1] = await pair(() => measure("node", [CLI_JS, "upgrade", "--help"], { node: true }), node);
  row("`upgrade --help` vs `node -e 0`, CPU", help, node1, "cpuMs");
  row("`upgrade --help` vs `node -e 0`, wall", help, node1, "wallMs");
  const [bai, node2] = await pair(() => measure("node", [CLI_JS, "backendai", "path", "--from", "23.09.8", "--to", "24.03.2", "--catalog", "bundled"], { node: true }), node);
  row("`backendai path --from 23.09.8 --to 24.03.2` vs `node -e 0`, CPU", bai, node2, "cpuMs");
  row("`backendai path …` vs `node -e 0`, wall", bai, node2, "wallMs");
}

async function engine(): Promise<void> {
  const bed = await startSandbox({ aws: false, ssh: false });
  const workDir = copyFixture("echo-project", path.join(TMP, "echo-project"));
  try {
    const env = { ...bed.env };
    const pulumi = path.join(bed.pulumi!.install.binDir, "pulumi");
    const cli = (...args: string[]) => measure(pulumi, args, { env, cwd: workDir });
    await cli("stack", "init", "bench");
    let n = 0;
    const setMessage = async () => void (await cli("config", "set", "message", `hello ${n++}`, "--stack", "bench"));
    await setMessage();
    await cli("up", "--yes", "--stack", "bench");
    const upgrade = () => measure("node", [CLI_JS, "upgrade", "--stack", "bench", "--cwd", workDir, "--runbook", "none", "--yes", "--json"], { node: true, env });
    const bare = () => cli("up", "--yes", "--stack", "bench");
    const [same, sameBare] = await pair(upgrade, bare);
    row("whole `upgrade --yes`, no changes, vs bare `pulumi up --yes`, wall", same, sameBare, "wallMs");
    const [changed, changedBare] = await pair(upgrade, bare, setMessage);
    row("whole `upgrade --yes` with a change (runbook none) vs bare `pulumi up --yes`, wall", changed, changedBare, "wallMs");
    // The driver gives the engine's program Node's compile cache (lib/compileCache.ts), which a bare
    // `pulumi up` does not have: the same pair with the bare CLI given the same cache is the
    // driver's own overhead alone.
    const cached = { ...env, NODE_COMPILE_CACHE: compileCacheDir(env)! };
    const bareCached = () => measure(pulumi, ["up", "--yes", "--stack", "bench"], { env: cached, cwd: workDir });
    const [changed2, changedBareCached] = await pair(upgrade, bareCached, setMessage);
    row("  the same, vs bare `pulumi up --yes` with the driver's NODE_COMPILE_CACHE, wall", changed2, changedBareCached, "wallMs");
    changed.push(...changed2);
    const driver = [...same, ...changed].map((s) => s.maxRssKb);
    rows.push(["driver's own peak RSS (the CLI process, not the engine)", "", spread(driver, mb), "", ""]);
    printRow(rows.at(-1)!);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
    await bed.stop();
  }
}

async function unprotect(): Promise<void> {
  const bed = await startSandbox({ ssh: false, pulumi: false });
  const ctx = runbookContext(bed.env, []);
  try {
    const created = Date.now();
    const asgs = await createProtectedFleet(ctx.aws(), "bench", 4, 250);
    const createMs = Date.now() - created;
    ctx.deployment!.workerAsgs = asgs.map((name) => ({ name, output: name }));
    const steps = require(path.join(DIST, "stacks", "runbooks", "codeocean", "scaleInProtection")) as typeof import("../stacks/runbooks/codeocean/scaleInProtection");
    const times: number[] = [];
    let calls = 0;
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      if (i > 0) {
        // protect them all again (untimed) for the next sample
        const { AutoScalingGroups } = await ctx.aws().autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: asgs }));
        for (const group of AutoScalingGroups ?? []) {
          const ids = (group.Instances ?? []).map((x) => x.InstanceId!);
          for (const batch of steps.chunk(ids, 50)) {
            await ctx.aws().autoScaling.send(new SetInstanceProtectionCommand({ AutoScalingGroupName: group.AutoScalingGroupName, InstanceIds: batch, ProtectedFromScaleIn: true }));
          }
        }
      }
      bed.aws!.clearCalls();
      const started = process.hrtime.bigint();
      await steps.removeScaleInProtection(ctx as never);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      calls = bed.aws!.calls().filter((c) => c.action === "SetInstanceProtection").length;
    }
    rows.push(["unprotect 1,000 instances in 4 worker ASGs (moto)", "", spread(times, ms), `${calls} SetInstanceProtection calls`, `fleet created in ${ms(createMs)} (5 calls)`]);
    printRow(rows.at(-1)!);
  } finally {
    ctx.close();
    await bed.stop();
  }
}


async function codeOcean(): Promise<void> {
  const bed = await startSandbox();
  try {
    const scenario = await startCodeOceanScenario(bed, { stackName: "bench", sshVia: "ssm-proxy" });
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

async function utilitarian(): Promise<void> {
  let started = Date.now();
  const bed = await startSandbox({ aws: false });
  try {
    const app = await startUtilitarian(bed, { version: "1.0.0" });
    const own = await ownStack(bed, "bench", { sshKey: { value: app.privateKey, secret: true }, dbPassword: { value: app.postgres.password, secret: true } });
    print("Utilitarian: bed (podman service, registry, RabbitMQ, PostgreSQL, compose project at 1.0.0; images from the cache)", Date.now() - started, []);
    try {
      const system = (version: string) => ({ util: app.systemConfig(version, "sshKey", "dbPassword") });
      const args = ["upgrade", "--stack", "bench", "--cwd", own.workDir, "--yes", "--json"];
      await own.setSystems(system("1.0.0"));
      const adopt = await timeRun(args, bed.env);
      print("Utilitarian: adopt the running deployment at 1.0.0 (first up)", adopt.total, adopt.steps);
      await own.setSystems(system("2.0.0"));
      const provider: Row[] = [];
      started = Date.now();
      const upgrade = await timeRun(args, bed.env, undefined, (message) => {
        const step = /^utilitarian \S+: (\S+) (done|skipped).*\[(\d+(?:\.\d+)?)s\]$/.exec(message);
        if (step) provider.push([`${step[1]} (${step[2]})`, Number(step[3]) * 1000]);
      });
      print("Utilitarian 1.0.0 → 2.0.0 (API, beat, worker; poster; RabbitMQ; PostgreSQL)", upgrade.total, upgrade.steps);
      print("  per runbook step", provider.reduce((n, [, ms]) => n + ms, 0), provider);
    } finally {
      await own.remove();
      await app.stop();
    }
  } finally {
    await bed.stop();
  }
}

/**
 * A fleet against the same stacks run one after another: 6 fixture stacks (1 canary + 5) on the
 * S3 backend in moto, once as `--stacks-file` with --concurrency 3, once as six single runs.
 */
async function stackFleet(): Promise<void> {
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
    const perStack: Row[] = [];
    const seqStarted = Date.now();
    for (const stack of stacks("seq")) {
      const one = await timeRun(["upgrade", "--stack", stack, "--cwd", workDir, "--yes", "--json"], bed.env);
      perStack.push([stack, one.total]);
    }
    const seqMs = Date.now() - seqStarted;
    print("Fleet of 6 fixture stacks (1 canary + 5), --concurrency 3, S3 backend", fleetMs, [["fleet (canary, then 5 at 3 at once)", fleetMs], ["same stacks one after another", seqMs]]);
    print("  one after another, per stack", seqMs, perStack);
    rows.push(["fleet of 6 stacks (1 canary + 5, --concurrency 3) vs the same stacks one after another", `${(fleetMs / seqMs).toFixed(2)}×`, ms(fleetMs), ms(seqMs), ""]);
    printRow(rows.at(-1)!);
  } finally {
    await bed.stop();
  }
}

/**
 * A fleet of Code Ocean deployments, each with a real drain wait (its computations take ~20 s to
 * end after the cancel), as one `upgrade --stacks-file` (a canary wave, then 5 at --concurrency 3)
 * against 6 more upgraded one after another. Each deployment's services API has its own port on
 * the bed: the fleet file gives it as that stack's `flags`.
 */
async function codeOceanFleet(): Promise<void> {
  const bed = await startSandbox();
  const scenarios: Array<Awaited<ReturnType<typeof startCodeOceanScenario>>> = [];
  try {
    const names = ["canary", "s1", "s2", "s3", "s4", "s5"];
    const deploy = async (stackName: string) => {
      const s = await startCodeOceanScenario(bed, { stackName, workers: 1, gpuWorkers: 1, drainMs: 20_000 });
      scenarios.push(s);
      return s;
    };
    const all = [...names.map((n) => `fleet-${n}`), ...names.map((n) => `seq-${n}`)];
    const started = Date.now();
    const deployed = new Map<string, Awaited<ReturnType<typeof startCodeOceanScenario>>>();
    for (let i = 0; i < all.length; i += 3) {
      for (const s of await Promise.all(all.slice(i, i + 3).map(deploy))) deployed.set(s.deployment.stackName, s);
    }
    process.stdout.write(`
12 Code Ocean deployments on the bed in ${((Date.now() - started) / 1000).toFixed(1)}s
`);
    // the flags every stack shares (ssh, polling, bake), less the ones of one stack
    const shared = (args: string[]) => args.filter((a, i) => !["--stack", "--cwd", "--services-port"].includes(a) && !["--stack", "--cwd", "--services-port"].includes(args[i - 1]!));
    const entry = (stack: string) => {
      const s = deployed.get(stack)!;
      return `{ stack: ${stack}, cwd: ${JSON.stringify(s.deployment.workDir)}, flags: [--services-port, "${s.services.port}"] }`;
    };
    const file = path.join(bed.dir, "codeocean-fleet.yaml");
    fs.writeFileSync(file, `waves:\n  - name: canary\n    canary: true\n    stacks: [${entry("fleet-canary")}]\n  - name: rest\n    stacks: [${names.slice(1).map((n) => entry(`fleet-${n}`)).join(", ")}]\n`);
    const common = shared(deployed.get("fleet-canary")!.upgradeArgs);
    const fleetStarted = Date.now();
    const fleetRun = await runCli(["upgrade", "--stacks-file", file, ...common, "--release", "2.0.0", "--concurrency", "3", "--yes", "--json"], bed.env, { timeoutMs: 1_800_000 });
    const fleetMs = Date.now() - fleetStarted;
    if (fleetRun.code !== 0) throw new Error(`the fleet failed (exit ${fleetRun.code}):\n${fleetRun.stdout.slice(-3000)}`);
    const perStack: Row[] = [];
    const seqStarted = Date.now();
    for (const n of names) {
      const one = await timeRun(["upgrade", ...deployed.get(`seq-${n}`)!.upgradeArgs, "--release", "2.0.0", "--yes", "--json"], bed.env);
      perStack.push([`seq-${n}`, one.total]);
    }
    const seqMs = Date.now() - seqStarted;
    print("Fleet of 6 Code Ocean deployments (20 s drains; 1 canary + 5 at --concurrency 3)", fleetMs, [["fleet (canary, then 5 at 3 at once)", fleetMs], ["same kind of stacks one after another", seqMs]]);
    print("  one after another, per stack", seqMs, perStack);
    rows.push(["Code Ocean fleet of 6 (20 s drains, 1 canary + 5 at --concurrency 3) vs one after another", `${(fleetMs / seqMs).toFixed(2)}×`, ms(fleetMs), ms(seqMs), ""]);
    printRow(rows.at(-1)!);
  } finally {
    for (const s of scenarios) await s.stop().catch(() => undefined);
    await bed.stop();
  }
}

const SECTIONS: Record<string, () => Promise<void>> = { startup, engine, unprotect, fleet: stackFleet, codeocean: codeOcean, "codeocean-fleet": codeOceanFleet, backendai: backendAi, utilitarian };

async function main(which: string[]): Promise<void> {
  const chosen = which.length === 0 ? ["startup", "engine", "unprotect", "fleet"] : which;
  const unknown = chosen.filter((w) => !SECTIONS[w]);
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(", ")}: use ${Object.keys(SECTIONS).join(", ")}`);
  process.stdout.write(`bench: ${CLI_JS}, node ${process.version}, ${RUNS} alternating runs per pair, median (min–max)\n`);
  process.stdout.write(`figure | ratio A/B | A | B | peak RSS A vs B\n`);
  const failed: string[] = [];
  for (const w of chosen) {
    // a section that cannot run is reported, and the others still run: the bench never fails on a number
    await SECTIONS[w]!().catch((err) => failed.push(`${w}: ${(err as Error).stack ?? err}`));
  }
  if (rows.length > 0) {
    process.stdout.write(`\n| figure | ratio | A median (min–max) | B median (min–max) | peak RSS A vs B |\n|---|---|---|---|---|\n`);
    for (const r of rows) process.stdout.write(`| ${r.join(" | ")} |\n`);
  }
  if (failed.length > 0) throw new Error(failed.join("\n"));
}

main(process.argv.slice(2)).then(
  () => {
    fs.rmSync(TMP, { recursive: true, force: true });
    process.exit(0);
  },
  (err) => {
    fs.rmSync(TMP, { recursive: true, force: true });
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
