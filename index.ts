import * as pulumi from "@pulumi/pulumi";

/**
 * The orchestrator's own Pulumi program (Pulumi.yaml, stack configs in stacks/config): one
 * workflow resource per system configured under `upgrade-orchestrator:systems`. The workflow
 * resources (BackendAiCluster, ...) arrive with their issues; until one is registered, a
 * configured system is refused at preview rather than silently ignored.
 */
const config = new pulumi.Config();
const systems = config.getObject<Record<string, { kind?: string }>>("systems") ?? {};

const registered: Record<string, (name: string, settings: unknown) => pulumi.Output<string>> = {};

export const versions: Record<string, pulumi.Output<string>> = {};
for (const [name, settings] of Object.entries(systems)) {
  const declare = settings.kind ? registered[settings.kind] : undefined;
  if (!declare) {
    throw new Error(
      `upgrade-orchestrator:systems.${name}.kind is ${JSON.stringify(settings.kind)}: ` +
        `no workflow of that kind exists (known: ${Object.keys(registered).join(", ") || "none yet"})`,
    );
  }
  versions[name] = declare(name, settings);
}
