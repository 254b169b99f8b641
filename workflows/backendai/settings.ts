import { canonicalJson } from "../../lib/dynamicProvider";
import { z } from "zod";
import type { Catalog } from "./versions";

/**
 * The settings of a Backend.AI cluster, as the BackendAiCluster resource takes them and as an own
 * stack declares them under `upgrade-orchestrator:systems.<name>`. Pure: validation only.
 */
const component = z
  .string()
  .regex(/^[a-z][a-z-]*$/, "a component name such as manager, agent, storage-proxy, webserver");

const sshFields = {
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1),
  /** known_hosts holding the host's key, on the machine running Pulumi (default ~/.ssh/known_hosts). */
  knownHostsPath: z.string().min(1).optional(),
};

/** As the resource takes it: the private key itself (a Pulumi secret). */
const sshSchema = z.strictObject({ ...sshFields, privateKey: z.string().min(1) });

/**
 * As an own stack's config declares it: where the key comes from, never the key in clear.
 * `privateKeyConfig` names a secret config key of the stack; `privateKeyPath` a key file.
 */
const sshConfigSchema = z
  .strictObject({ ...sshFields, privateKeyPath: z.string().min(1).optional(), privateKeyConfig: z.string().min(1).optional() })
  .refine((ssh) => (ssh.privateKeyPath === undefined) !== (ssh.privateKeyConfig === undefined), {
    message: "give exactly one of privateKeyPath (a key file) or privateKeyConfig (the name of a secret config key)",
  });

const serviceSchema = z.strictObject({
  start: z.string().min(1),
  stop: z.string().min(1),
  /** Exit 0 when the component runs. */
  status: z.string().min(1),
});

const packageIndexSchema = z.strictObject({
  indexUrl: z.string().min(1).optional(),
  /** Local directories or URLs of wheels (air-gapped hosts). */
  findLinks: z.array(z.string().min(1)).optional(),
  /** Install only from findLinks. */
  noIndex: z.boolean().optional(),
  trustedHost: z.string().min(1).optional(),
});

const catalogSchema = z.strictObject({
  releases: z.array(z.strictObject({ version: z.string(), date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD") })).min(1),
  source: z.string().optional(),
  readOn: z.string().optional(),
});

const hostSchemaWith = <S extends z.ZodType>(ssh: S) =>
  z.strictObject({
    component,
    ssh,
    /** The Python interpreter of the component's environment (its virtualenv). */
    python: z.string().min(1),
    /** The manager's alembic.ini (which holds the database URL). */
    alembicIni: z.string().min(1).optional(),
    /** Default: systemctl start|stop|is-active backendai-<component>. */
    service: serviceSchema.optional(),
  });
const hostSchema = hostSchemaWith(sshSchema);

const clusterSchemaWith = <H extends z.ZodType<{ component: string; alembicIni?: string }>>(host: H) =>
  z
    .strictObject({
      version: z.string().min(1),
      hosts: z.array(host).min(1),
      packageIndex: packageIndexSchema.optional(),
      /** Overrides the shipped release catalog (e.g. a newer list). */
      catalog: catalogSchema.optional(),
      /** Deadline of each remote command, default 300 s (pip and migrations can be slow). */
      commandTimeoutSeconds: z.number().int().min(1).max(7200).optional(),
    })
    .superRefine((cluster, ctx) => {
      const hosts = cluster.hosts as Array<{ component: string; alembicIni?: string }>;
      const managers = hosts.filter((h) => h.component === "manager");
      if (managers.length !== 1) {
        ctx.addIssue({ code: "custom", path: ["hosts"], message: `exactly one host must be the manager (found ${managers.length})` });
      }
      hosts.forEach((h, i) => {
        if (h.component === "manager" && !h.alembicIni) {
          ctx.addIssue({ code: "custom", path: ["hosts", i, "alembicIni"], message: "the manager needs the path of its alembic.ini" });
        }
      });
    });

export const clusterSchema = clusterSchemaWith(hostSchema);
/** A Backend.AI system in an own stack's config (`upgrade-orchestrator:systems.<name>`, kind "backendai"). */
export const clusterConfigSchema = clusterSchemaWith(hostSchemaWith(sshConfigSchema)).extend({ kind: z.literal("backendai") });

export type ClusterSettings = z.infer<typeof clusterSchema>;
export type ClusterConfig = z.infer<typeof clusterConfigSchema>;
export type HostSettings = z.infer<typeof hostSchema>;
export type PackageIndex = z.infer<typeof packageIndexSchema>;
export type CatalogSettings = Catalog;

export interface SettingsIssue {
  /** Dotted path of the offending key, prefixed by where the settings came from. */
  key: string;
  message: string;
}

/** Validates settings; every problem names its key (e.g. `hosts[1].ssh.port`). */
export function parseClusterSettings(input: unknown, prefix = ""): { settings: ClusterSettings } | { issues: SettingsIssue[] } {
  return parseWith(clusterSchema, input, prefix, (settings) => ({ settings }));
}

export function parseClusterConfig(input: unknown, prefix = ""): { config: ClusterConfig } | { issues: SettingsIssue[] } {
  return parseWith(clusterConfigSchema, input, prefix, (config) => ({ config }));
}

function parseWith<S extends z.ZodType, R>(schema: S, input: unknown, prefix: string, wrap: (value: z.infer<S>) => R): R | { issues: SettingsIssue[] } {
  const result = schema.safeParse(input);
  if (result.success) return wrap(result.data);
  return { issues: result.error.issues.map((issue) => ({ key: keyPath(prefix, issue.path), message: issue.message })) };
}

function keyPath(prefix: string, path: ReadonlyArray<PropertyKey>): string {
  let key = prefix;
  for (const part of path) key += typeof part === "number" ? `[${part}]` : `${key ? "." : ""}${String(part)}`;
  return key || "(top level)";
}

/** The package a component is installed from. */
export const packageOf = (componentName: string) => `backend.ai-${componentName}`;

export function serviceOf(host: HostSettings): { start: string; stop: string; status: string } {
  const unit = `backendai-${host.component}`;
  return host.service ?? { start: `sudo systemctl start ${unit}`, stop: `sudo systemctl stop ${unit}`, status: `systemctl is-active --quiet ${unit}` };
}

/**
 * The settings that decide what the update does, without secrets, as canonical JSON (sorted keys):
 * kept in the state and compared by diff, so a moved host is an update and a rotated key is not.
 */
export function fingerprintOf(settings: ClusterSettings): string {
  return canonicalJson({
    hosts: settings.hosts.map(({ ssh, ...rest }) => ({ ...rest, ssh: { host: ssh.host, port: ssh.port, user: ssh.user, knownHostsPath: ssh.knownHostsPath } })),
    packageIndex: settings.packageIndex ?? null,
  });
}
