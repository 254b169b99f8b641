import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { providerLoadedFrom, type SshArgs } from "../../lib/dynamicProvider";

/**
 * An Open edX fleet's blue/green cut-over on EC2 as a Pulumi resource (runbook 5 of RUNBOOKS.md).
 * `phase: prepared` stands up the green fleet of `release`; `phase: live` performs the window
 * (DNS to the maintenance page, stop blue, migrate, switch the load balancer, verify, DNS back,
 * terminate blue by id), rolling back to blue when a step fails while blue exists.
 */
export interface OpenEdxFleetArgs {
  release: pulumi.Input<string>;
  phase: pulumi.Input<"prepared" | "live">;
  fleet: pulumi.Input<string>;
  amis: pulumi.Input<{ web: string; worker: string }>;
  blue: pulumi.Input<{ release: string; web: string[]; worker?: string[] }>;
  green?: pulumi.Input<{ web: string[]; worker?: string[] }>;
  loadBalancer: pulumi.Input<{ type: "classic"; name: string } | { type: "alb"; targetGroupArns: string[]; port?: number }>;
  dns: pulumi.Input<{ hostedZoneId: string; records: string[] }>;
  maintenance: pulumi.Input<{ distributionId: string; bucket: string; key?: string; windowStart: string; windowMinutes: number; contact: string }>;
  /** `host` defaults to each instance's private IP. */
  ssh: pulumi.Input<Omit<SshArgs, "host"> & { host?: pulumi.Input<string> }>;
  commands?: pulumi.Input<{ supervisorctl: string; migrate: string }>;
  instanceUrl?: pulumi.Input<string>;
  heartbeatPath?: pulumi.Input<string>;
  verify: pulumi.Input<{ baseUrl: string; checks: Array<{ path: string; status?: number; text?: string; host?: string }> }>;
  timing?: pulumi.Input<Record<string, number>>;
}

const provider = providerLoadedFrom(path.join(__dirname, "provider"));

export class OpenEdxFleet extends pulumi.dynamic.Resource {
  /** The release of the last completed phase. */
  declare public readonly release: pulumi.Output<string>;
  declare public readonly phase: pulumi.Output<string>;
  /** The release that serves users. */
  declare public readonly liveRelease: pulumi.Output<string>;
  declare public readonly blueIds: pulumi.Output<string[]>;
  declare public readonly greenIds: pulumi.Output<string[]>;

  constructor(name: string, args: OpenEdxFleetArgs, opts?: pulumi.CustomResourceOptions) {
    const ssh = pulumi.output(args.ssh).apply((s) => ({ ...s, privateKey: pulumi.secret(s.privateKey) }));
    super(provider, name, { ...args, ssh, liveRelease: undefined, blueIds: undefined, greenIds: undefined, fingerprint: undefined }, opts, "openedx", "OpenEdxFleet");
  }
}
