import type * as pulumi from "@pulumi/pulumi";
import { UpgradeError } from "../../lib/errors";
import type { UpgradeEvent } from "../../lib/events";
import { runSteps } from "../../lib/steps";
import { asProviderErrors, inPlaceDiff, partialFailure, providerMessage, providerSettings, stepOutcome } from "../../lib/dynamicProvider";
import { loadCatalog } from "./catalog";
import { hopDone, hopSteps, preflight, type ClusterContext } from "./runbook";
import { isMajor, type Hop } from "./hopRules";
import { createProgress } from "../../lib/progress";
import { connectHost, installedVersion, type Host } from "./remote";
import { fingerprintOf, parseClusterSettings, type ClusterSettings } from "./settings";
import { planPath, type Catalog } from "./versions";
import { missingInterpreters } from "./python";

/**
 * The BackendAiCluster provider's work (resource.ts holds only a thin provider that loads this
 * module at call time, as a dynamic provider must).
 *
 * Inputs: the settings (settings.ts) with the target `version`. `check` adds `plannedPath`, the
 * hops from the version in state to the target, so the preview shows them; a forbidden path fails
 * the preview with its reason and the nearest allowed path. Outputs: the settings without the SSH
 * keys, `version` = the last version the whole cluster completed, `plannedPath`.
 */
export interface ClusterOutputs {
  version: string;
  plannedPath: string[];
  components: string[];
  fingerprint: string;
}

const catalogOf = (settings: Pick<ClusterSettings, "catalog" | "packageIndex">, warn: (m: string) => Promise<void>): Promise<Catalog> =>
  loadCatalog(settings.catalog, settings.packageIndex, warn);

/** What the engine passes: the settings plus our computed `plannedPath` (and the engine's own keys). */
type Inputs = Record<string, unknown> & { version?: string; plannedPath?: string[] };
const clusterSettings = providerSettings("cluster settings", parseClusterSettings, ["plannedPath"]);

export async function check(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult> {
  const parsed = clusterSettings.check(news);
  if ("failed" in parsed) return parsed.failed;
  const target = parsed.settings.version;
  const from = typeof olds.version === "string" ? olds.version : undefined;
  if (from === undefined) {
    // A new resource adopts the cluster: the path is planned from the installed version at create.
    return { inputs: { ...news, plannedPath: [] } };
  }
  if (from === target) return { inputs: { ...news, plannedPath: olds.plannedPath ?? [] } };
  const plan = planPath(await catalogOf(parsed.settings, createProgress(`backend.ai ${target}`).warn), from, target);
  if (!plan.allowed) return { inputs: news, failures: [{ property: "version", reason: refusal(plan) }] };
  const gaps = missingInterpreters(plan, parsed.settings.hosts);
  if (gaps.length > 0) {
    const byHop = new Map<string, string[]>();
    for (const g of gaps) byHop.set(`${g.hop.from} → ${g.hop.to} needs Python ${g.needs}`, [...(byHop.get(`${g.hop.from} → ${g.hop.to} needs Python ${g.needs}`) ?? []), g.component]);
    const what = [...byHop].map(([hop, components]) => `${hop} (Requires-Python of the release), and no interpreter in \`pythons\` matches on ${components.join(", ")}`).join("; ");
    const example = gaps[0]!.needs.match(/>=\s*(3\.\d+)/)?.[1] ?? "3.12";
    return { inputs: news, failures: [{ property: "hosts", reason: `Backend.AI ${plan.from} → ${plan.to}: hop ${what}; name one per host, e.g. pythons: { "${example}": "/usr/bin/python${example}" } (nothing was stopped)` }] };
  }
  return { inputs: { ...news, plannedPath: plan.path } };
}

function refusal(plan: Extract<ReturnType<typeof planPath>, { allowed: false }>): string {
  const nearest = plan.nearest ? `; the nearest allowed change is to ${plan.nearest.to}: ${[plan.from, ...plan.nearest.path].join(" → ")}` : "";
  return `Backend.AI ${plan.from} → ${plan.to} is not an allowed upgrade: ${plan.reason}${nearest}`;
}

export async function diff(olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
  const settings = clusterSettings.tryRead(news);
  const fingerprint = settings && fingerprintOf(settings);
  return inPlaceDiff(olds.version !== news.version || fingerprint !== olds.fingerprint);
}

/** Adopts an existing cluster: plans from the manager's installed version to the target. */
export async function create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
  const settings = settingsOf(inputs);
  const manager = settings.hosts.find((h) => h.component === "manager")!;
  const id = `backendai:${manager.ssh.user}@${manager.ssh.host}:${manager.ssh.port ?? 22}`;
  const outs = await converge(id, settings, undefined, inputs.__provider);
  return { id, outs };
}

