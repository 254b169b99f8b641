import { z } from "zod";
import { parseWith, sshFields, sshSchemas, type SettingsIssue } from "../../lib/settings";
import { hostSchema } from "./hostSettings";
import { KNOWN_RELEASE_STEPS, parseRelease, RELEASE_ORDER, upgradeRefusal } from "./releases";
export type { SettingsIssue } from "../../lib/settings";

/**
 * The settings of an Open edX fleet's blue/green cut-over (runbook 5), as the OpenEdxFleet
 * resource takes them and as an own stack declares them under `upgrade-orchestrator:systems.<name>`.
 * Pure: validation only; every problem names its key.
 */
const instanceId = z.string().regex(/^i-[0-9a-f]{8,17}$/, "an EC2 instance id (i-…)");
const amiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "an AMI id (ami-…)");
const release = z.string().superRefine((text, ctx) => {
  const parsed = parseRelease(text);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

const { resource: sshSchema, config: sshConfigSchema } = sshSchemas({ ...sshFields, /** Default: the instance's private IP. */ host: z.string().min(1).optional() });

/**
 * Which instances are a role of a fleet, by the operator's own marks: explicit ids, `Name` tags
 * (EC2 wildcards `*`, `?`), tags (a value or any of several). All parts given must match. A plain
 * list is ids. The Salt era: `tags: {environment: mitx-production, purpose: current-residential-live, role: edx}`.
 */
const selectorObject = z
  .strictObject({
    ids: z.array(instanceId).optional(),
    names: z.array(z.string().min(1)).optional(),
    tags: z.record(z.string().min(1), z.union([z.string(), z.array(z.string()).min(1)])).optional(),
    /** The Auto Scaling group that owns the role's instances: blue/green by group (autoScaling.ts). */
    autoScalingGroup: z.string().min(1).optional(),
  })
  .refine((s) => (s.ids?.length ?? 0) + (s.names?.length ?? 0) + Object.keys(s.tags ?? {}).length > 0 || !!s.autoScalingGroup, "give ids, names, tags or autoScalingGroup");
export type Selector = z.infer<typeof selectorObject>;
const selector = z.union([z.array(instanceId).min(1).transform((ids): Selector => ({ ids })), selectorObject]);
/** No instances of the role (a fleet without workers, say). */
const NONE: Selector = { ids: [] };
const selectorOrNone = z.union([z.array(instanceId).transform((ids): Selector => ({ ids })), selectorObject]);

const loadBalancerSchema = z.discriminatedUnion("type", [
  /** A classic ELB, by name. */
  z.strictObject({ type: z.literal("classic"), name: z.string().min(1) }),
  /** An ALB's target groups (instance targets on the app's port). */
  z.strictObject({ type: z.literal("alb"), targetGroupArns: z.array(z.string().startsWith("arn:")).min(1), port: z.number().int().optional() }),
]);
export type LoadBalancerSettings = z.infer<typeof loadBalancerSchema>;

/** One HTTP check of an instance or through a load balancer. `json`: dotted paths and the value each must have. */
const probeSchema = z.strictObject({
  url: z.string().min(1),
  /** A virtual host to ask for (the Host header). */
  host: z.string().optional(),
  /** Default 200. */
  status: z.number().int().min(100).max(599).optional(),
  text: z.string().optional(),
  json: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
});
export type ProbeSettings = z.infer<typeof probeSchema>;

/** A site: lms, studio, preview …, each behind its own load balancer with its own DNS records. */
const siteSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, "a short name such as lms or studio"),
  loadBalancer: loadBalancerSchema,
  /** CNAMEs of the site (lms.example.edu …), pointed at this site's load balancer. */
  records: z.array(z.string().min(1)).min(1),
  /**
   * Checks through this site's load balancer before DNS goes back to it; all must pass. `baseUrl`
   * (default `https://{loadBalancerDns}`) is asked with the Host header of the site's first record.
   */
  verify: z
    .strictObject({
      baseUrl: z.string().min(1).default("https://{loadBalancerDns}"),
      checks: z.array(probeSchema.extend({ url: z.string().startsWith("/", "a path such as /heartbeat") })).min(1),
    })
    .optional(),
});
export type Site = z.infer<typeof siteSchema>;


const releaseStepSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]+$/, "an id such as reindex-studio"),
  /** Run as `{manage}` with `service` and `args` (commands.manage), or a whole `command`. */
  service: z.enum(["lms", "cms"]).optional(),
  args: z.string().min(1).optional(),
  command: z.string().min(1).optional(),
  /** Leave out the known step of this id (e.g. the operator reindexes Studio in a job of their own). */
  skip: z.literal(true).optional(),
}).refine((s) => s.skip === true ? s.command === undefined && s.args === undefined && s.service === undefined : (s.command !== undefined) !== (s.args !== undefined && s.service !== undefined), "give either command, or service and args (or only skip: true to leave out a known step)");
export type ReleaseStep = Omit<z.infer<typeof releaseStepSchema>, "skip">;

