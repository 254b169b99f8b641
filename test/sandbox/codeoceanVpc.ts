import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateStackCommand, DescribeStacksCommand, GetTemplateCommand, ListChangeSetsCommand, ListStackResourcesCommand, waitUntilStackCreateComplete } from "@aws-sdk/client-cloudformation";
import { DescribeDBInstancesCommand, ModifyDBInstanceCommand } from "@aws-sdk/client-rds";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { createAwsClients, type AwsClients } from "../../lib/aws";
import { compensateCloudFormation, type CloudFormationCompensation } from "./cloudformationCompensation";
import { SANDBOX_REGION, type Sandbox } from "./index";

/**
 * The bed's Code Ocean VPC deployment (runbook 2): reduced fixture templates per version with the
 * real parameter names and version metadata, in moto's S3 under the public bucket's layout
 * (`codeocean-vpc/templates/<version>/…`); a primary stack with the AnalyticsDBInstance, a Batch
 * queue and a worker ASG, a least-privilege role stack and a backup stack, each at 3.7.0; the
 * database auto-scaled above its parameter by a real ModifyDBInstance; the CloudFormation
 * compensations in the fault proxy; a loopback HTTP server for the maintenance hook.
 */
export const BUCKET = "codeocean-vpc";
/** The own stack's secret config key holding the hook's Authorization header (set it with `ownStackConfig`). */
export const HOOK_TOKEN_CONFIG = "vpcHookAuthorization";
export const HOOK_TOKEN = "Bearer bed-admin-token";
export const ownStackConfig = { [HOOK_TOKEN_CONFIG]: { value: HOOK_TOKEN, secret: true } };
export const VERSIONS = ["3.0.5", "3.6.0", "3.7.0", "3.8.2"] as const;
/** A 3.8.2 whose AnalyticsDBInstance got a new logical id: the change set removes the database. */
export const REPLACING_KEY = "fixtures/3.8.2-renamed-db/codeocean.template.yaml";

/** moto reads a TemplateURL with `localhost` in it from its own S3 store (bucket = first path part). */
export const localhostUrl = (key: string) => `http://localhost/${BUCKET}/${key}`;
export const templateKey = (version: string, file = "codeocean.template.yaml") => `templates/${version}/${file}`;

export function primaryTemplate(version: string, opts: { dbLogicalId?: string } = {}): string {
  const db = opts.dbLogicalId ?? "AnalyticsDBInstance";
  const newer = version >= "3.8";
  return `AWSTemplateFormatVersion: '2010-09-09'
Description: Code Ocean VPC (reduced bed fixture of codeocean.template.yaml)
Metadata:
  CodeOcean::VersionInfo:
    Version: ${version}
Parameters:
  pRdsAllocatedStorage:
    Type: Number
    Default: 20
    Description: Analytics RDS Instance Allocated Storage
  pRdsMaxAllocatedStorage:
    Type: Number
    Default: 1000
    Description: Analytics RDS Instance Max Allocated Storage
  pRdsInstanceType:
    Type: String
    Default: db.t4g.small
    Description: Analytics RDS Instance Type
${newer ? "  pWorkerAmiRelease:\n    Type: String\n    Default: '2025.10'\n    Description: Worker AMI release (new in 3.8)\n" : ""}Resources:
  ${db}:
    Type: AWS::RDS::DBInstance
    DeletionPolicy: Delete
    Properties:
      DBInstanceIdentifier: !Sub '\${AWS::StackName}-analytics'
      Engine: postgres
      DBInstanceClass: !Ref pRdsInstanceType
      AllocatedStorage: !Ref pRdsAllocatedStorage
      MaxAllocatedStorage: !Ref pRdsMaxAllocatedStorage
      MasterUsername: codeocean
      MasterUserPassword: bed-fixture-password
  DataBucket:
    Type: AWS::S3::Bucket
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: ${SANDBOX_REGION}a}
  WorkerSecurityGroup:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: workers, VpcId: !Ref Vpc}
  BatchServiceRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Service: batch.amazonaws.com}, Action: 'sts:AssumeRole'}]}
  BatchInstanceProfile:
    Type: AWS::IAM::InstanceProfile
    Properties:
      Roles: [!Ref BatchServiceRole]
  BatchComputeEnvironment:
    Type: AWS::Batch::ComputeEnvironment
    Properties:
      Type: MANAGED
      ServiceRole: !GetAtt BatchServiceRole.Arn
      ComputeResources:
        Type: EC2
        MinvCpus: 0
        MaxvCpus: 4
        DesiredvCpus: 0
        InstanceTypes: [optimal]
        Subnets: [!Ref Subnet]
        SecurityGroupIds: [!Ref WorkerSecurityGroup]
        InstanceRole: !GetAtt BatchInstanceProfile.Arn
  BatchJobQueue:
    Type: AWS::Batch::JobQueue
    Properties:
      Priority: 1
      ComputeEnvironmentOrder:
        - Order: 1
          ComputeEnvironment: !Ref BatchComputeEnvironment
  WorkerLaunchTemplate:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        ImageId: ami-12c6146b
        InstanceType: ${newer ? "t3.large" : "t3.medium"}
  WorkerAutoScalingGroup:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: '0'
      MaxSize: '4'
      DesiredCapacity: '2'
      AvailabilityZones: [${SANDBOX_REGION}a]
      LaunchTemplate:
        LaunchTemplateId: !Ref WorkerLaunchTemplate
        Version: !GetAtt WorkerLaunchTemplate.LatestVersionNumber
${newer ? "  ReleaseParameter:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: !Sub '/\${AWS::StackName}/worker-ami-release', Type: String, Value: !Ref pWorkerAmiRelease}\n" : ""}`;
}

