import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { CloudFrontClient } from "@aws-sdk/client-cloudfront";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingClient } from "@aws-sdk/client-elastic-load-balancing";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { Route53Client } from "@aws-sdk/client-route-53";
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
  };
  const ec2 = new EC2Client(config);
  const autoScaling = new AutoScalingClient(config);
  const cloudWatch = new CloudWatchClient(config);
  const elb = new ElasticLoadBalancingClient(config);
  const elbv2 = new ElasticLoadBalancingV2Client(config);
  // Route 53 and CloudFront are global services, signed for us-east-1.
  const route53 = new Route53Client({ ...config, region: "us-east-1" });
  const cloudFront = new CloudFrontClient({ ...config, region: "us-east-1" });
  // A custom endpoint (moto, MinIO) serves buckets by path, not by virtual host.
  const s3 = new S3Client({ ...config, forcePathStyle: settings.endpoint !== undefined });
  const all = [ec2, autoScaling, cloudWatch, elb, elbv2, route53, cloudFront, s3];
  return {
    ec2,
    autoScaling,
    cloudWatch,
    elb,
    elbv2,
    route53,
    cloudFront,
    s3,
    destroy() {
      for (const client of all) client.destroy();
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
