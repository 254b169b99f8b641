import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { providerLoadedFrom, type SshArgs } from "../../lib/dynamicProvider";

/**
 * A Utilitarian deployment's version as a Pulumi resource (runbook 4 of RUNBOOKS.md): Docker
 * Compose, Django, PostgreSQL, RabbitMQ. Changing `version` shows `imageChanges` in the preview
 * (a downgrade fails there) and `up` runs the runbook over SSH: pull, verified pg_dump, stop,
 * change the version where it lives (image text or .env), start the API, migrate, collectstatic, compress, start the rest,
 * verify. See workflows/utilitarian/settings.ts for every setting and its default.
 */
export interface UtilitarianServiceArgs {
  /** The release every Utilitarian service should run, e.g. "2.0.0". */
  version: pulumi.Input<string>;
  ssh: pulumi.Input<SshArgs>;
  /** files: the -f list (default: as Compose finds them); envFiles: the --env-file list (default: the project's .env). */
  compose: pulumi.Input<{ projectDir: string; files?: string[]; envFiles?: string[]; command?: string; project?: string; env?: Record<string, string> }>;
  /** registry: the registry API to list tags from (default https://<the repository's host>; false: do not list). */
  image?: pulumi.Input<{ repository?: string; registry?: string | false }>;
  services?: pulumi.Input<{ api?: string; beat?: string; workers?: string[]; dependents?: string[] }>;
  database: pulumi.Input<{
    host: pulumi.Input<string>;
    port?: pulumi.Input<number>;
    name: pulumi.Input<string>;
    user: pulumi.Input<string>;
    /** Directory of pg_dump, pg_restore, createdb, dropdb, psql on the host (default: PATH). */
    tools?: pulumi.Input<string>;
    /** Always stored as a Pulumi secret; reaches the host on stdin only. */
    password: pulumi.Input<string>;
  }>;
  backups: pulumi.Input<{ dir: string; keepDays?: number; fresh?: boolean }>;
  rabbitmq?: pulumi.Input<{ ctl?: string; vhost?: string; queues?: string[] }>;
  checks?: pulumi.Input<{ http?: Array<{ url: string; expect?: string }>; command?: string }>;
  manage?: pulumi.Input<string>;
  compress?: pulumi.Input<boolean>;
  deadlines?: pulumi.Input<{ commandSeconds?: number; migrateSeconds?: number; settleSeconds?: number; previewSeconds?: number }>;
}

const provider = providerLoadedFrom(path.join(__dirname, "provider"));

export class UtilitarianService extends pulumi.dynamic.Resource {
  /** The version the whole deployment last completed (after a failed run: the old one). */
  declare public readonly version: pulumi.Output<string>;
  /** The verified backup the last upgrade took: its path on the host and sha256. */
  declare public readonly backup: pulumi.Output<{ path: string; sha256: string } | null>;
  /** The compose services whose image the last planned change rewrites. */
  declare public readonly imageChanges: pulumi.Output<string[]>;

  constructor(name: string, args: UtilitarianServiceArgs, opts?: pulumi.CustomResourceOptions) {
    const ssh = pulumi.output(args.ssh).apply((s) => ({ ...s, privateKey: pulumi.secret(s.privateKey) }));
    const database = pulumi.output(args.database).apply((db) => ({ ...db, password: pulumi.secret(db.password) }));
    super(provider, name, { ...args, ssh, database, backup: undefined, imageChanges: undefined, fingerprint: undefined }, opts, "utilitarian", "UtilitarianService");
  }
}
