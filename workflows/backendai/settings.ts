import { canonicalJson } from "../../lib/dynamicProvider";
import { z } from "zod";
import { parseWith, sshFields, sshSchemas, type SettingsIssue } from "../../lib/settings";
export type { SettingsIssue } from "../../lib/settings";
import type { Catalog } from "./versions";

/**
 * The settings of a Backend.AI cluster, as the BackendAiCluster resource takes them and as an own
 * stack declares them under `upgrade-orchestrator:systems.<name>`. Pure: validation only.
 */
const component = z
  .string()
  .regex(/^[a-z][a-z-]*$/, "a component name such as manager, agent, storage-proxy, webserver");

const { resource: sshSchema, config: sshConfigSchema } = sshSchemas(sshFields);

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

const catalogObjectSchema = z.strictObject({
  releases: z
    .array(z.strictObject({ version: z.string(), date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD"), requiresPython: z.string().min(1).optional() }))
    .min(1),
  skipped: z.array(z.strictObject({ version: z.string(), why: z.string(), date: z.string().optional() })).optional(),
  source: z.string().optional(),
  readOn: z.string().optional(),
});
/** The releases themselves, a package index URL to read them from, or "bundled" (the shipped releases.json). */
const catalogSchema = z.union([
  catalogObjectSchema,
  z.literal("bundled"),
  z.string().regex(/^https?:\/\/\S+$/, 'a package index URL (e.g. https://pypi.org/simple), "bundled", or {releases: [...]}'),
]);

const hostSchemaWith = <S extends z.ZodType>(ssh: S) =>
  z.strictObject({
    component,
    ssh,
    /** The Python interpreter of the component's environment (its virtualenv). */
    python: z.string().min(1),
    /**
     * The interpreters the host has, by version ({"3.12": "/usr/bin/python3.12"}): a hop whose
     * release needs another Python than the environment's makes a new environment with one of them.
     */
    pythons: z.record(z.string().regex(/^3\.\d+$/, "a Python version such as 3.12"), z.string().min(1)).optional(),
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
      /** Where the release catalog comes from (default: the index in packageIndex, else pip's default; "bundled" with noIndex). */
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

/** Validates settings; every problem names its key (e.g. `hosts[1].ssh.port`). */
export function parseClusterSettings(input: unknown, prefix = ""): { settings: ClusterSettings } | { issues: SettingsIssue[] } {
  return parseWith(clusterSchema, input, prefix, (settings) => ({ settings }));
}

export function parseClusterConfig(input: unknown, prefix = ""): { config: ClusterConfig } | { issues: SettingsIssue[] } {
  return parseWith(clusterConfigSchema, input, prefix, (config) => ({ config }));
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
