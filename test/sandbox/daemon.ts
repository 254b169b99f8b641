import * as fs from "node:fs";
import * as path from "node:path";
import { upgrade } from "../../stacks/upgrade";
import { startBackendAiCluster, type BackendAiFixture } from "./backendai";
import { startCodeOceanScenario, type CodeOceanScenario } from "./codeocean";
import { ownStackConfig, startVpcFixture, type VpcFixture } from "./codeoceanVpc";
import { envFileText, startSandbox, type Sandbox } from "./index";
import { startOpenEdxFleet, type OpenEdxFixture } from "./openedx";
import { ownStack, type OwnStack } from "./ownStack";
import { startUtilitarian, type UtilitarianFixture } from "./utilitarian";

export type SandboxExtra = "codeocean" | "backendai" | "codeocean-vpc" | "openedx" | "utilitarian";
export const SANDBOX_EXTRAS: SandboxExtra[] = ["codeocean", "backendai", "codeocean-vpc", "openedx", "utilitarian"];

/**
 * The background process behind `npm run sandbox -- up`: starts the bed, writes the env file and
 * status.json, and holds everything until SIGTERM/SIGINT (`sandbox down`), then stops it all.
 * Its servers watch this process: if it is killed outright, they stop by themselves.
 */
export interface SandboxStatus {
  state: "starting" | "ready" | "failed" | "stopped";
  pid: number;
  startedAt: string;
  envFile: string;
  processes: Array<{ name: string; pid: number }>;
  error?: string;
  /** With --with: how to run the upgrade by hand. */
  hint?: string;
}

