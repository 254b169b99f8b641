import { z } from "zod";
import { parseWith, sshFields, sshSchemas, type SettingsIssue } from "../../lib/settings";
export type { SettingsIssue } from "../../lib/settings";

/**
 * The settings of an Open edX fleet's blue/green cut-over (runbook 5), as the OpenEdxFleet
 * resource takes them and as an own stack declares them under `upgrade-orchestrator:systems.<name>`.
 * Pure: validation only; every problem names its key.
 */
const instanceId = z.string().regex(/^i-[0-9a-f]{8,17}$/, "an EC2 instance id (i-…)");
const amiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "an AMI id (ami-…)");

const { resource: sshSchema, config: sshConfigSchema } = sshSchemas({ ...sshFields, /** Default: the instance's private IP. */ host: z.string().min(1).optional() });

const roles = z.strictObject({ web: z.array(instanceId), worker: z.array(instanceId).default([]) });

const loadBalancerSchema = z.discriminatedUnion("type", [
  /** A classic ELB, by name. */
  z.strictObject({ type: z.literal("classic"), name: z.string().min(1) }),
  /** An ALB's target groups (instance targets on the app's port). */
  z.strictObject({ type: z.literal("alb"), targetGroupArns: z.array(z.string().startsWith("arn:")).min(1), port: z.number().int().optional() }),
]);

const checkSchema = z.strictObject({
  path: z.string().startsWith("/"),
  /** Default 200. */
  status: z.number().int().min(100).max(599).optional(),
  /** Text the body must contain. */
  text: z.string().optional(),
  /** A virtual host to ask for (the Host header), e.g. the lms name. */
  host: z.string().optional(),
});

const fleetSchemaWith = <S extends z.ZodType>(ssh: S) =>
  z
    .strictObject({
      /** The release every web and worker host should run, e.g. "sumac.3". */
      release: z.string().regex(/^[a-z]+\.\d+$/, "an Open edX named release such as sumac.3"),
      /** prepared: the green fleet stands ready; live: it serves (the cut-over is done). */
      phase: z.enum(["prepared", "live"]),
      /** Tag value of `openedx:fleet` on every instance of this fleet. */
      fleet: z.string().min(1),
      /** The AMIs of `release`. */
      amis: z.strictObject({ web: amiId, worker: amiId }),
      /** The fleet that serves now, by explicit instance id, at its release. */
      blue: z.strictObject({ release: z.string().min(1), web: z.array(instanceId).min(1), worker: z.array(instanceId).default([]) }),
      /** Adopt green instances the operator launched (by explicit id) instead of launching them. */
      green: roles.optional(),
      loadBalancer: loadBalancerSchema,
      dns: z.strictObject({
        hostedZoneId: z.string().min(1),
        /** The lms and studio names (CNAME records). */
        records: z.array(z.string().min(1)).min(1),
      }),
      maintenance: z.strictObject({
        /** The CloudFront distribution serving the maintenance page. */
        distributionId: z.string().min(1),
        bucket: z.string().min(1),
        key: z.string().min(1).default("index.html"),
        /** The window's start (ISO 8601) and length. */
        windowStart: z.string().refine((s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 time"),
        windowMinutes: z.number().int().min(1),
        contact: z.string().min(1),
      }),
      ssh,
      /** Remote commands; `{instanceId}` and `{service}` (lms, cms) are filled in. */
      commands: z
        .strictObject({ supervisorctl: z.string().min(1), migrate: z.string().min(1) })
        .default({ supervisorctl: "sudo /edx/bin/supervisorctl", migrate: "sudo /edx/bin/edxapp-migrate-{service}" }),
      /** An instance's own HTTP address; `{privateIp}` and `{instanceId}` are filled in. */
      instanceUrl: z.string().min(1).default("http://{privateIp}"),
      heartbeatPath: z.string().startsWith("/").default("/heartbeat"),
      /** Checks through the load balancer before DNS goes back to it: all must pass. */
      verify: z.strictObject({ baseUrl: z.string().url(), checks: z.array(checkSchema).min(1) }),
      /** Deadlines and poll intervals (seconds). */
      timing: z
        .strictObject({
          pollSeconds: z.number().min(0.05).default(5),
          bootSeconds: z.number().min(1).default(600),
          healthySeconds: z.number().min(1).default(300),
          dnsSyncSeconds: z.number().min(1).default(300),
          /** Upper bound on an old TTL / draining wait. */
          maxWaitSeconds: z.number().min(0).default(900),
          commandSeconds: z.number().int().min(1).default(1800),
        })
        .default({ pollSeconds: 5, bootSeconds: 600, healthySeconds: 300, dnsSyncSeconds: 300, maxWaitSeconds: 900, commandSeconds: 1800 }),
    })
    .superRefine((fleet, ctx) => {
      const blue = new Set([...fleet.blue.web, ...fleet.blue.worker]);
      for (const id of [...(fleet.green?.web ?? []), ...(fleet.green?.worker ?? [])]) {
        if (blue.has(id)) ctx.addIssue({ code: "custom", path: ["green"], message: `${id} is in both the blue and the green fleet` });
      }
      if (fleet.release === fleet.blue.release && fleet.phase === "prepared") {
        ctx.addIssue({ code: "custom", path: ["release"], message: `prepared needs a new release; blue already runs ${fleet.release}` });
      }
    });

export const fleetSchema = fleetSchemaWith(sshSchema);
export const fleetConfigSchema = fleetSchemaWith(sshConfigSchema).extend({ kind: z.literal("openedx") });

export type FleetSettings = z.infer<typeof fleetSchema>;
export type FleetConfig = z.infer<typeof fleetConfigSchema>;
export type Role = "web" | "worker";

export function parseFleetSettings(input: unknown, prefix = ""): { settings: FleetSettings } | { issues: SettingsIssue[] } {
  return parseWith(fleetSchema, input, prefix, (settings) => ({ settings }));
}

export function parseFleetConfig(input: unknown, prefix = ""): { config: FleetConfig } | { issues: SettingsIssue[] } {
  return parseWith(fleetConfigSchema, input, prefix, (config) => ({ config }));
}


/** Fills `{name}` placeholders. */
export const fill = (template: string, values: Record<string, string>) =>
  template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
