import * as fs from "node:fs";
import * as path from "node:path";
import { findPulumi, type PulumiInstall } from "../../lib/toolchain";

/** The real Pulumi engine with a file backend of its own: nothing outside `dir` is touched. */
export interface PulumiBed {
  readonly install: PulumiInstall;
  readonly backendUrl: string;
  /** The test passphrase of the passphrase secrets provider. */
  readonly passphrase: string;
  /** What a Pulumi command of this bed needs in its environment. */
  readonly env: Record<string, string>;
}

export const SANDBOX_PASSPHRASE = "sandbox-passphrase-not-a-secret";

export function pulumiBed(dir: string): PulumiBed {
  const install = findPulumi();
  const state = path.join(dir, "state");
  const home = path.join(dir, "home");
  fs.mkdirSync(state, { recursive: true });
  fs.mkdirSync(home, { recursive: true });
  const backendUrl = `file://${state}`;
  return {
    install,
    backendUrl,
    passphrase: SANDBOX_PASSPHRASE,
    env: {
      PULUMI_BACKEND_URL: backendUrl,
      PULUMI_CONFIG_PASSPHRASE: SANDBOX_PASSPHRASE,
      PULUMI_HOME: home,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      PATH: `${install.binDir}${path.delimiter}${process.env.PATH ?? ""}`,
    },
  };
}

export const S3_BACKEND_BUCKET = "uo-pulumi-state";

/**
 * The S3 backend runbook 1's operators use, in moto: a bucket, and the URL the real CLI logs in
 * with. The parameters are those gocloud.dev's s3blob (Pulumi 3.248's driver, AWS SDK v2) reads:
 * `endpoint` with its scheme, `region`, `use_path_style=true` (moto serves buckets by path).
 */
export async function useS3Backend(bed: PulumiBed, endpoint: string, region: string, bucket = S3_BACKEND_BUCKET): Promise<PulumiBed> {
  const { CreateBucketCommand, S3Client } = await import("@aws-sdk/client-s3");
  const s3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
  const backendUrl = s3BackendUrl(bucket, endpoint, region);
  return { ...bed, backendUrl, env: { ...bed.env, PULUMI_BACKEND_URL: backendUrl } };
}

export const s3BackendUrl = (bucket: string, endpoint: string, region: string) =>
  `s3://${bucket}?${new URLSearchParams({ endpoint, region, use_path_style: "true" })}`;
