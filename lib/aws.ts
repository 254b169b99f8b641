import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { S3Client } from "@aws-sdk/client-s3";
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
}

export interface AwsClients {
  ec2: EC2Client;
  autoScaling: AutoScalingClient;
  cloudWatch: CloudWatchClient;
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
  };
  const ec2 = new EC2Client(config);
  const autoScaling = new AutoScalingClient(config);
  const cloudWatch = new CloudWatchClient(config);
  return {
    ec2,
    autoScaling,
    cloudWatch,
    destroy() {
      ec2.destroy();
      autoScaling.destroy();
      cloudWatch.destroy();
    },
  };
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
