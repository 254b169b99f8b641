import { UpgradeError } from "../../lib/errors";
import type { Step } from "../../lib/steps";
import type { Progress } from "../../lib/progress";
import {
  activeSessions,
  alembic,
  applyMissingRevisions,
  atHead,
  installedVersion,
  isRunning,
  pipInstall,
  pythonVersion,
  schemaState,
  startComponent,
  stopComponent,
  type Host,
} from "./remote";
import { environmentFor, prepareEnvironment, removeEnvironment, resolvesFor, switchEnvironment, type EnvironmentChange } from "./environments";
import { pythonSatisfies } from "./python";
import type { PackageIndex } from "./settings";
import { compareReleases } from "./versions";
import { isMajor, needsMissingRevisions, pairRule, type Hop } from "./hopRules";

/**
 * Runbook 3 of RUNBOOKS.md, one hop at a time (from → to, both releases, planned by versions.ts):
 *
 *   (new Python) prepare the new environments → stop the manager → pair-specific schema step
 *   (old package) → pip install the manager (or switch it to its new environment) → alembic
 *   upgrade head → (major, up to 24.12) backend.ai mgr schema apply-missing-revisions <from> →
 *   start the manager → each other component: stop, pip install (or switch), start → verify
 *   every host → (new Python) remove the old environments.
 *
 * hopSteps (at the end) is that list; a step the hop does not need is skipped by its `when`
 * (hopRules.ts decides from the two releases). Each step checks the host before it acts, so a hop
 * interrupted anywhere is completed by running it again, and a finished hop is recognised and
 * skipped as a whole (hopDone).
 */
export interface ClusterContext {
  manager: Host;
  others: Host[];
  packageIndex?: PackageIndex;
  /** Requires-Python of each planned release (from the catalog). */
  requiresPython: Record<string, string>;
  /** The environment changes of each hop (by its target), decided by preflight. */
  environments: Map<string, EnvironmentChange[]>;
  info: Progress;
  warn: Progress;
}

/**
 * Whether a hop is done on the whole cluster: every host runs at least `hop.to`, and where it runs
 * exactly `to` it is running (the manager, then, on a schema at its head). A later hop's partial
 * work (the manager already past `to`) still counts this one as done.
 */
export async function hopDone(ctx: ClusterContext, hop: Hop): Promise<boolean> {
  for (const host of [ctx.manager, ...ctx.others]) {
    const installed = await installedVersion(host);
    const order = installed === undefined ? undefined : compareReleases(installed, hop.to);
    if (order === undefined || order < 0) return false;
    if (order === 0 && !(await isRunning(host))) return false;
  }
  return (await installedVersion(ctx.manager)) !== hop.to || atHead(await schemaState(ctx.manager));
}

/**
 * Before the first hop touches anything: refuse what would stop the run half-way for a reason
 * known now (running sessions for a major upgrade, a pair's precondition such as PostgreSQL 16).
 */
export async function preflight(ctx: ClusterContext, hops: Hop[]): Promise<void> {
  await refuseRunningSessions(ctx, hops);
  for (const hop of hops) await pairRule(hop)?.precondition?.(ctx, hop);
  await planEnvironments(ctx, hops);
}

/**
 * For every host and hop: the Python the release needs (a new environment where the current one's
 * is excluded; refused when the host has no matching interpreter) and that the release resolves
 * from the index for it, so a path that cannot be installed is refused before any downtime.
 */
async function planEnvironments(ctx: ClusterContext, hops: Hop[]): Promise<void> {
  ctx.environments.clear();
  for (const host of [ctx.manager, ...ctx.others]) {
    let running = minor(await pythonVersion(host));
    for (const hop of hops) {
      const spec = ctx.requiresPython[hop.to];
      if (!pythonSatisfies(spec, running)) {
        const change = (await environmentFor(host, hop, spec, running))!;
        ctx.environments.set(hop.to, [...(ctx.environments.get(hop.to) ?? []), change]);
        await ctx.info(`${host.name}: ${hop.from} → ${hop.to} needs Python ${spec}; a new environment ${change.next} with ${change.interpreter} (Python ${change.python}) replaces ${change.previous} in that hop`);
        running = change.python;
      }
      await resolvesFor(host, hop.to, running, ctx.packageIndex);
    }
  }
}

const minor = (version: string) => version.split(".").slice(0, 2).join(".");
const changeOf = (ctx: ClusterContext, hop: Hop, host: Host) => ctx.environments.get(hop.to)?.find((c) => c.host === host);

