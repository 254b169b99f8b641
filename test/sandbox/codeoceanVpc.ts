import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { CreateStackCommand, DescribeStacksCommand, GetTemplateCommand, ListChangeSetsCommand, ListStackResourcesCommand, waitUntilStackCreateComplete } from "@aws-sdk/client-cloudformation";
import { DescribeDBInstancesCommand, ModifyDBInstanceCommand } from "@aws-sdk/client-rds";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeVolumesCommand, ModifyVolumeCommand } from "@aws-sdk/client-ec2";
import { createAwsClients, type AwsClients } from "../../lib/aws";
import { compareVersions, withV } from "../../workflows/codeocean-vpc/plan";
import { compensateChangeSets, type ChangeSetCompensation } from "./changeSetCompensation";
import { compensateCloudFormation, type CloudFormationCompensation } from "./cloudformationCompensation";
import { SANDBOX_REGION, type Sandbox } from "./index";

/**
 * The bed's Code Ocean VPC deployment (runbook 2): fixture templates in the shape of the real
 * codeocean.template.yaml (test/fixtures/codeocean-vpc, with their source), in moto's S3 under
 * Code Ocean's published layout (`templates/v<version>/codeocean.template.yaml`, the role template
 * beside it, the backup stack's in `templates/codeocean-backup/v<its version>/`); a primary stack
 * with the AnalyticsDBInstance, DataVolume, a Batch queue and a worker ASG, a least-privilege role
 * stack and a backup stack, each at v3.7.0; the database auto-scaled above its parameter (and its
 * ceiling raised, as in the console) by a real ModifyDBInstance; the CloudFormation compensations
 * in the fault proxy; a loopback HTTP server for the maintenance hook.
 */
export const BUCKET = "codeocean-vpc";
/** The own stack's secret config key holding the hook's Authorization header (set it with `ownStackConfig`). */
export const HOOK_TOKEN_CONFIG = "vpcHookAuthorization";
export const HOOK_TOKEN = "Bearer bed-admin-token";
export const ownStackConfig = { [HOOK_TOKEN_CONFIG]: { value: HOOK_TOKEN, secret: true } };
/** As Code Ocean writes them (its Metadata and bucket folders). */
export const VERSIONS = ["v3.0.5", "v3.6.0", "v3.7.0", "v3.8.2"] as const;
export const BACKUP_VERSIONS = ["v1.2.0", "v1.2.1"] as const;
const ROLE_FILE = "codeocean-least-privileged-role.template.yaml";
const BACKUP_FILE = "codeocean-backup.template.yaml";
const FIXTURES = path.join(__dirname, "..", "fixtures", "codeocean-vpc");

/** moto reads a TemplateURL with `localhost` in it from its own S3 store (bucket = first path part). */
export const localhostUrl = (key: string) => `http://localhost/${BUCKET}/${key}`;
export const templateKey = (version: string, file = "codeocean.template.yaml") => `templates/${version}/${file}`;
export const backupKey = (version: string) => `templates/codeocean-backup/${version}/${BACKUP_FILE}`;

/** The primary template of a version: the fixture files for v3.7.0 and v3.8.2, older ones as v3.7.0 with their own version. */
export function primaryTemplate(version: string): string {
  const file = (v: string) => fs.readFileSync(path.join(FIXTURES, `codeocean-${v}.template.yaml`), "utf8");
  if (version === "v3.7.0" || version === "v3.8.2") return file(version);
  return edit(file("v3.7.0"), "Version: v3.7.0", `Version: ${version}`);
}

/** A text edit that must apply: a fixture variant that silently equals its base would prove nothing. */
export function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`fixture edit: ${JSON.stringify(from)} not found`);
  return text.replace(from, to);
}

/**
 * v3.8.2 variants whose change set CloudFormation would make replace or remove data (each a
 * property AWS documents as "Update requires: Replacement", or a renamed logical id).
 */
