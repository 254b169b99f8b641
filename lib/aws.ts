// Types only: each client's module is loaded when the client is first used (createAwsClients),
// so a command that touches one service does not load the other eleven.
import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import type { BatchClient } from "@aws-sdk/client-batch";
import type { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import type { CloudFrontClient } from "@aws-sdk/client-cloudfront";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { ElasticLoadBalancingClient } from "@aws-sdk/client-elastic-load-balancing";
import type { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { RDSClient } from "@aws-sdk/client-rds";
import type { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import type { Route53Client } from "@aws-sdk/client-route-53";
import type { S3Client } from "@aws-sdk/client-s3";
import { UpgradeError } from "./errors";

/**
 * The one place AWS clients are built, so region, endpoint, credentials and retry settings are
 * the same for every call. Credentials come from the SDK's standard chain (env, profile, IMDS).
 */
export interface AwsSettings {
  region?: string;
  /** A custom endpoint for every service (the test bed's moto, or AWS_ENDPOINT_URL). */
  endpoint?: string;
  /** Total attempts per call including the first, for the SDK's standard retry strategy. Default 3. */
  maxAttempts?: number;
  /** Static credentials; absent means the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** A named profile of the shared config/credentials files (another account's credentials). */
  profile?: string;
}

export interface AwsClients {
  ec2: EC2Client;
  autoScaling: AutoScalingClient;
  cloudWatch: CloudWatchClient;
  /** Resource Groups Tagging API: resources of any service by tag, in one call per page. */
  tagging: ResourceGroupsTaggingAPIClient;
  cloudFormation: CloudFormationClient;
  rds: RDSClient;
  batch: BatchClient;
  /** Classic load balancers. */
  elb: ElasticLoadBalancingClient;
  /** Application load balancers and their target groups. */
  elbv2: ElasticLoadBalancingV2Client;
  route53: Route53Client;
  cloudFront: CloudFrontClient;
  s3: S3Client;
  destroy(): void;
}

export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    endpoint: env.AWS_ENDPOINT_URL,
    maxAttempts: env.AWS_MAX_ATTEMPTS ? Number(env.AWS_MAX_ATTEMPTS) : undefined,
    // The same variables the SDK's env provider reads; given here so an explicit env (a test bed's,
    // a child's) is honoured, not only process.env.
    credentials:
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN }
        : undefined,
  };
}