/** Refuses while compute sessions run: a major upgrade is never rolling (RUNBOOKS.md). */
async function refuseRunningSessions(ctx: ClusterContext, hops: Hop[]): Promise<void> {
  const major = hops.find(isMajor);
  const active = await activeSessions(ctx.manager);
  if (active === 0) return;
  if (major) {
    throw new UpgradeError({
      what: `upgrade ${hops[0]!.from} → ${hops.at(-1)!.to}`,
      why: `${active} compute session(s) are running, and ${major.from} → ${major.to} is a major upgrade, which is never rolling`,
      hint: "stop every workload and announce the downtime, then run the upgrade again",
      exitCode: 3,
      permanent: true,
    });
  }
  await ctx.warn(`${active} compute session(s) are running during a minor upgrade; stop mission-critical workloads first`);
}

// ---------------------------------------------------------------- the steps of one hop
// Each needs the hop (its titles name the releases), so each is a factory taking it.

export const prepareNewEnvironments = (hop: Hop): Step<ClusterContext> => ({
  id: "prepare-environments",
  title: `New Python environments for ${hop.to}`,
  when: (ctx) => (ctx.environments.get(hop.to)?.length ?? 0) > 0,
  async run(ctx) {
    // One host's environment does not wait for another's (each has its own connection).
    await Promise.all(
      ctx.environments.get(hop.to)!.map(async (change) => {
        await prepareEnvironment(change, hop.to, ctx.packageIndex);
        await ctx.info(`${change.host.name}: ${change.next} (Python ${change.python}) has ${hop.to}; the service still runs ${change.previous}`);
      }),
    );
    return ctx.environments.get(hop.to)!.map((c) => c.next).join(", ");
  },
});

export const stopManager = (hop: Hop): Step<ClusterContext> => ({
  id: "stop-manager",
  title: `Stop the manager (${hop.from} → ${hop.to})`,
  async check(ctx) {
    if (!(await isRunning(ctx.manager))) return "not running";
    // Running the target already: a resumed hop that got past start-manager.
    return (await installedVersion(ctx.manager)) === hop.to ? `already running ${hop.to}` : undefined;
  },
  run: async (ctx) => stopComponent(ctx.manager),
});

export const pairSchemaStep = (hop: Hop): Step<ClusterContext> => {
  const rule = pairRule(hop);
  return {
    id: "pair-schema-step",
    // Without a rule the step never runs (when), so this title is never shown.
    title: rule ? `Bring the schema to ${rule.revision} with the ${hop.from} package` : `No schema step of its own for ${hop.from} → ${hop.to}`,
    when: () => rule !== undefined,
    async check(ctx) {
      if (rule!.manual) await ctx.warn(`${hop.from} → ${hop.to}: ${rule!.manual}`);
      const installed = await installedVersion(ctx.manager);
      if (installed !== hop.from) return `the manager package is already ${installed}`;
      const schema = await schemaState(ctx.manager, rule!.revision);
      return schema.current.includes(rule!.revision) ? `schema already at ${rule!.revision}` : undefined;
    },
    async run(ctx) {
      const schema = await schemaState(ctx.manager, rule!.revision);
      const direction = schema.hasAncestor ? "downgrade" : "upgrade";
      await migration(ctx, hop, direction, rule!.revision);
      return `alembic ${direction} ${rule!.revision}: ${rule!.why}`;
    },
  };
};

export const installManager = (hop: Hop): Step<ClusterContext> => ({
  id: "install-manager",
  title: `pip install -U backend.ai-manager==${hop.to}`,
  check: async (ctx) => ((await installedVersion(ctx.manager)) === hop.to ? `already ${hop.to}` : undefined),
  async run(ctx) {
    const change = changeOf(ctx, hop, ctx.manager);
    if (!change) return pipInstall(ctx.manager, hop.to, ctx.packageIndex);
    await switchEnvironment(ctx.manager, change.link, change.next);
    return `switched ${change.link} to ${change.next} (Python ${change.python}); ${change.previous} kept until the hop is verified`;
  },
  verify: async (ctx) => expectInstalled(ctx.manager, hop.to),
});

export const migrateSchema = (hop: Hop): Step<ClusterContext> => ({
  id: "migrate-schema",
  title: "alembic upgrade head",
  async check(ctx) {
    const schema = await schemaState(ctx.manager);
    return atHead(schema) ? `already at head ${schema.heads.join(", ")}` : undefined;
  },
  run: async (ctx) => migration(ctx, hop, "upgrade", "head"),
});