export async function update(id: string, olds: Record<string, unknown>, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
  const settings = settingsOf(news);
  const outs = await converge(id, settings, typeof olds.version === "string" ? olds.version : undefined, news.__provider);
  return { outs };
}

const settingsOf = (inputs: Inputs): ClusterSettings => clusterSettings.read(inputs);

/**
 * Brings the cluster from `from` (the version in state; undefined: read it from the manager) to
 * the target, hop by hop. Every hop's steps check the hosts before they act, and a hop the hosts
 * show as done is skipped, so running this again after a crash finishes without redoing work.
 * A failure leaves the state at the last hop the whole cluster completed.
 */
async function converge(id: string, settings: ClusterSettings, from: string | undefined, provider: unknown): Promise<ClusterOutputs> {
  const { info, warn } = createProgress(`backend.ai ${settings.version}`);
  const timeoutMs = (settings.commandTimeoutSeconds ?? 300) * 1000;
  const hosts: Host[] = [];
  const outputs = (version: string, plannedPath: string[]): ClusterOutputs => ({
    version,
    plannedPath,
    components: settings.hosts.map((h) => h.component),
    fingerprint: fingerprintOf(settings),
  });
  return asProviderErrors(upgradeCluster).finally(() => {
    for (const host of hosts) host.close();
  });

  async function upgradeCluster(): Promise<ClusterOutputs> {
    for (const host of settings.hosts) hosts.push(await connectHost(host, timeoutMs));
    const manager = hosts.find((h) => h.settings.component === "manager")!;
    const ctx: ClusterContext = { manager, others: hosts.filter((h) => h !== manager), packageIndex: settings.packageIndex, requiresPython: {}, environments: new Map(), info, warn };
    const start = from ?? (await installedVersion(manager));
    if (!start) {
      throw new UpgradeError({
        what: `adopt the Backend.AI cluster of ${manager.name}`,
        why: "backend.ai-manager is not installed in its Python environment",
        hint: "BackendAiCluster upgrades an installed cluster; check hosts[].python",
        permanent: true,
      });
    }
    const plan = planPath(await catalogOf(settings, warn), start, settings.version);
    if (!plan.allowed) throw new UpgradeError({ what: "plan the upgrade", why: refusal(plan), exitCode: 3, permanent: true });
    for (const note of plan.notes) await info(note);
    ctx.requiresPython = plan.requiresPython;
    const hops: Hop[] = plan.path.map((to, i) => ({ from: i === 0 ? plan.from : plan.path[i - 1]!, to }));
    if (hops.length === 0) {
      await info(`already at ${plan.to}`);
      return outputs(plan.to, []);
    }
    await info(`plan: ${[plan.from, ...plan.path].join(" → ")}`);
    let completed = plan.from;
    const pending: Hop[] = [];
    for (const hop of hops) {
      if (pending.length === 0 && (await hopDone(ctx, hop))) {
        await info(`hop ${hop.from} → ${hop.to}: already done on every host, not repeated`);
        completed = hop.to;
      } else {
        pending.push(hop);
      }
    }
    if (pending.length > 0) await preflight(ctx, pending);
    for (const hop of pending) {
      await info(`hop ${hop.from} → ${hop.to}${isMajor(hop) ? " (major)" : ""}: starting`);
      const outcome = await runSteps(hopSteps(hop), ctx, { dryRun: false, emit: (event) => void reportStep(event, hop, info) });
      if (outcome.failure !== undefined) throw partialFailure(id, outputs(completed, plan.path), provider, `Backend.AI upgrade stopped in hop ${hop.from} → ${hop.to}; the cluster's completed version stays ${completed}: ${providerMessage(outcome.failure)}`);
      completed = hop.to;
      await info(`hop ${hop.from} → ${hop.to}: done`);
    }
    return outputs(completed, plan.path);
  }
}


async function reportStep(event: UpgradeEvent, hop: Hop, info: (m: string) => Promise<void>): Promise<void> {
  const outcome = stepOutcome(event);
  if (outcome !== undefined && event.type === "step-end") await info(`hop ${hop.from} → ${hop.to}: ${event.step} ${outcome}`);
}

