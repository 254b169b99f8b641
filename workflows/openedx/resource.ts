import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { providerLoadedFrom, type SshArgs } from "../../lib/dynamicProvider";

/**
 * An Open edX fleet's blue/green cut-over on EC2 as a Pulumi resource (runbook 5 of RUNBOOKS.md).
 * `phase: prepared` stands up the green fleet of `release`; `phase: live` performs the window
 * (DNS to the maintenance page, stop blue, migrate, switch the load balancer, verify, DNS back,
 * terminate blue by id), rolling back to blue when a step fails while blue exists.
 */
type Selector = string[] | { ids?: string[]; names?: string[]; tags?: Record<string, string | string[]> };
type LoadBalancer = { type: "classic"; name: string } | { type: "alb"; targetGroupArns: string[]; port?: number };
type Probe = { url: string; host?: string; status?: number; text?: string; json?: Record<string, string | number | boolean | null> };

/** The settings (workflows/openedx/settings.ts documents each key). */
export interface OpenEdxFleetArgs {
  release: pulumi.Input<string>;
  phase: pulumi.Input<"prepared" | "live">;
  fleet: pulumi.Input<string>;
  amis: pulumi.Input<{ web: string; worker: string }>;
  /** The serving fleet by the operator's own selectors (ids, Name tags, tags). */
  blue: pulumi.Input<{ release: string; web: Selector; worker?: Selector }>;
  green?: pulumi.Input<{ web: Selector; worker?: Selector }>;
  launchTags?: pulumi.Input<Record<string, string>>;
  /** lms, studio, …: each its own load balancer, records and verification checks. */
  sites: pulumi.Input<Array<{ name: string; loadBalancer: LoadBalancer; records: string[]; verify?: { baseUrl?: string; checks: Probe[] } }>>;
  dns: pulumi.Input<{ hostedZoneId: string }>;
  maintenance: pulumi.Input<{ distributionId: string; bucket: string; key?: string; windowStart: string; windowMinutes: number; contact: string }>;
  /** `host` defaults to each instance's private IP. */
  ssh: pulumi.Input<Omit<SshArgs, "host"> & { host?: pulumi.Input<string> }>;
  host?: pulumi.Input<{ layout?: "supervisor" | "compose"; composeFile?: string; commands?: Partial<Record<"status" | "stop" | "start" | "migrate" | "manage", string>>; deadlines?: Partial<Record<"status" | "stop" | "start" | "migrate" | "releaseStep", number>> }>;
  heartbeats?: pulumi.Input<{ lms: Probe; cms: Probe | false; workers: Probe | false }>;
  releaseSteps?: pulumi.Input<Record<string, Array<{ id: string; service?: "lms" | "cms"; args?: string; command?: string }>>>;
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
    super(provider, name, { ...args, ssh, liveRelease: undefined, blueFleet: undefined, blueIds: undefined, greenIds: undefined, fingerprint: undefined }, opts, "openedx", "OpenEdxFleet");
  }
}
