import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type OutputMap, type Stack } from "@pulumi/pulumi/automation";
import { DescribeImagesCommand, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";
import type { UpgradeOptions } from "../../stacks/upgrade";
import { startServicesSimulator, type ServicesSimulator } from "./codeoceanServices";
import { HEALTH_CHECKS, startHealthEndpoints, targetHealthCompensation, type HealthEndpoints } from "./codeoceanHealth";
import { ssmLikeSshConfig } from "./sshProxy";
import { copyFixture } from "./fixtures";
import type { Sandbox } from "./index";

/**
 * The fixture Code Ocean deployment as an operator has it: a git clone with release tags
 * 1.0.0 and 2.0.0 (2.0.0 changes the worker launch template, so `up` replaces the general
 * worker ASG), checked out at 1.0.0 and deployed to a stack on the bed's backend.
 */
export interface CodeOceanDeployment {
  workDir: string;
  stackName: string;
  stack: Stack;
  outputs: OutputMap;
}

export interface DeployOptions {
  stackName?: string;
  workers?: number;
  /** 0: no GPU fleet (workersGpuAsgId is null). */
  gpuWorkers?: number;
  asgDrainTimeoutSeconds?: number;
  dir?: string;
  /** The database password the deployment's services get, as a Pulumi secret (default: a fixed test value). */
  dbPassword?: string;
  /** Target group service → port (config `targetPorts`; default: the real ports of lb.ts). */
  targetPorts?: Record<string, number>;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=fixture", "-c", "user.email=fixture@localhost", "-c", "advice.detachedHead=false", ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });

export function codeOceanCheckout(dir?: string): string {
  const workDir = copyFixture("codeocean-deployment", dir);
  fs.writeFileSync(path.join(workDir, ".gitignore"), "node_modules\nPulumi.*.yaml\n");
  git(workDir, "init", "-q", "-b", "main");
  git(workDir, "add", "-A");
  git(workDir, "commit", "-q", "-m", "release 1.0.0");
  git(workDir, "tag", "1.0.0");
  fs.writeFileSync(path.join(workDir, "release.json"), JSON.stringify({ version: "2.0.0" }) + "\n");
  git(workDir, "commit", "-q", "-am", "release 2.0.0: new worker launch template");
  git(workDir, "tag", "2.0.0");
  git(workDir, "checkout", "-q", "1.0.0");
  return workDir;
}

export async function deployCodeOcean(bed: Sandbox, options: DeployOptions = {}): Promise<CodeOceanDeployment> {
  const stackName = options.stackName ?? "prod";
  const workDir = codeOceanCheckout(options.dir);
  const pulumiCommand = await PulumiCommand.get({ root: bed.pulumi!.install.root });
  const stack = await LocalWorkspace.createStack({ stackName, workDir }, { pulumiCommand, envVars: bed.env });
  await stack.setAllConfig({
    workers: { value: String(options.workers ?? 3) },
    gpuWorkers: { value: String(options.gpuWorkers ?? 2) },
    asgDrainTimeoutSeconds: { value: String(options.asgDrainTimeoutSeconds ?? 10) },
    dbPassword: { value: options.dbPassword ?? "fixture-db-password", secret: true },
    ...(options.targetPorts ? { targetPorts: { value: JSON.stringify(options.targetPorts) } } : {}),
  });
  const result = await stack.up();
  return { workDir, stackName, stack, outputs: result.outputs };
}

/** The whole Code Ocean scenario: deployment at 1.0.0 with computations running on its workers. */
export interface CodeOceanScenario {
  deployment: CodeOceanDeployment;
  services: ServicesSimulator;
  /** The services machine's health endpoints (its target groups' health checks); a release can be made bad there. */
  health: HealthEndpoints;
  /** The `upgrade` arguments that point the driver at this bed (SSH, services port, fast polling). */
  upgradeArgs: string[];
  /**
   * The `upgrade()` options that point the driver at this bed (the bed's sshd by flags, the services
   * port, 1 s polls, a 60 s drain, the bed's verification deadlines), deploying release 2.0.0 with
   * --yes: the deployment is at 1.0.0, so without a release there is nothing to update. `extra` wins
   * (its `codeOcean` over the bed's).
   */
  upgradeOptions(extra?: Partial<UpgradeOptions>): UpgradeOptions;
  /** The bed's verification deadlines for `upgrade()` (seconds here, minutes in real use), as upgradeArgs gives them to the CLI. */
  verification: { bakeTimeMs: number; verifyTimeoutMs: number };
  /** The deployment tag of the services instance and the alarms. */
  deploymentName: string;
  /**
   * Launches a dedicated worker as the services machine does (outside any ASG, tags role,
   * deployment, codeocean.com/user, codeocean.com/capsule), straight to moto; returns its id.
   */
  launchDedicatedWorker(user: string, capsule: string): Promise<string>;
  terminateInstance(id: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ScenarioOptions extends DeployOptions {
  drainMs?: number;
  /** CloudWatch period the driver reads (the simulator publishes every 2 s). */
  metricPeriodSeconds?: number;
  /** false: the simulator publishes no SlotsUtilization. */
  publishMetrics?: boolean;
  /**
   * How the driver reaches the services machine: "flags" (--ssh-host 127.0.0.1 and friends) or
   * "ssm-proxy": only through the ProxyCommand of an SSH config file (Session Manager's setup,
   * see sshProxy.ts), with no --ssh-* flag, so the default target (the instance id) is used.
   */
  sshVia?: "flags" | "ssm-proxy";
  /** --bake-time of upgradeArgs, in seconds (default 3). */
  bakeSeconds?: number;
}

export async function startCodeOceanScenario(bed: Sandbox, options: ScenarioOptions = {}): Promise<CodeOceanScenario> {
  // straight to moto, like the simulator below
  const health = await startHealthEndpoints({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url });
  const deployment = await deployCodeOcean(bed, { ...options, targetPorts: health.ports });
  const deploymentTag = deployment.outputs.deploymentName!.value as string;
  health.setInstance(deployment.outputs.ec2ServicesInstanceId!.value as string);
  // the target groups' names as the fixture makes them, and the endpoint each checks
  const groups = new Map(HEALTH_CHECKS.map(({ service, path }) => [`${deploymentTag}-${service}`.slice(0, 32), { port: health.ports[service]!, path }]));
  const uncompensate = bed.aws?.intercept(targetHealthCompensation(() => groups));
  const asgs = [deployment.outputs.workersAsgId?.value, deployment.outputs.workersGpuAsgId?.value].filter(
    (v): v is string => typeof v === "string",
  );
  const services = await startServicesSimulator({
    computations: Object.fromEntries(asgs.map((asg, i) => [asg, 5 - i])),
    drainMs: options.drainMs ?? 6000,
    publishMs: 2000,
    publishMetrics: options.publishMetrics,
    // the general ASG an update makes (named after its launch template version)
    laterAsgs: new RegExp(`^workers-${deployment.stackName}-\\d+-asg$`),
    // straight to moto: the fault proxy is for the driver's calls, and its call log stays the driver's
    env: { ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url },
  });
  const sshd = bed.sshd!;
  const servicesId = deployment.outputs.ec2ServicesInstanceId!.value as string;
  const sshArgs =
    options.sshVia === "ssm-proxy"
      ? ["--ssh-config", ssmLikeSshConfig(sshd, path.join(bed.dir, `${deployment.stackName}-ssh`), [servicesId]).configPath]
      : ["--ssh-config", "none", "--ssh-host", sshd.host, "--ssh-port", String(sshd.port), "--ssh-user", sshd.user, "--ssh-key", sshd.privateKeyPath, "--known-hosts", sshd.knownHostsPath];
  const aws = () => createAwsClients(awsSettingsFromEnv({ ...bed.env, AWS_ENDPOINT_URL: bed.moto!.url }));
  const verification = { bakeTimeMs: (options.bakeSeconds ?? 3) * 1000, verifyTimeoutMs: 30_000 };
  const upgradeArgs = [
    "--stack", deployment.stackName,
    "--cwd", deployment.workDir,
    ...sshArgs,
    "--services-port", String(services.port),
    "--poll-interval", "2s",
    "--metric-period", `${options.metricPeriodSeconds ?? 10}s`,
    "--drain-timeout", "2m",
    // verification after `up`: seconds in the bed (minutes in real use)
    "--bake-time", `${verification.bakeTimeMs / 1000}s`,
    "--verify-timeout", `${verification.verifyTimeoutMs / 1000}s`,
  ];
  return {
    deployment,
    services,
    health,
    upgradeArgs,
    verification,
    upgradeOptions: (extra = {}) => ({
      stack: deployment.stackName,
      cwd: deployment.workDir,
      yes: true,
      env: bed.env,
      release: "2.0.0",
      ...extra,
      codeOcean: {
        ssh: { host: sshd.host, port: sshd.port, user: sshd.user, keyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath },
        servicesPort: services.port,
        pollIntervalMs: 1000,
        metricPeriodSeconds: options.metricPeriodSeconds ?? 10,
        drainTimeoutMs: 60_000,
        ...verification,
        ...extra.codeOcean,
      },
    }),
    deploymentName: deployment.outputs.deploymentName!.value as string,
    launchDedicatedWorker: async (user, capsule) => {
      const clients = aws();
      try {
        const images = await clients.ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }));
        const name = deployment.outputs.deploymentName!.value as string;
        const out = await clients.ec2.send(
          new RunInstancesCommand({
            ImageId: images.Images![0]!.ImageId!, InstanceType: "r5d.4xlarge", MinCount: 1, MaxCount: 1,
            TagSpecifications: [{ ResourceType: "instance", Tags: [
              { Key: "Name", Value: `${name}-dedicated-${capsule}` }, { Key: "role", Value: "dedicated-worker" }, { Key: "deployment", Value: name },
              { Key: "codeocean.com/user", Value: user }, { Key: "codeocean.com/capsule", Value: capsule },
            ] }],
          }),
        );
        return out.Instances![0]!.InstanceId!;
      } finally {
        clients.destroy();
      }
    },
    terminateInstance: async (id) => {
      const clients = aws();
      try {
        await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      } finally {
        clients.destroy();
      }
    },
    stop: async () => {
      uncompensate?.();
      await health.stop();
      await services.stop();
      fs.rmSync(deployment.workDir, { recursive: true, force: true });
    },
  };
}