/** The known steps of each release (KNOWN_RELEASE_STEPS) with the settings' own: a step of a known id replaces it (or, with skip, leaves it out); others are added after them. */
function withKnownSteps(given: Partial<Record<string, Array<z.infer<typeof releaseStepSchema>>>>): Partial<Record<(typeof RELEASE_ORDER)[number], ReleaseStep[]>> {
  const names = new Set([...Object.keys(KNOWN_RELEASE_STEPS), ...Object.keys(given)]);
  const merged: Record<string, ReleaseStep[]> = {};
  for (const name of names) {
    const known: ReleaseStep[] = (KNOWN_RELEASE_STEPS[name] ?? []).map(({ id, service, args }) => ({ id, service, args }));
    const own = given[name] ?? [];
    const byId = new Map(own.map((s) => [s.id, s]));
    const steps = [...known.flatMap((k) => (byId.has(k.id) ? [byId.get(k.id)!] : [k])), ...own.filter((s) => !known.some((k) => k.id === s.id))];
    merged[name] = steps.filter((s) => !("skip" in s && s.skip)).map(({ skip: _skip, ...s }: z.infer<typeof releaseStepSchema>) => s);
  }
  return merged;
}

const timingDefaults = { pollSeconds: 5, bootSeconds: 600, healthySeconds: 300, dnsSyncSeconds: 300, maxWaitSeconds: 900 };

const fleetSchemaWith = <S extends z.ZodType>(ssh: S) =>
  z
    .strictObject({
      /** The release every web and worker host should run: sumac.3, teak.rc1, sumac.master. */
      release,
      /** prepared: the green fleet stands ready; live: it serves (the cut-over is done). */
      phase: z.enum(["prepared", "live"]),
      /** This fleet's name: the workflow's own bookkeeping tag `openedx:fleet` on what it launches. */
      fleet: z.string().min(1),
      /** The AMIs of `release`. */
      amis: z.strictObject({ web: amiId, worker: amiId }),
      /** The fleet that serves now, by the operator's selectors, at its release. */
      blue: z.strictObject({ release, web: selector, worker: selectorOrNone.default(NONE) }),
      /** Adopt green instances the operator launched (by the operator's selectors) instead of launching them. */
      green: z.strictObject({ web: selector, worker: selectorOrNone.default(NONE) }).optional(),
      /**
       * Tags a launched green instance gets besides blue's own (copied, but `Name`, `aws:*` and
       * `openedx:*`): the release-specific ones, with `{release}` (sumac.3), `{name}` (sumac),
       * `{number}` (3 / rc1 / master) filled in. The Salt era: `{edx_codename: "{name}", "release-version": "{number}"}`.
       */
      launchTags: z.record(z.string().min(1), z.string()).default({}),
      /** Every site with its own load balancer and records; green web hosts join every one. */
      sites: z.array(siteSchema).min(1),
      dns: z.strictObject({ hostedZoneId: z.string().min(1) }),
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
      /** How processes are run on a host: the layout and its commands (hostSettings.ts). */
      host: hostSchema.prefault({}),
      /**
       * An instance's own checks; `{privateIp}` and `{instanceId}` are filled in. lms and cms on
       * every web host; `workers` (edx-platform's `/heartbeat?extended`, whose Celery check runs a
       * task on the workers) on one web host. `false` leaves a check out.
       */
      heartbeats: z
        .strictObject({
          lms: probeSchema,
          cms: z.union([probeSchema, z.literal(false)]),
          workers: z.union([probeSchema, z.literal(false)]),
        })
        .default({ lms: { url: "http://{privateIp}/heartbeat" }, cms: { url: "http://{privateIp}:18010/heartbeat" }, workers: { url: "http://{privateIp}/heartbeat?extended" } }),
      /**
       * Steps after the migrations, by the named release that needs them (run when the upgrade
       * enters that release): the known ones (releases.ts, KNOWN_RELEASE_STEPS) and these; one of
       * a known id replaces the known step, `skip: true` leaves it out.
       */
      releaseSteps: z
        .partialRecord(z.enum(RELEASE_ORDER), z.array(releaseStepSchema))
        .default({})
        .transform(withKnownSteps),
      /** Deadlines and poll intervals (seconds); the host's command deadlines are under host.deadlines. */
      timing: z
        .strictObject({
          pollSeconds: z.number().min(0.05).default(timingDefaults.pollSeconds),
          bootSeconds: z.number().min(1).default(timingDefaults.bootSeconds),
          /** Until the load balancer itself reports every green instance healthy. */
          healthySeconds: z.number().min(1).default(timingDefaults.healthySeconds),
          dnsSyncSeconds: z.number().min(1).default(timingDefaults.dnsSyncSeconds),
          /** Upper bound on an old TTL / draining wait. */
          maxWaitSeconds: z.number().min(0).default(timingDefaults.maxWaitSeconds),
        })
        .default(timingDefaults),
    })
    .superRefine((fleet, ctx) => {
      const blueIds = new Set([...(fleet.blue.web.ids ?? []), ...(fleet.blue.worker.ids ?? [])]);
      for (const id of [...(fleet.green?.web.ids ?? []), ...(fleet.green?.worker.ids ?? [])]) {
        if (blueIds.has(id)) ctx.addIssue({ code: "custom", path: ["green"], message: `${id} is in both the blue and the green fleet` });
      }
      const refusal = upgradeRefusal(fleet.blue.release, fleet.release);
      if (refusal) ctx.addIssue({ code: "custom", path: ["release"], message: refusal });
      if (fleet.release === fleet.blue.release && fleet.phase === "prepared") {
        ctx.addIssue({ code: "custom", path: ["release"], message: `prepared needs a new release; blue already runs ${fleet.release}` });
      }
      const names = fleet.sites.map((s) => s.name);
      names.forEach((n, i) => names.indexOf(n) !== i && ctx.addIssue({ code: "custom", path: ["sites", i, "name"], message: `site ${n} is given twice` }));
      if (!fleet.sites.some((s) => s.verify)) ctx.addIssue({ code: "custom", path: ["sites"], message: "give verify checks for at least one site (what proves the new release serves)" });
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