export function createAwsClients(settings: AwsSettings = awsSettingsFromEnv()): AwsClients {
  const config = {
    region: settings.region,
    endpoint: settings.endpoint,
    maxAttempts: settings.maxAttempts ?? 3,
    credentials: settings.credentials,
    profile: settings.profile,
  };
  const made = new Map<string, { destroy(): void }>();
  // Each client is built on first use, from its own module, with the same settings.
  const lazy = <T extends { destroy(): void }>(name: string, build: () => T): T => {
    let client = made.get(name) as T | undefined;
    if (!client) made.set(name, (client = build()));
    return client;
  };
  // A custom endpoint (moto, MinIO, a VPC endpoint by IP) serves buckets by path, not by virtual host.
  const s3Config = { ...config, forcePathStyle: settings.endpoint !== undefined };
  // Route 53 and CloudFront are global services, signed for us-east-1.
  const globalConfig = { ...config, region: "us-east-1" };
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    get ec2() { return lazy("ec2", () => new (require("@aws-sdk/client-ec2") as typeof import("@aws-sdk/client-ec2")).EC2Client(config)); },
    get autoScaling() { return lazy("autoScaling", () => new (require("@aws-sdk/client-auto-scaling") as typeof import("@aws-sdk/client-auto-scaling")).AutoScalingClient(config)); },
    get cloudWatch() { return lazy("cloudWatch", () => new (require("@aws-sdk/client-cloudwatch") as typeof import("@aws-sdk/client-cloudwatch")).CloudWatchClient(config)); },
    get tagging() { return lazy("tagging", () => new (require("@aws-sdk/client-resource-groups-tagging-api") as typeof import("@aws-sdk/client-resource-groups-tagging-api")).ResourceGroupsTaggingAPIClient(config)); },
    get cloudFormation() { return lazy("cloudFormation", () => new (require("@aws-sdk/client-cloudformation") as typeof import("@aws-sdk/client-cloudformation")).CloudFormationClient(config)); },
    get rds() { return lazy("rds", () => new (require("@aws-sdk/client-rds") as typeof import("@aws-sdk/client-rds")).RDSClient(config)); },
    get batch() { return lazy("batch", () => new (require("@aws-sdk/client-batch") as typeof import("@aws-sdk/client-batch")).BatchClient(config)); },
    get elb() { return lazy("elb", () => new (require("@aws-sdk/client-elastic-load-balancing") as typeof import("@aws-sdk/client-elastic-load-balancing")).ElasticLoadBalancingClient(config)); },
    get elbv2() { return lazy("elbv2", () => new (require("@aws-sdk/client-elastic-load-balancing-v2") as typeof import("@aws-sdk/client-elastic-load-balancing-v2")).ElasticLoadBalancingV2Client(config)); },
    get route53() { return lazy("route53", () => new (require("@aws-sdk/client-route-53") as typeof import("@aws-sdk/client-route-53")).Route53Client(globalConfig)); },
    get cloudFront() { return lazy("cloudFront", () => new (require("@aws-sdk/client-cloudfront") as typeof import("@aws-sdk/client-cloudfront")).CloudFrontClient(globalConfig)); },
    get s3() { return lazy("s3", () => new (require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3")).S3Client(s3Config)); },
    destroy() {
      for (const client of made.values()) client.destroy();
      made.clear();
    },
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/**
 * Settings for another account or region: a named profile, or a role assumed with STS from the
 * base settings' credentials (temporary credentials, valid for the session's hour).
 */
export async function awsSettingsFor(
  base: AwsSettings,
  target: { region?: string; profile?: string; assumeRoleArn?: string; sessionName?: string },
): Promise<AwsSettings> {
  const settings: AwsSettings = { ...base, region: target.region ?? base.region };
  if (target.profile) return { ...settings, profile: target.profile, credentials: undefined };
  if (!target.assumeRoleArn) return settings;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { STSClient, AssumeRoleCommand } = require("@aws-sdk/client-sts") as typeof import("@aws-sdk/client-sts");
  const sts = new STSClient({ region: settings.region, endpoint: base.endpoint, maxAttempts: base.maxAttempts ?? 3, credentials: base.credentials, profile: base.profile });
  try {
    const { Credentials: c } = await awsCall(`assume the role ${target.assumeRoleArn}`, () =>
      sts.send(new AssumeRoleCommand({ RoleArn: target.assumeRoleArn, RoleSessionName: target.sessionName ?? "upgrade-orchestrator" })),
    );
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new UpgradeError({ what: `assume the role ${target.assumeRoleArn}`, why: "STS returned no credentials", permanent: true });
    return { ...settings, credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken } };
  } finally {
    sts.destroy();
  }
}

/** How to reach one S3 bucket: from an s3:// Pulumi backend URL's parameters (stacks/backend.ts). */
export interface S3Access {
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  profile?: string;
}

/**
 * The S3 client for a Pulumi backend bucket: the URL's endpoint and region win (they are what the
 * Pulumi CLI uses), then the environment's; credentials as for every other client.
 */
export function createS3Client(access: S3Access, env: NodeJS.ProcessEnv = process.env): S3Client {
  const base = awsSettingsFromEnv(env);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { S3Client } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  return new S3Client({
    region: access.region ?? base.region ?? "us-east-1",
    endpoint: access.endpoint ?? base.endpoint,
    forcePathStyle: access.forcePathStyle,
    maxAttempts: base.maxAttempts ?? 3,
    credentials: access.profile ? undefined : base.credentials,
    ...(access.profile ? { profile: access.profile } : {}),
  });
}

interface SdkError {
  name?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number; attempts?: number; requestId?: string };
  $retryable?: { throttling?: boolean };
}

const THROTTLING = new Set(["Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled"]);

/** True for AWS errors that a later attempt may not see: throttling, 5xx, network failures. */
export function isTransientAwsError(err: unknown): boolean {
  const e = err as SdkError;
  if (THROTTLING.has(e?.name ?? "")) return true;
  if (e?.$fault === "server" || (e?.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "TimeoutError"].some(
    (code) => (err as { code?: string })?.code === code || e?.name === code,
  );
}

/**
 * Runs one AWS call and turns an SDK error into an error for people: which call, what AWS said,
 * after how many attempts (the SDK has already retried transient errors within its budget).
 */
export async function awsCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const e = err as SdkError;
    const attempts = e?.$metadata?.attempts;
    const transient = isTransientAwsError(err);
    throw new UpgradeError({
      what,
      why: `${e?.name ?? "Error"}: ${e?.message ?? String(err)}${attempts ? ` (after ${attempts} attempt${attempts > 1 ? "s" : ""})` : ""}`,
      hint: transient
        ? "AWS is throttling or failing; retry later, or raise AWS_MAX_ATTEMPTS"
        : "check the credentials, region and the resource named above",
      permanent: !transient,
      cause: err,
    });
  }
}