export const VARIANTS: Record<string, { edit: (t: string) => string; logicalId: string; type: string; action: "Modify" | "Remove" }> = {
  "renamed-db": { edit: (t) => edit(t, "  AnalyticsDBInstance:\n", "  AnalyticsDBInstanceV2:\n"), logicalId: "AnalyticsDBInstance", type: "AWS::RDS::DBInstance", action: "Remove" },
  "opensearch-renamed": { edit: (t) => edit(t, "      EngineVersion: OpenSearch_1.3\n", "      EngineVersion: OpenSearch_1.3\n      DomainName: !Join ['', [!Ref AWS::StackName, '-search']]\n"), logicalId: "OpenSearchDomain", type: "AWS::OpenSearchService::Domain", action: "Modify" },
  "redis-renamed": { edit: (t) => edit(t, "      ReplicationGroupDescription: Code Ocean Redis\n", "      ReplicationGroupDescription: Code Ocean Redis\n      ReplicationGroupId: !Join ['', [!Ref AWS::StackName, '-redis']]\n"), logicalId: "RedisReplicationGroup", type: "AWS::ElastiCache::ReplicationGroup", action: "Modify" },
  "db-password-rotated": { edit: (t) => edit(t, "'/analytics/master-password-0']]", "'/analytics/master-password-1']]"), logicalId: "AnalyticsDBMasterPassword", type: "AWS::SecretsManager::Secret", action: "Modify" },
  "log-group-renamed": { edit: (t) => edit(t, "'/services']]", "'/services-v2']]"), logicalId: "LogGroupServices", type: "AWS::Logs::LogGroup", action: "Modify" },
};
export const variantKey = (name: string) => `fixtures/v3.8.2-${name}/codeocean.template.yaml`;
/** A 3.8.2 whose AnalyticsDBInstance got a new logical id: the change set removes the database. */
export const REPLACING_KEY = variantKey("renamed-db");

/** A resource of a type on no data-bearing list that its template marks Retain: an operator's addition to v3.7.0. */
export const RETAINED_EXTRA = `  LicenseKeyParameter:
    Type: AWS::SSM::Parameter
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      Name: !Join ['', ['/', !Ref AWS::StackName, '/license-key']]
      Type: String
      Value: bed-license
`;

/** The role and backup stacks' own templates: a version marker each release changes. */
export function companionTemplate(kind: "role" | "backup", version: string): string {
  return `AWSTemplateFormatVersion: '2010-09-09'
Description: Code Ocean ${kind} stack (bed fixture)
Metadata:
  CodeOcean::VersionInfo:
    Version: ${version}
Resources:
  ${kind === "role" ? "CodeOceanLeastPrivilegedDeployRole" : "BackupRole"}:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Service: cloudformation.amazonaws.com}, Action: 'sts:AssumeRole'}]}
  Release:
    Type: AWS::SSM::Parameter
    Properties: {Name: !Sub '/\${AWS::StackName}/release', Type: String, Value: '${kind} ${version}'}
`;
}

export interface VpcDeployment {
  primary: string;
  role: string;
  backup: string;
  databaseId: string;
  dataVolume: string;
  queue: string;
  workerGroup: string;
}

export interface HookServer {
  url: string;
  requests: Array<{ path: string; method: string; authorization?: string }>;
  close(): Promise<void>;
}

