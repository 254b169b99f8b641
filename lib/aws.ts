import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { EC2Client } from "@aws-sdk/client-ec2";
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

/**
 * Each client is built (and its SDK package loaded, ~100 ms of CPU each) when it is first used:
 * a run that never reaches a step calling EC2 does not pay for the EC2 client.
 */
export function createAwsClients(settings: AwsSettings = awsSettingsFromEnv()): AwsClients {
  const config = {
    region: settings.region,
    endpoint: settings.endpoint,
    maxAttempts: settings.maxAttempts ?? 3,
    credentials: settings.credentials,
  };
  let ec2: EC2Client | undefined;
  let autoScaling: AutoScalingClient | undefined;
  let cloudWatch: CloudWatchClient | undefined;
  return {
    get ec2() {
      return (ec2 ??= new (require("@aws-sdk/client-ec2") as typeof import("@aws-sdk/client-ec2")).EC2Client(config));
    },
    get autoScaling() {
      return (autoScaling ??= new (require("@aws-sdk/client-auto-scaling") as typeof import("@aws-sdk/client-auto-scaling")).AutoScalingClient(config));
    },
    get cloudWatch() {
      return (cloudWatch ??= new (require("@aws-sdk/client-cloudwatch") as typeof import("@aws-sdk/client-cloudwatch")).CloudWatchClient(config));
    },
    destroy() {
      ec2?.destroy();
      autoScaling?.destroy();
      cloudWatch?.destroy();
    },
  };
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
