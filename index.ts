import * as pulumi from "@pulumi/pulumi";
import { ConfigError, OwnStackConfig, type OwnStackKind } from "./lib/ownStack";
import { backendAiOwnStack } from "./workflows/backendai/ownStack";
import { codeOceanVpcOwnStack } from "./workflows/codeocean-vpc/ownStack";
import { openEdxOwnStack } from "./workflows/openedx/ownStack";
import { utilitarianOwnStack } from "./workflows/utilitarian/ownStack";

/**
 * The orchestrator's own Pulumi program (Pulumi.yaml; stack configs in stacks/config): one
 * workflow resource per system configured under `upgrade-orchestrator:systems`, each validated
 * against its kind's schema (an error names the key). Each workflow brings its own config mapping
 * (workflows/<kind>/ownStack.ts); this file is the registry. The stack's `versions` output reports
 * the version each system last completed.
 */
const KINDS: OwnStackKind[] = [backendAiOwnStack, codeOceanVpcOwnStack, openEdxOwnStack, utilitarianOwnStack];
const kinds = new Map(KINDS.map((k) => [k.kind, k]));

const config = new pulumi.Config();
const systems = config.getObject<Record<string, { kind?: unknown }>>("systems") ?? {};

export const versions: Record<string, pulumi.Output<string>> = {};
for (const [name, settings] of Object.entries(systems)) {
  const key = `upgrade-orchestrator:systems.${name}`;
  const kind = typeof settings?.kind === "string" ? kinds.get(settings.kind) : undefined;
  if (!kind) {
    throw new ConfigError([`${key}.kind: ${JSON.stringify(settings?.kind)} is not a workflow kind (known: ${[...kinds.keys()].join(", ")})`]);
  }
  versions[name] = kind.declare(name, settings, new OwnStackConfig(key, config));
}