/** The role and backup stacks' own templates: a version marker each release changes. */
export function companionTemplate(kind: "role" | "backup", version: string): string {
  return `AWSTemplateFormatVersion: '2010-09-09'
Description: Code Ocean ${kind} stack (bed fixture)
Metadata:
  CodeOcean::VersionInfo:
    Version: ${version}
Resources:
  ${kind === "role" ? "DeploymentRole" : "BackupRole"}:
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
  hook: HookServer;
  /** Role, backup and primary stacks at `version`, the database auto-scaled to `liveStorage` GiB. */
  deploy(prefix: string, opts?: { version?: string; liveStorage?: number; jobs?: number; pollsToIdle?: number | "never" }): Promise<VpcDeployment>;
  /** An own stack's `systems.<name>` entry for the deployment at `version` (polls and deadlines short for tests). */
  systemConfig(d: VpcDeployment, version: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Every stack's status, parameters, template and resources, and every change set: compared byte for byte where an update was refused. */
  snapshot(d: VpcDeployment): Promise<string>;
  status(stackName: string): Promise<{ status: string; parameters: Record<string, string>; template: string }>;
  allocatedStorage(d: VpcDeployment): Promise<number | undefined>;
  workerInstances(d: VpcDeployment): Promise<number>;
  stop(): Promise<void>;
}

export async function startVpcFixture(bed: Sandbox): Promise<VpcFixture> {
  if (!bed.moto || !bed.aws) throw new Error("the Code Ocean VPC fixture needs the bed's moto and fault proxy");
  const moto = createAwsClients({ region: SANDBOX_REGION, endpoint: bed.moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  const compensation = compensateCloudFormation(bed.aws, moto);
  const hook = await startHookServer(compensation);

  await moto.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const put = (key: string, body: string) => moto.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  for (const v of VERSIONS) {
    await put(templateKey(v), primaryTemplate(v));
    await put(templateKey(v, "codeocean-role.template.yaml"), companionTemplate("role", v));
    await put(templateKey(v, "codeocean-backup.template.yaml"), companionTemplate("backup", v));
  }
  await put(REPLACING_KEY, primaryTemplate("3.8.2", { dbLogicalId: "AnalyticsDBInstanceV2" }));

  const create = async (name: string, key: string) => {
    await moto.cloudFormation.send(new CreateStackCommand({ StackName: name, TemplateURL: localhostUrl(key), Capabilities: ["CAPABILITY_IAM"] }));
    await waitUntilStackCreateComplete({ client: moto.cloudFormation, maxWaitTime: 30, minDelay: 1 }, { StackName: name });
  };
  const resource = async (stack: string, type: string) => {
    const list = await moto.cloudFormation.send(new ListStackResourcesCommand({ StackName: stack }));
    return list.StackResourceSummaries!.find((r) => r.ResourceType === type)!.PhysicalResourceId!;
  };

  const fixture: VpcFixture = {
    moto,
    compensation,
    hook,
    async deploy(prefix, opts = {}) {
      const version = opts.version ?? "3.7.0";
      const d = { primary: `${prefix}-vpc`, role: `${prefix}-role`, backup: `${prefix}-backup` };
      await create(d.role, templateKey(version, "codeocean-role.template.yaml"));
      await create(d.backup, templateKey(version, "codeocean-backup.template.yaml"));
      await create(d.primary, templateKey(version));
      const databaseId = await resource(d.primary, "AWS::RDS::DBInstance");
      // RDS storage autoscaling, as a real change in moto: the live size is above the parameter.
      await moto.rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: databaseId, AllocatedStorage: opts.liveStorage ?? 64, ApplyImmediately: true }));
      const deployment = { ...d, databaseId, queue: await resource(d.primary, "AWS::Batch::JobQueue"), workerGroup: await resource(d.primary, "AWS::AutoScaling::AutoScalingGroup") };
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
        backupStack: { stackName: d.backup },
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
      parts.push({ storage: await fixture.allocatedStorage(d) });
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
    async workerInstances(d) {
      const groups = await moto.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [d.workerGroup] }));
      return groups.AutoScalingGroups?.[0]?.Instances?.length ?? 0;
    },
    async stop() {
      compensation.remove();
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