async function main(dir: string, extra: SandboxExtra | undefined): Promise<void> {
  const statusFile = path.join(dir, "status.json");
  const envFile = path.join(dir, "env");
  const status: SandboxStatus = { state: "starting", pid: process.pid, startedAt: new Date().toISOString(), envFile, processes: [] };
  const write = () => fs.writeFileSync(statusFile, JSON.stringify(status, null, 2));
  write();
  let bed;
  let scenario: CodeOceanScenario | undefined;
  let backendAi: { cluster: BackendAiFixture; own: OwnStack } | undefined;
  let codeoceanVpc: { fixture: VpcFixture; own: OwnStack } | undefined;
  let openEdx: { fleet: OpenEdxFixture; own: OwnStack } | undefined;
  let utilitarian: { app: UtilitarianFixture; own: OwnStack } | undefined;
  const extraEnv: Record<string, string> = { UO_SANDBOX_DIR: dir };
  try {
    // Open edX's AMIs must exist (moto checks them only with AMI validation on).
    bed = await startSandbox({ dir: path.join(dir, "bed"), ...(extra === "openedx" ? { motoEnv: { MOTO_ENABLE_AMI_VALIDATION: "true" } } : {}) });
  } catch (err) {
    Object.assign(status, { state: "failed", error: (err as Error).message });
    write();
    process.exit(1);
  }
  if (extra === "codeocean") {
    try {
      const deploymentDir = path.join(dir, "codeocean-deployment");
      fs.rmSync(deploymentDir, { recursive: true, force: true });
      scenario = await startCodeOceanScenario(bed, { dir: deploymentDir, sshVia: "ssm-proxy" });
      const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`);
      status.hint = [
        `The Code Ocean deployment is at release 1.0.0 in ${deploymentDir} (stack prod), with computations running.`,
        `Upgrade it to 2.0.0 by hand:`,
        `  source ${envFile}`,
        `  npm run upgrade -- ${[...scenario.upgradeArgs, "--release", "2.0.0"].map(quote).join(" ")}`,
      ].join("\n");
      Object.assign(extraEnv, { UO_SERVICES_PORT: String(scenario.services.port), UO_DEPLOYMENT_DIR: deploymentDir });
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `deploying the Code Ocean fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  if (extra === "backendai") {
    try {
      backendAi = await adoptBackendAi(bed, dir);
      status.hint = [
        `A Backend.AI cluster runs 23.09.8 (manager, agent, storage-proxy: real processes, PostgreSQL ${backendAi.cluster.postgres.majorVersion}),`,
        `adopted by the stack "backendai" of the orchestrator's own project in ${backendAi.own.workDir}.`,
        `Upgrade it by hand: set its version in ${backendAi.own.configFile} (e.g. 24.03.2), then`,
        `  source ${envFile}`,
        `  npm run upgrade -- --stack backendai --cwd ${backendAi.own.workDir}`,
      ].join("\n");
      extraEnv.UO_OWN_PROJECT_DIR = backendAi.own.workDir;
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `standing up the Backend.AI fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  if (extra === "codeocean-vpc") {
    try {
      codeoceanVpc = await adoptCodeOceanVpc(bed, dir);
      status.hint = [
        `A Code Ocean VPC deployment (CloudFormation in moto) is at 3.7.0: stacks co-role, co-backup and co-vpc, its database`,
        `auto-scaled to 64 GiB above pRdsAllocatedStorage=20, Batch jobs running and 2 worker instances; adopted by the stack`,
        `"codeocean-vpc" of the orchestrator's own project in ${codeoceanVpc.own.workDir}. Upgrade it to 3.8.2 by hand:`,
        `set version: 3.8.2 in ${codeoceanVpc.own.configFile} (systems.vpc; the role stack follows it, the backup stack keeps its own version line, v1.2.x), then`,
        `  source ${envFile}`,
        `  npm run upgrade -- --stack codeocean-vpc --cwd ${codeoceanVpc.own.workDir}`,
        `The maintenance hook is the bed's loopback server; maintenance mode's effects show a few polls after it is called.`,
      ].join("\n");
      extraEnv.UO_OWN_PROJECT_DIR = codeoceanVpc.own.workDir;
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `standing up the Code Ocean VPC fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  if (extra === "openedx") {
    try {
      openEdx = await adoptOpenEdx(bed, dir);
      const { own, fleet } = openEdx;
      const variant = (phase: string) => own.configFile.replace(/\.yaml$/, `.${phase}.yaml`);
      status.hint = [
        `An Open edX fleet (blue: ${[...fleet.blue.web, ...fleet.blue.worker].join(", ")}) serves redwood.3 behind the classic ELB ${fleet.lbDnsName}`,
        `(its data plane: ${fleet.lbUrl}), adopted by the stack "openedx" in ${own.workDir}; the sumac.3 AMIs are registered.`,
        `  source ${envFile}`,
        `Prepare (launch green, smoke-test it, write the maintenance page):`,
        `  cp ${variant("prepared")} ${own.configFile} && npm run upgrade -- --stack openedx --cwd ${own.workDir}`,
        `Then cut over (the window):`,
        `  cp ${variant("live")} ${own.configFile} && npm run upgrade -- --stack openedx --cwd ${own.workDir}`,
      ].join("\n");
      extraEnv.UO_OWN_PROJECT_DIR = own.workDir;
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `standing up the Open edX fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  if (extra === "utilitarian") {
    try {
      utilitarian = await adoptUtilitarian(bed, dir);
      status.hint = [
        `Utilitarian 1.0.0 runs in Docker Compose (podman, runc) in ${utilitarian.app.projectDir}: API ${utilitarian.app.apiUrl}/api/version,`,
        `beat, worker and the poster consuming RabbitMQ (node ${utilitarian.app.rabbitmq.node}); PostgreSQL ${utilitarian.app.postgres.majorVersion} on port ${utilitarian.app.postgres.port}.`,
        `It is adopted by the stack "utilitarian" of the orchestrator's own project in ${utilitarian.own.workDir}.`,
        `Upgrade it to 2.0.0: set version: 2.0.0 under upgrade-orchestrator:systems.utilitarian in ${utilitarian.own.configFile}, then`,
        `  source ${envFile}`,
        `  npm run upgrade -- --stack utilitarian --cwd ${utilitarian.own.workDir}`,
      ].join("\n");
      Object.assign(extraEnv, { UO_OWN_PROJECT_DIR: utilitarian.own.workDir, DOCKER_HOST: utilitarian.app.dockerHost, UO_COMPOSE: utilitarian.app.composeBinary });
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `standing up the Utilitarian fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  fs.writeFileSync(envFile, envFileText({ ...bed.env, ...extraEnv }), { mode: 0o600 });
  status.processes = [bed.moto?.process, bed.sshd?.process]
    .filter((p) => p !== undefined)
    .map((p) => ({ name: p.name, pid: p.pid }));
  status.processes.push({ name: "fault proxy (in this daemon)", pid: process.pid });
  if (backendAi) status.processes.push({ name: "postgres", pid: backendAi.cluster.postgres.process.pid });
  status.state = "ready";
  write();
  const shutdown = async () => {
    await scenario?.stop();
    await backendAi?.own.remove();
    await backendAi?.cluster.stop();
    await codeoceanVpc?.own.remove();
    await codeoceanVpc?.fixture.stop();
    await openEdx?.own.remove();
    await openEdx?.fleet.stop();
    await utilitarian?.own.remove();
    await utilitarian?.app.stop();
    await bed.stop();
    status.state = "stopped";
    write();
    fs.rmSync(envFile, { force: true });
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  setInterval(() => undefined, 1 << 30); // keep the event loop alive
}

/** The fixture cluster at 23.09.8, and an own stack whose first `up` adopts it. */
async function adoptBackendAi(bed: Sandbox, dir: string): Promise<{ cluster: BackendAiFixture; own: OwnStack }> {
  const clusterDir = path.join(dir, "backendai");
  const projectDir = path.join(dir, "own-project");
  fs.rmSync(clusterDir, { recursive: true, force: true });
  fs.rmSync(projectDir, { recursive: true, force: true });
  const cluster = await startBackendAiCluster(bed, { version: "23.09.8", dir: clusterDir });
  try {
    const own = await ownStack(bed, "backendai", { sshKey: { value: cluster.privateKey, secret: true } }, projectDir);
    await own.setSystems({ cluster: cluster.systemConfig("23.09.8", "sshKey") });
    const adopted = await upgrade({ stack: "backendai", cwd: projectDir, yes: true, env: bed.env });
    if (adopted.exitCode !== 0) throw new Error(`the first up failed: ${adopted.error?.message}`);
    return { cluster, own };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** The Code Ocean VPC fixture at 3.7.0 (role, backup, primary stacks), and an own stack whose first `up` adopts it. */
async function adoptCodeOceanVpc(bed: Sandbox, dir: string): Promise<{ fixture: VpcFixture; own: OwnStack }> {
  const projectDir = path.join(dir, "own-project-codeocean-vpc");
  fs.rmSync(projectDir, { recursive: true, force: true });
  const fixture = await startVpcFixture(bed);
  try {
    const deployment = await fixture.deploy("co");
    const own = await ownStack(bed, "codeocean-vpc", ownStackConfig, projectDir);
    // Interactive use: a person watches, so polls are seconds, not the tests' fractions.
    await own.setSystems({ vpc: fixture.systemConfig(deployment, "3.7.0", { deadlines: { stackUpdateSeconds: 600, pollSeconds: 1 } }) });
    const adopted = await upgrade({ stack: "codeocean-vpc", cwd: projectDir, yes: true, env: bed.env });
    if (adopted.exitCode !== 0) throw new Error(`the first up failed: ${adopted.error?.message}`);
    return { fixture, own };
  } catch (err) {
    await fixture.stop();
    throw err;
  }
}

/** The fixture fleet at redwood.3 adopted by an own stack; the prepared and live configs written beside its config. */
async function adoptOpenEdx(bed: Sandbox, dir: string): Promise<{ fleet: OpenEdxFixture; own: OwnStack }> {
  const projectDir = path.join(dir, "own-project-openedx");
  fs.rmSync(projectDir, { recursive: true, force: true });
  const fleet = await startOpenEdxFleet(bed);
  try {
    const own = await ownStack(bed, "openedx", { edxSshKey: { value: fs.readFileSync(bed.sshd!.privateKeyPath, "utf8"), secret: true } }, projectDir);
    for (const phase of ["prepared", "live"] as const) {
      await own.setSystems({ mitx: fleet.systemConfig({ release: "sumac.3", phase, keyConfig: "edxSshKey" }) });
      fs.copyFileSync(own.configFile, own.configFile.replace(/\.yaml$/, `.${phase}.yaml`));
    }
    await own.setSystems({ mitx: fleet.systemConfig({ release: "redwood.3", phase: "live", keyConfig: "edxSshKey" }) });
    const adopted = await upgrade({ stack: "openedx", cwd: projectDir, yes: true, env: bed.env });
    if (adopted.exitCode !== 0) throw new Error(`the first up failed: ${adopted.error?.message}`);
    return { fleet, own };
  } catch (err) {
    await fleet.stop();
    throw err;
  }
}

/** The Utilitarian fixture at 1.0.0 with messages flowing, and an own stack whose first `up` adopts it. */
async function adoptUtilitarian(bed: Sandbox, dir: string): Promise<{ app: UtilitarianFixture; own: OwnStack }> {
  const appDir = path.join(dir, "utilitarian");
  const projectDir = path.join(dir, "own-project-utilitarian");
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.rmSync(projectDir, { recursive: true, force: true });
  const app = await startUtilitarian(bed, { version: "1.0.0", dir: appDir });
  try {
    const own = await ownStack(bed, "utilitarian", { sshKey: { value: app.privateKey, secret: true }, dbPassword: { value: app.postgres.password, secret: true } }, projectDir);
    await own.setSystems({ utilitarian: app.systemConfig("1.0.0", "sshKey", "dbPassword") });
    const adopted = await upgrade({ stack: "utilitarian", cwd: projectDir, yes: true, env: bed.env });
    if (adopted.exitCode !== 0) throw new Error(`the first up failed: ${adopted.error?.message}`);
    app.publish(10, "sandbox");
    return { app, own };
  } catch (err) {
    await app.stop();
    throw err;
  }
}

if (require.main === module) {
  const dir = process.argv[2];
  const extra = process.argv.find((a) => a.startsWith("--with="))?.slice("--with=".length);
  if (!dir || (extra !== undefined && !SANDBOX_EXTRAS.includes(extra as SandboxExtra))) {
    console.error(`usage: daemon <state dir> [--with=${SANDBOX_EXTRAS.join("|")}]`);
    process.exit(2);
  }
  void main(dir, extra as SandboxExtra | undefined);
}
