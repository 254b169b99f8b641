import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { providerLoadedFrom } from "../../lib/dynamicProvider";

/**
 * A Code Ocean VPC deployment (a CloudFormation stack) at a version, as a Pulumi resource
 * (runbook 2 of RUNBOOKS.md). Changing `version` previews `version: A → B` and the stacks the
 * update touches in order (`plannedStacks`); `up` first reviews (the database's live allocated
 * storage, the primary's and the role/backup stacks' change sets, refusing one that replaces data),
 * then waits for maintenance mode, and only then updates the role, backup and primary stacks,
 * following the primary stack's events to UPDATE_COMPLETE.
 */
export interface CodeOceanCompanionStackArgs {
  stackName: pulumi.Input<string>;
  region?: pulumi.Input<string>;
  /** Its template; or `version` in the public URL pattern. */
  templateUrl?: pulumi.Input<string>;
  version?: pulumi.Input<string>;
  /** Another account: a named profile or a role to assume. */
  profile?: pulumi.Input<string>;
  assumeRoleArn?: pulumi.Input<string>;
}

export type MaintenanceHookArgs =
  | { http: pulumi.Input<{ url: string; method?: "GET" | "POST" | "PUT"; headers?: Record<string, string>; body?: string }> }
  | { command: string[] };

export interface CodeOceanVpcArgs {
  stackName: pulumi.Input<string>;
  region?: pulumi.Input<string>;
  /** The target version, "v3.8.2" or "3.8.2" (shown as the template writes it). */
  version: pulumi.Input<string>;
  /** Default https://codeocean-vpc.s3.amazonaws.com/templates/v<version>/codeocean.template.yaml */
  templateUrl?: pulumi.Input<string>;
  roleStack?: pulumi.Input<CodeOceanCompanionStackArgs>;
  backupStack?: pulumi.Input<CodeOceanCompanionStackArgs>;
  /** Default: `up` asks the operator to enable maintenance mode in the admin panel and waits for its effects. Kept as a Pulumi secret (hooks may carry tokens). */
  maintenance?: pulumi.Input<{ enable?: pulumi.Input<MaintenanceHookArgs>; disable?: pulumi.Input<MaintenanceHookArgs>; timeoutSeconds?: number; pollSeconds?: number }>;
  parameters?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** The service role CloudFormation uses. */
  roleArn?: pulumi.Input<string>;
  deadlines?: pulumi.Input<{ stackUpdateSeconds?: number; pollSeconds?: number }>;
  profile?: pulumi.Input<string>;
  assumeRoleArn?: pulumi.Input<string>;
}

const provider = providerLoadedFrom(path.join(__dirname, "provider"));

export class CodeOceanVpc extends pulumi.dynamic.Resource {
  /** The primary stack's template version after the last run. */
  declare public readonly version: pulumi.Output<string>;
  /** The stacks an update touches, in order, e.g. ["role co-role", "backup co-backup", "primary co"]. */
  declare public readonly plannedStacks: pulumi.Output<string[]>;
  declare public readonly stackId: pulumi.Output<string>;

  constructor(name: string, args: CodeOceanVpcArgs, opts?: pulumi.CustomResourceOptions) {
    const maintenance = args.maintenance === undefined ? undefined : pulumi.secret(args.maintenance);
    super(provider, name, { ...args, maintenance, plannedStacks: undefined, stackId: undefined, fingerprint: undefined }, opts, "codeocean-vpc", "CodeOceanVpc");
  }
}
