import { z } from "zod";
import { parseWith, type SettingsIssue } from "../../lib/settings";
export type { SettingsIssue } from "../../lib/settings";

/**
 * The settings of a Code Ocean VPC deployment (runbook 2), as the CodeOceanVpc resource takes them
 * and as an own stack declares them under `upgrade-orchestrator:systems.<name>` (kind
 * "codeocean-vpc"). Pure: validation only; every problem names its key.
 */
/** As Code Ocean writes it (`v3.8.2`, its Metadata and bucket folders) or without the `v`. */
const version = z.string().regex(/^v?\d+\.\d+\.\d+$/, "a Code Ocean version such as v3.8.2 (or 3.8.2)");
const stackName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, "a CloudFormation stack name (letters, digits, hyphens; starts with a letter)");
const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region such as us-east-1");
const url = z.string().regex(/^https?:\/\/\S+$/, "an http(s) URL");

/** Credentials for a stack in another account: a named profile, or a role to assume. */
const access = {
  profile: z.string().min(1).optional(),
  assumeRoleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/, "an IAM role ARN").optional(),
};

/**
 * The least-privilege role stack or the backup stack: each has its own template. The role's is
 * published beside each release (`version` defaults to the primary's target); the backup stack's
 * has versions of its own (v1.2.x), named in the release notes, so it needs `version` or `templateUrl`.
 */
const companionFields = z.strictObject({
  stackName,
  region: region.optional(),
  /** Its template; else `version` in the public bucket's layout. */
  templateUrl: url.optional(),
  version: version.optional(),
  ...access,
});
const notBoth = [(s: z.infer<typeof companionFields>) => !(s.templateUrl !== undefined && s.version !== undefined), { message: "give templateUrl or version, not both" }] as const;
const oneAccess = [(s: z.infer<typeof companionFields>) => !(s.profile && s.assumeRoleArn), { message: "give a profile or a role to assume, not both" }] as const;
const companionStackSchema = companionFields.refine(...notBoth).refine(...oneAccess);
const backupStackSchema = companionFields
  .refine(...notBoth)
  .refine(...oneAccess)
  .refine((s) => s.templateUrl !== undefined || s.version !== undefined, {
    message: "give the backup stack's own template version (e.g. v1.2.1, the minimum the release notes name) or its templateUrl: its versions are not the primary's",
  });

/** An operator's own way to switch maintenance mode: an HTTP request or a command. */
const hookSchema = z.union([
  z.strictObject({
    http: z.strictObject({
      url,
      method: z.enum(["GET", "POST", "PUT"]).optional(),
      /** e.g. an admin token; the whole maintenance setting is a Pulumi secret. */
      headers: z.record(z.string(), z.string()).optional(),
      /** In an own stack's config: header name → the name of a secret config key holding its value (never the value in clear). */
      headerSecrets: z.record(z.string(), z.string().min(1)).optional(),
      body: z.string().optional(),
    }),
  }),
  z.strictObject({ command: z.array(z.string().min(1)).min(1) }),
]);

const maintenanceSchema = z.strictObject({
  /** Run instead of asking the operator to click Enable in the admin panel. */
  enable: hookSchema.optional(),
  /** Run after the update (the deployment also turns maintenance off by itself). */
  disable: hookSchema.optional(),
  /** How long maintenance mode may take to show its effects (default 1800 s). */
  timeoutSeconds: z.number().int().min(1).max(86_400).optional(),
  pollSeconds: z.number().min(0.05).max(600).optional(),
});

const deadlinesSchema = z.strictObject({
  /** Each stack update, from execution to UPDATE_COMPLETE (default 7200 s). */
  stackUpdateSeconds: z.number().int().min(1).max(86_400).optional(),
  /** Between DescribeStacks/DescribeStackEvents polls (default 15 s). */
  pollSeconds: z.number().min(0.05).max(600).optional(),
});

export const vpcSchema = z.strictObject({
  stackName,
  region: region.optional(),
  /** The target Code Ocean version, "v3.8.2" or "3.8.2". */
  version,
  /** Default: https://codeocean-vpc.s3.amazonaws.com/templates/v<version>/codeocean.template.yaml */
  templateUrl: url.optional(),
  roleStack: companionStackSchema.optional(),
  backupStack: backupStackSchema.optional(),
  maintenance: maintenanceSchema.optional(),
  /** Parameter values to set; every other parameter keeps its previous value (new ones: defaults). */
  parameters: z.record(z.string().regex(/^[A-Za-z0-9]+$/, "a template parameter name"), z.string()).optional(),
  /** The service role CloudFormation uses for the update. */
  roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/, "an IAM role ARN").optional(),
  deadlines: deadlinesSchema.optional(),
  ...access,
});

export const vpcConfigSchema = vpcSchema.extend({ kind: z.literal("codeocean-vpc") });

export type VpcSettings = z.infer<typeof vpcSchema>;
export type VpcConfig = z.infer<typeof vpcConfigSchema>;
export type CompanionStack = z.infer<typeof companionStackSchema>;
export type Hook = z.infer<typeof hookSchema>;

export function parseVpcSettings(input: unknown, prefix = ""): { settings: VpcSettings } | { issues: SettingsIssue[] } {
  return parseWith(vpcSchema, input, prefix, (settings) => ({ settings }));
}

export function parseVpcConfig(input: unknown, prefix = ""): { config: VpcConfig } | { issues: SettingsIssue[] } {
  return parseWith(vpcConfigSchema, input, prefix, (config) => ({ config }));
}

