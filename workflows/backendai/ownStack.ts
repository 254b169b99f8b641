import type { OwnStackKind } from "../../lib/ownStack";
import { BackendAiCluster } from "./resource";
import { parseClusterConfig } from "./settings";

/** `kind: backendai` in the orchestrator's own stack: each host's SSH key handed on as a Pulumi secret only. */
export const backendAiOwnStack: OwnStackKind = {
  kind: "backendai",
  declare(name, settings, at) {
    const { kind: _kind, ...cluster } = at.parsed(parseClusterConfig(settings, at.key));
    const hosts = cluster.hosts.map(({ ssh: { privateKeyPath, privateKeyConfig, ...ssh }, ...host }, i) => ({
      ...host,
      ssh: { ...ssh, privateKey: at.privateKey(`hosts[${i}].ssh`, privateKeyPath, privateKeyConfig) },
    }));
    return new BackendAiCluster(name, { ...cluster, hosts }).version;
  },
};
