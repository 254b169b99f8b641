import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { BackendAiCluster } from "./workflows/backendai/resource";
import { parseClusterConfig, type ClusterConfig } from "./workflows/backendai/settings";
import { CodeOceanVpc } from "./workflows/codeocean-vpc/resource";
import { parseVpcConfig, type Hook, type VpcConfig } from "./workflows/codeocean-vpc/settings";
import { OpenEdxFleet } from "./workflows/openedx/resource";
import { parseFleetConfig } from "./workflows/openedx/settings";
import { UtilitarianService } from "./workflows/utilitarian/resource";
import { parseServiceConfig, type UtilitarianConfig } from "./workflows/utilitarian/settings";

/**
 * The orchestrator's own Pulumi program (Pulumi.yaml; stack configs in stacks/config): one
 * workflow resource per system configured under `upgrade-orchestrator:systems`, each validated
 * against its kind's schema (an error names the key). The stack's `versions` output reports the
 * version each system last completed.
 */
const config = new pulumi.Config();
const systems = config.getObject<Record<string, { kind?: unknown }>>("systems") ?? {};

type Declare = (name: string, settings: unknown, key: string) => pulumi.Output<string>;

const kinds: Record<string, Declare> = {
  backendai(name, settings, key) {
    const parsed = parseClusterConfig(settings, key);
    if ("issues" in parsed) throw new ConfigError(parsed.issues.map((i) => `${i.key}: ${i.message}`));
    return new BackendAiCluster(name, withKeys(parsed.config, key)).version;
  },
  "codeocean-vpc"(name, settings, key) {
    const parsed = parseVpcConfig(settings, key);
    if ("issues" in parsed) throw new ConfigError(parsed.issues.map((i) => `${i.key}: ${i.message}`));
    const { kind: _kind, ...args } = parsed.config;
    return new CodeOceanVpc(name, { ...args, maintenance: args.maintenance && withHookSecrets(args.maintenance) }).version;
  },
  openedx(name, settings, key) {
    const parsed = parseFleetConfig(settings, key);
    if ("issues" in parsed) throw new ConfigError(parsed.issues.map((i) => `${i.key}: ${i.message}`));
    const { kind: _kind, ssh: { privateKeyPath, privateKeyConfig, ...ssh }, ...fleet } = parsed.config;
    return new OpenEdxFleet(name, { ...fleet, ssh: { ...ssh, privateKey: privateKeyOf(key, "ssh", privateKeyPath, privateKeyConfig) } }).liveRelease;
  },
  utilitarian(name, settings, key) {
    const parsed = parseServiceConfig(settings, key);
    if ("issues" in parsed) throw new ConfigError(parsed.issues.map((i) => `${i.key}: ${i.message}`));
    return new UtilitarianService(name, utilitarianSecrets(parsed.config, key)).version;
  },
};

function privateKeyOf(key: string, at: string, privateKeyPath?: string, privateKeyConfig?: string): pulumi.Output<string> {
  if (privateKeyConfig !== undefined) return config.requireSecret(privateKeyConfig);
  try {
    return pulumi.secret(fs.readFileSync(privateKeyPath!, "utf8"));
  } catch (err) {
    throw new ConfigError([`${key}.${at}.privateKeyPath: cannot read ${privateKeyPath} (${(err as Error).message})`]);
  }
}

class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid stack config:\n  ${problems.join("\n  ")}`);
    // Shown to people as the preview's error; the stack trace adds nothing.
    this.stack = this.message;
  }
}

/** The SSH keys the config points at, read here and handed on as Pulumi secrets only. */
function withKeys(cluster: ClusterConfig, key: string) {
  const { kind: _kind, ...settings } = cluster;
  return {
    ...settings,
    hosts: settings.hosts.map(({ ssh: { privateKeyPath, privateKeyConfig, ...ssh }, ...host }, i) => {
      let privateKey: pulumi.Output<string>;
      if (privateKeyConfig !== undefined) {
        privateKey = config.requireSecret(privateKeyConfig);
      } else {
        try {
          privateKey = pulumi.secret(fs.readFileSync(privateKeyPath!, "utf8"));
        } catch (err) {
          throw new ConfigError([`${key}.hosts[${i}].ssh.privateKeyPath: cannot read ${privateKeyPath} (${(err as Error).message})`]);
        }
      }
      return { ...host, ssh: { ...ssh, privateKey } };
    }),
  };
}

/** Hook headers named by secret config keys (`headerSecrets`), read here and handed on as Pulumi secrets only. */
function withHookSecrets(maintenance: NonNullable<VpcConfig["maintenance"]>) {
  const resolve = (hook: Hook | undefined) => {
    if (!hook || !("http" in hook) || !hook.http.headerSecrets) return hook;
    const { headerSecrets, ...http } = hook.http;
    const secrets = Object.entries(headerSecrets).map(([header, key]) => config.requireSecret(key).apply((value) => [header, value] as const));
    return { http: pulumi.all(secrets).apply((pairs) => ({ ...http, headers: { ...http.headers, ...Object.fromEntries(pairs) } })) };
  };
  return pulumi.secret({ ...maintenance, enable: resolve(maintenance.enable), disable: resolve(maintenance.disable) });
}

/** The SSH key and the database password the config points at, handed on as Pulumi secrets only. */
function utilitarianSecrets(service: UtilitarianConfig, key: string) {
  const { kind: _kind, ssh: { privateKeyPath, privateKeyConfig, ...ssh }, database: { passwordConfig, ...database }, ...settings } = service;
  return {
    ...settings,
    ssh: { ...ssh, privateKey: privateKeyOf(key, "ssh", privateKeyPath, privateKeyConfig) },
    database: { ...database, password: config.requireSecret(passwordConfig) },
  };
}


export const versions: Record<string, pulumi.Output<string>> = {};
for (const [name, settings] of Object.entries(systems)) {
  const key = `upgrade-orchestrator:systems.${name}`;
  const kind = typeof settings?.kind === "string" ? settings.kind : undefined;
  const declare = kind === undefined ? undefined : kinds[kind];
  if (!declare) {
    throw new ConfigError([`${key}.kind: ${JSON.stringify(settings?.kind)} is not a workflow kind (known: ${Object.keys(kinds).join(", ")})`]);
  }
  versions[name] = declare(name, settings, key);
}
