import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { BatchClient } from "@aws-sdk/client-batch";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { RDSClient } from "@aws-sdk/client-rds";
import { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import { S3Client } from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
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
  const ec2 = new EC2Client(config);
  const autoScaling = new AutoScalingClient(config);
  const cloudWatch = new CloudWatchClient(config);
  const tagging = new ResourceGroupsTaggingAPIClient(config);
  const cloudFormation = new CloudFormationClient(config);
  const rds = new RDSClient(config);
  const batch = new BatchClient(config);
  // Path-style addressing: the only kind a custom endpoint (moto, a VPC endpoint by IP) answers.
  const s3 = new S3Client({ ...config, forcePathStyle: settings.endpoint !== undefined });
  return {
    ec2,
    autoScaling,
    cloudWatch,
    tagging,
    cloudFormation,
    rds,
    batch,
    s3,
    destroy() {
      for (const client of [ec2, autoScaling, cloudWatch, tagging, cloudFormation, rds, batch, s3]) client.destroy();
    },
  };
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
