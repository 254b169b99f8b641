import * as pulumi from "@pulumi/pulumi";
import type { OwnStackConfig, OwnStackKind } from "../../lib/ownStack";
import { CodeOceanVpc } from "./resource";
import { parseVpcConfig, type Hook, type VpcConfig } from "./settings";

/** `kind: codeocean-vpc` in the orchestrator's own stack: the maintenance hooks' secret headers read from secret config keys. */
export const codeOceanVpcOwnStack: OwnStackKind = {
  kind: "codeocean-vpc",
  declare(name, settings, at) {
    const { kind: _kind, ...args } = at.parsed(parseVpcConfig(settings, at.key));
    return new CodeOceanVpc(name, { ...args, maintenance: args.maintenance && withHookSecrets(args.maintenance, at) }).version;
  },
};

/** Hook headers named by secret config keys (`headerSecrets`), handed on as Pulumi secrets only. */
function withHookSecrets(maintenance: NonNullable<VpcConfig["maintenance"]>, at: OwnStackConfig) {
  const resolve = (hook: Hook | undefined) => {
    if (!hook || !("http" in hook) || !hook.http.headerSecrets) return hook;
    const { headerSecrets, ...http } = hook.http;
    const secrets = Object.entries(headerSecrets).map(([header, key]) => at.secret(key).apply((value) => [header, value] as const));
    return { http: pulumi.all(secrets).apply((pairs) => ({ ...http, headers: { ...http.headers, ...Object.fromEntries(pairs) } })) };
  };
  return pulumi.secret({ ...maintenance, enable: resolve(maintenance.enable), disable: resolve(maintenance.disable) });
}