export const fillMissingRevisions = (hop: Hop): Step<ClusterContext> => ({
  id: "apply-missing-revisions",
  title: `backend.ai mgr schema apply-missing-revisions ${hop.from}`,
  when: () => needsMissingRevisions(hop),
  // It runs before the manager starts; a manager running the target means it ran already.
  check: async (ctx) => ((await isRunning(ctx.manager)) && (await installedVersion(ctx.manager)) === hop.to ? "ran before the manager was started" : undefined),
  run: async (ctx) => {
    const out = await applyMissingRevisions(ctx.manager, hop.from);
    return out.trim().split("\n").filter(Boolean).length + " line(s) of output";
  },
});

export const startManager = (hop: Hop): Step<ClusterContext> => ({
  id: "start-manager",
  title: `Start the manager ${hop.to}`,
  check: async (ctx) => ((await isRunning(ctx.manager)) ? "already running" : undefined),
  run: async (ctx) => startComponent(ctx.manager),
});

export const upgradeComponents = (hop: Hop): Step<ClusterContext> => ({
  id: "upgrade-components",
  title: `Other components to ${hop.to}`,
  async run(ctx) {
    for (const host of ctx.others) {
      const installed = await installedVersion(host);
      if (installed === hop.to && (await isRunning(host))) continue;
      const change = changeOf(ctx, hop, host);
      await stopComponent(host);
      if (change) await switchEnvironment(host, change.link, change.next);
      else if (installed !== hop.to) await pipInstall(host, hop.to, ctx.packageIndex);
      await expectInstalled(host, hop.to);
      await startComponent(host);
      await ctx.info(`${host.name}: ${hop.to}, running`);
    }
  },
});

export const verifyVersions = (hop: Hop): Step<ClusterContext> => ({
  id: "verify-versions",
  title: `Every host reports ${hop.to}`,
  async run(ctx) {
    for (const host of [ctx.manager, ...ctx.others]) {
      await expectInstalled(host, hop.to);
      if (!(await isRunning(host))) throw new UpgradeError({ what: `verify ${host.name}`, why: "it is not running" });
    }
    const schema = await schemaState(ctx.manager);
    if (!atHead(schema)) throw new UpgradeError({ what: "verify the schema", why: `at ${schema.current.join(", ") || "no revision"}, head is ${schema.heads.join(", ")}` });
  },
});

export const removeOldEnvironments = (hop: Hop): Step<ClusterContext> => ({
  id: "remove-old-environments",
  title: `Remove the environments ${hop.to} no longer runs in`,
  when: (ctx) => (ctx.environments.get(hop.to)?.length ?? 0) > 0,
  async run(ctx) {
    for (const change of ctx.environments.get(hop.to)!) await removeEnvironment(change.host, change.previous);
    return `removed ${ctx.environments.get(hop.to)!.map((c) => c.previous).join(", ")}`;
  },
});

/** Runbook 3, one hop, top to bottom; steps that do not apply to the hop are skipped by `when`. */
export const hopSteps = (hop: Hop): Array<Step<ClusterContext>> => [
  prepareNewEnvironments(hop),
  stopManager(hop),
  pairSchemaStep(hop),
  installManager(hop),
  migrateSchema(hop),
  fillMissingRevisions(hop),
  startManager(hop),
  upgradeComponents(hop),
  verifyVersions(hop),
  removeOldEnvironments(hop),
];

async function expectInstalled(host: Host, version: string): Promise<void> {
  const installed = await installedVersion(host);
  if (installed !== version) {
    throw new UpgradeError({ what: `verify ${host.name}`, why: `it reports ${installed ?? "no package installed"}, expected ${version}` });
  }
}

/** An Alembic move whose failure names the hop and the revisions; the manager stays stopped. */
async function migration(ctx: ClusterContext, hop: Hop, direction: "upgrade" | "downgrade", target: string): Promise<void> {
  const before = await schemaState(ctx.manager).catch(() => undefined);
  try {
    await alembic(ctx.manager, direction, target);
  } catch (err) {
    const after = await schemaState(ctx.manager).catch(() => undefined);
    throw new UpgradeError({
      what: `hop ${hop.from} → ${hop.to}: alembic ${direction} ${target}`,
      why: `${err instanceof UpgradeError ? err.why : String(err)} (schema was at ${before?.current.join(", ") || "?"}, now at ${after?.current.join(", ") || "?"}, head ${after?.heads.join(", ") || "?"})`,
      hint: "the manager was left stopped on purpose: fix the migration, then run the upgrade again",
      permanent: true,
      cause: err,
    });
  }
}
