import type { OwnStackKind } from "../../lib/ownStack";
import { OpenEdxFleet } from "./resource";
import { parseFleetConfig } from "./settings";

/** `kind: openedx` in the orchestrator's own stack: the fleet's SSH key handed on as a Pulumi secret only. */
export const openEdxOwnStack: OwnStackKind = {
  kind: "openedx",
  declare(name, settings, at) {
    const { kind: _kind, ssh: { privateKeyPath, privateKeyConfig, ...ssh }, ...fleet } = at.parsed(parseFleetConfig(settings, at.key));
    return new OpenEdxFleet(name, { ...fleet, ssh: { ...ssh, privateKey: at.privateKey("ssh", privateKeyPath, privateKeyConfig) } }).liveRelease;
  },
};
