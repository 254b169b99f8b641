import type { OwnStackKind } from "../../lib/ownStack";
import { UtilitarianService } from "./resource";
import { parseServiceConfig } from "./settings";

/** `kind: utilitarian` in the orchestrator's own stack: the SSH key and the database password handed on as Pulumi secrets only. */
export const utilitarianOwnStack: OwnStackKind = {
  kind: "utilitarian",
  declare(name, settings, at) {
    const { kind: _kind, ssh: { privateKeyPath, privateKeyConfig, ...ssh }, database: { passwordConfig, ...database }, ...service } = at.parsed(parseServiceConfig(settings, at.key));
    return new UtilitarianService(name, {
      ...service,
      ssh: { ...ssh, privateKey: at.privateKey("ssh", privateKeyPath, privateKeyConfig) },
      database: { ...database, password: at.secret(passwordConfig) },
    }).version;
  },
};