export interface VpcFixture {
  /** Clients straight to moto (not through the fault proxy): the bed's own view. */
  moto: AwsClients;
  compensation: CloudFormationCompensation;
  changeSets: ChangeSetCompensation;
  hook: HookServer;
  /**
   * Role, backup and primary stacks at `version` (default v3.7.0, backup v1.2.0); the database
   * auto-scaled to `liveStorage` GiB (default 64) and its ceiling raised to `liveMaxStorage` live
   * (default: as moto's CloudFormation leaves it, no ceiling); DataVolume grown to `dataVolumeSize`;
   * `retainedExtra` adds a Retain-marked SSM parameter to the primary's template.
   */
  deploy(
    prefix: string,
    opts?: { version?: string; liveStorage?: number; liveMaxStorage?: number; dataVolumeSize?: number; retainedExtra?: boolean; jobs?: number; pollsToIdle?: number | "never" },
  ): Promise<VpcDeployment>;
  /** An own stack's `systems.<name>` entry for the deployment at `version` (polls and deadlines short for tests). */
  systemConfig(d: VpcDeployment, version: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Every stack's status, parameters, template and resources, and every change set: compared byte for byte where an update was refused. */
  snapshot(d: VpcDeployment): Promise<string>;
  status(stackName: string): Promise<{ status: string; parameters: Record<string, string>; template: string }>;
  allocatedStorage(d: VpcDeployment): Promise<number | undefined>;
  dataVolumeSize(d: VpcDeployment): Promise<number | undefined>;
  workerInstances(d: VpcDeployment): Promise<number>;
  stop(): Promise<void>;
}

export async function startVpcFixture(bed: Sandbox): Promise<VpcFixture> {
  if (!bed.moto || !bed.aws) throw new Error("the Code Ocean VPC fixture needs the bed's moto and fault proxy");
  const moto = createAwsClients({ region: SANDBOX_REGION, endpoint: bed.moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  const compensation = compensateCloudFormation(bed.aws, moto);
  const changeSets = compensateChangeSets(bed.aws, moto);
  const hook = await startHookServer(compensation);

  await moto.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const put = (key: string, body: string) => moto.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  for (const v of VERSIONS) {
    await put(templateKey(v), primaryTemplate(v));
    await put(templateKey(v, ROLE_FILE), companionTemplate("role", v));
  }
  for (const v of BACKUP_VERSIONS) await put(backupKey(v), companionTemplate("backup", v));
  for (const [name, variant] of Object.entries(VARIANTS)) await put(variantKey(name), variant.edit(primaryTemplate("v3.8.2")));
  await put("fixtures/v3.7.0-retained-extra/codeocean.template.yaml", edit(primaryTemplate("v3.7.0"), "Resources:\n", `Resources:\n${RETAINED_EXTRA}`));

  const create = async (name: string, key: string) => {
    await moto.cloudFormation.send(new CreateStackCommand({ StackName: name, TemplateURL: localhostUrl(key), Capabilities: ["CAPABILITY_IAM"] }));
    await waitUntilStackCreateComplete({ client: moto.cloudFormation, maxWaitTime: 30, minDelay: 1 }, { StackName: name });
  };
  const resource = async (stack: string, type: string) => {
    const list = await moto.cloudFormation.send(new ListStackResourcesCommand({ StackName: stack }));
    return list.StackResourceSummaries!.find((r) => r.ResourceType === type)!.PhysicalResourceId!;
  };

  const maxStorage = async (d: VpcDeployment) => (await moto.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: d.databaseId }))).DBInstances?.[0]?.MaxAllocatedStorage;
  const fixture: VpcFixture = {
    moto,
    compensation,
    changeSets,
    hook,
    async deploy(prefix, opts = {}) {
      const version = withV(opts.version ?? "v3.7.0");
      const d = { primary: `${prefix}-vpc`, role: `${prefix}-role`, backup: `${prefix}-backup` };
      await create(d.role, templateKey(version, ROLE_FILE));
      await create(d.backup, backupKey("v1.2.0"));
      await create(d.primary, opts.retainedExtra ? "fixtures/v3.7.0-retained-extra/codeocean.template.yaml" : templateKey(version));
      const databaseId = await resource(d.primary, "AWS::RDS::DBInstance");
      // RDS storage autoscaling (and an operator's raised ceiling), as a real change in moto: the live size is above the parameter.
      await moto.rds.send(
        new ModifyDBInstanceCommand({ DBInstanceIdentifier: databaseId, AllocatedStorage: opts.liveStorage ?? 64, MaxAllocatedStorage: opts.liveMaxStorage, ApplyImmediately: true }),
      );
      const dataVolume = await resource(d.primary, "AWS::EC2::Volume");
      // The data volume grown by hand (ModifyVolume), above the template's 500 GiB.
      if (opts.dataVolumeSize !== undefined) await moto.ec2.send(new ModifyVolumeCommand({ VolumeId: dataVolume, Size: opts.dataVolumeSize }));
      const deployment = { ...d, databaseId, dataVolume, queue: await resource(d.primary, "AWS::Batch::JobQueue"), workerGroup: await resource(d.primary, "AWS::AutoScaling::AutoScalingGroup") };
      compensation.playMaintenance({ jobs: { [deployment.queue]: opts.jobs ?? 3 }, workerGroups: [deployment.workerGroup], pollsToIdle: opts.pollsToIdle ?? 2 });
      return deployment;
    },
    systemConfig(d, version, extra = {}) {
      return {
        kind: "codeocean-vpc",
        stackName: d.primary,
        region: SANDBOX_REGION,
        version,
        roleStack: { stackName: d.role },
        // The backup stack's own line: the minimum the primary's release notes name (the bed's: v1.2.1 from v3.8).
        backupStack: { stackName: d.backup, version: compareVersions(version, "3.8.0") >= 0 ? "v1.2.1" : "v1.2.0" },
        maintenance: { enable: { http: { url: `${hook.url}/maintenance/enable`, headerSecrets: { authorization: HOOK_TOKEN_CONFIG } } }, disable: { http: { url: `${hook.url}/maintenance/disable` } }, timeoutSeconds: 20, pollSeconds: 0.2 },
        deadlines: { stackUpdateSeconds: 60, pollSeconds: 0.2 },
        ...extra,
      };
    },
    async snapshot(d) {
      const parts: unknown[] = [];
      for (const name of [d.role, d.backup, d.primary]) {
        const stack = (await moto.cloudFormation.send(new DescribeStacksCommand({ StackName: name }))).Stacks![0]!;
        const template = (await moto.cloudFormation.send(new GetTemplateCommand({ StackName: name }))).TemplateBody;
        const resources = (await moto.cloudFormation.send(new ListStackResourcesCommand({ StackName: name }))).StackResourceSummaries!.map((r) => [r.LogicalResourceId, r.PhysicalResourceId, r.ResourceStatus]);
        const changeSets = (await moto.cloudFormation.send(new ListChangeSetsCommand({ StackName: name }))).Summaries?.map((c) => [c.ChangeSetName, c.Status, c.ExecutionStatus]) ?? [];
        parts.push({ name, status: stack.StackStatus, lastUpdated: stack.LastUpdatedTime, parameters: stack.Parameters, template, resources, changeSets });
      }
      parts.push({ storage: await fixture.allocatedStorage(d), ceiling: await maxStorage(d), dataVolume: await fixture.dataVolumeSize(d) });
      return JSON.stringify(parts);
    },
    async status(stackName) {
      const stack = (await moto.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks![0]!;
      const template = (await moto.cloudFormation.send(new GetTemplateCommand({ StackName: stackName }))).TemplateBody ?? "";
      return { status: stack.StackStatus!, parameters: Object.fromEntries((stack.Parameters ?? []).map((p) => [p.ParameterKey!, p.ParameterValue!])), template };
    },
    async allocatedStorage(d) {
      return (await moto.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: d.databaseId }))).DBInstances?.[0]?.AllocatedStorage;
    },
    async dataVolumeSize(d) {
      return (await moto.ec2.send(new DescribeVolumesCommand({ VolumeIds: [d.dataVolume] }))).Volumes?.[0]?.Size;
    },
    async workerInstances(d) {
      const groups = await moto.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [d.workerGroup] }));
      return groups.AutoScalingGroups?.[0]?.Instances?.length ?? 0;
    },
    async stop() {
      compensation.remove();
      changeSets.remove();
      await hook.close();
      moto.destroy();
    },
  };
  return fixture;
}

/** The operator's maintenance hook as a real HTTP service on loopback: enable switches maintenance mode on in the bed. */
async function startHookServer(compensation: CloudFormationCompensation): Promise<HookServer> {
  const requests: HookServer["requests"] = [];
  const server = http.createServer((req, res) => {
    requests.push({ path: req.url ?? "/", method: req.method ?? "GET", authorization: req.headers.authorization });
    req.resume();
    if (req.url === "/maintenance/enable") compensation.switchMaintenanceOn();
    if (req.url === "/maintenance/enable" || req.url === "/maintenance/disable") res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
