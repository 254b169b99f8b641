import { z } from "zod";
import { parseWith, sshFields, sshSchemas, type SettingsIssue } from "../../lib/settings";
export type { SettingsIssue } from "../../lib/settings";
import { canonicalJson } from "../../lib/dynamicProvider";
import { compareReleases } from "../../lib/versions";

/**
 * The settings of a Utilitarian deployment (runbook 4), as the UtilitarianService resource takes
 * them and as an own stack declares them under `upgrade-orchestrator:systems.<name>` (kind
 * "utilitarian"). The vendor's docs disagree on names, so every service name, the image
 * repository and the compose project are settings, with the docs' names as defaults.
 * Pure: validation only.
 */
/** A release, with or without the `v` its tags may carry: the tag is chosen as the registry has it. */
const version = z.string().regex(/^v?\d+\.\d+\.\d+$/, "a release such as 2.0.0 (or v2.0.0)");
const serviceName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "a compose service name");

const { resource: sshSchema, config: sshConfigSchema } = sshSchemas(sshFields);

const databaseFields = {
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  name: z.string().min(1),
  user: z.string().min(1),
  /**
   * The directory of the PostgreSQL client programs on the host (pg_dump, pg_restore, createdb,
   * dropdb, psql), e.g. /usr/lib/postgresql/16/bin: pg_dump must be at least the server's major
   * version. Default: as the host's PATH finds them.
   */
  tools: z.string().regex(/^\//, "an absolute directory on the host").optional(),
};
/** The password itself (a Pulumi secret); it reaches the host on stdin only. */
const databaseSchema = z.strictObject({ ...databaseFields, password: z.string().min(1) });
/** As an own stack declares it: the name of a secret config key holding the password. */
const databaseConfigSchema = z.strictObject({ ...databaseFields, passwordConfig: z.string().min(1) });

const composeSchema = z.strictObject({
  /** The project directory on the host. */
  projectDir: z.string().min(1),
  /**
   * Compose files (the `-f` list), relative to projectDir or absolute. Default: as Compose finds
   * them: COMPOSE_FILE (compose.env or the project's .env), else compose.yaml, compose.yml,
   * docker-compose.yml, docker-compose.yaml in projectDir or a parent, with its override file.
   */
  files: z.array(z.string().min(1)).min(1).optional(),
  /** Env files (`--env-file`), relative to projectDir or absolute. Default: the project's `.env`, if any. */
  envFiles: z.array(z.string().min(1)).min(1).optional(),
  /** `docker compose`, `docker-compose` or a path to the binary. */
  command: z.string().min(1).default("docker compose"),
  /** The compose project name (default: as compose derives it). */
  project: z.string().min(1).optional(),
  /** Environment of every compose command, e.g. DOCKER_HOST where the engine is elsewhere. */
  env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name"), z.string()).default({}),
});

const servicesSchema = z.strictObject({
  api: serviceName.default("utilitarian-api"),
  beat: serviceName.default("utilitarian-beat"),
  /** Share the API's image. */
  workers: z.array(serviceName).default(["utilitarian-worker"]),
  /** Stopped first, started last; their images are left alone. */
  dependents: z.array(serviceName).default(["utilitarian-poster", "dlms-processor", "dlms-udp-server"]),
});

const backupsSchema = z.strictObject({
  /** Directory on the host for the pg_dump files. */
  dir: z.string().min(1),
  /** Verified backups older than this are removed after a successful upgrade (default 30). */
  keepDays: z.number().int().min(1).default(30),
  /** Take a new backup even when a verified one of this upgrade exists (a re-run). */
  fresh: z.boolean().default(false),
});

const rabbitmqSchema = z.strictObject({
  /** rabbitmqctl on the host, with whatever it needs (e.g. `sudo rabbitmqctl -n rabbit@host`). */
  ctl: z.string().min(1).default("rabbitmqctl"),
  vhost: z.string().min(1).optional(),
  /** Queues the dependents consume: they must exist before stopping, and be drained after. */
  queues: z.array(z.string().min(1)).default([]),
});

const checksSchema = z.strictObject({
  /** HTTP GETs (from where the orchestrator runs) whose body must contain `expect` ({version}: the target version). */
  http: z.array(z.strictObject({ url: z.url(), expect: z.string().optional() })).default([]),
  /** A management command run through `compose exec` in the API after the upgrade (exit 0). */
  command: z.string().min(1).optional(),
});

const deadlinesSchema = z.strictObject({
  /** Each compose or database command (default 300 s). */
  commandSeconds: z.number().int().min(1).max(7200).default(300),
  /** `manage.py migrate` (default 2 h: data migrations can take long). */
  migrateSeconds: z.number().int().min(1).max(86_400).default(7200),
  /** Containers running, checks passing, queues drained after the start (default 300 s). */
  settleSeconds: z.number().int().min(1).max(7200).default(300),
  /** The preview's look at the host (connect and read the version it runs; default 20 s). */
  previewSeconds: z.number().int().min(1).max(600).default(20),
});

const serviceSchemaWith = <S extends z.ZodType, D extends z.ZodType>(ssh: S, database: D) =>
  z.strictObject({
    version,
    ssh,
    compose: composeSchema,
    /** The image repository of the API, beat and workers. */
    image: z
      .strictObject({
        repository: z.string().min(1).default("quay.io/pwit/utilitarian"),
        /**
         * The registry's API, to list the repository's tags (the distribution API, anonymous
         * bearer tokens): default https://<the repository's host>. `false`: do not list; the
         * tag keeps the form (with or without `v`) the deployment uses.
         */
        registry: z.union([z.url(), z.literal(false)]).optional(),
      })
      .prefault({}),
    services: servicesSchema.prefault({}),
    database,
    backups: backupsSchema,
    rabbitmq: rabbitmqSchema.optional(),
    checks: checksSchema.prefault({}),
    /** How a Django management command starts inside the API container. */
    manage: z.string().min(1).default("python manage.py"),
    /** Runs `manage.py compress` after collectstatic (django-compressor with COMPRESS_OFFLINE). */
    compress: z.boolean().default(true),
    deadlines: deadlinesSchema.prefault({}),
  });

export const serviceSchema = serviceSchemaWith(sshSchema, databaseSchema);
export const serviceConfigSchema = serviceSchemaWith(sshConfigSchema, databaseConfigSchema).extend({ kind: z.literal("utilitarian") });

export type UtilitarianSettings = z.infer<typeof serviceSchema>;
export type UtilitarianConfig = z.infer<typeof serviceConfigSchema>;

export function parseServiceSettings(input: unknown, prefix = ""): { settings: UtilitarianSettings } | { issues: SettingsIssue[] } {
  return parseWith(serviceSchema, input, prefix, (settings) => ({ settings }));
}

export function parseServiceConfig(input: unknown, prefix = ""): { config: UtilitarianConfig } | { issues: SettingsIssue[] } {
  return parseWith(serviceConfigSchema, input, prefix, (config) => ({ config }));
}


/** The API, beat and workers: the services that run the Utilitarian image. */
export const imageServices = (s: UtilitarianSettings) => [s.services.api, s.services.beat, ...s.services.workers];

/** Settings that decide what the update does, without secrets, as canonical JSON (diff compares it). */
export function fingerprintOf(s: UtilitarianSettings): string {
  const { version: _v, ssh, database, ...rest } = s;
  return canonicalJson({ ...rest, ssh: { host: ssh.host, port: ssh.port, user: ssh.user, knownHostsPath: ssh.knownHostsPath }, database: { host: database.host, port: database.port, name: database.name, user: database.user, tools: database.tools } });
}

/** "v2.0.0" → "2.0.0": the release a tag names. */
export const bareVersion = (v: string) => v.replace(/^v(?=\d)/, "");
export const isRelease = (tag: string) => /^v?\d+\.\d+\.\d+$/.test(tag);
export const sameVersion = (a: unknown, b: unknown) => typeof a === "string" && typeof b === "string" && isRelease(a) && isRelease(b) && compareVersions(a, b) === 0;

/** -1, 0, 1 for x.y.z releases (a `v` prefix is no difference). */
export const compareVersions = compareReleases;
