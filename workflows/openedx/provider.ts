import type * as pulumi from "@pulumi/pulumi";
import { awsSettingsFromEnv, createAwsClients } from "../../lib/aws";
import { describe, refused } from "../../lib/errors";
import type { UpgradeEvent } from "../../lib/events";
import { asProviderErrors, inPlaceDiff, partialFailure, providerMessage, providerSettings, stepOutcome } from "../../lib/dynamicProvider";
import { createProgress } from "../../lib/progress";
import { runSteps, type Step } from "../../lib/steps";
import { formatDuration } from "../../lib/wait";
import type { Cloud } from "./cloud";
import { fleetContext, rollBack, whereDnsPoints, type FleetContext } from "./context";
import { liveSteps, prepareSteps, ROLLBACK_STEPS } from "./runbook";
import { Hosts } from "./hosts";
import { parseFleetSettings, type FleetSettings, type Role } from "./settings";

/**
 * The OpenEdxFleet provider's work (resource.ts holds only the thin serialized provider).
 * State (outputs): `release` and `phase` as last completed, `liveRelease` (what serves),
 * blue as the operator's selectors found it (`blueFleet`, by role; `blueIds`), the green ids, a
 * fingerprint of the settings. No SSH key. A live run after `prepared` of the same release uses
 * the recorded blue, so what the selectors match later (green carries blue's tags) changes nothing.
 */
export interface FleetOutputs {
  release: string;
  phase: "prepared" | "live";
  liveRelease: string;
  blueFleet: Record<Role, string[]>;
  blueIds: string[];
  greenIds: string[];
  fingerprint: string;
}

type Inputs = Record<string, unknown>;

const fleetSettings = providerSettings("fleet settings", parseFleetSettings);

export async function check(_olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult> {
  const parsed = fleetSettings.check(news);
  return "failed" in parsed ? parsed.failed : { inputs: news };
}

export async function diff(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
  const settings = fleetSettings.tryRead(news);
  const fingerprint = settings && fingerprintOf(settings);
  return inPlaceDiff(olds.release !== news.release || olds.phase !== news.phase || olds.fingerprint !== fingerprint);
}

export async function create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
  const settings = settingsOf(inputs);
  const id = `openedx:${settings.fleet}`;
  const outs = await converge(id, settings, undefined, inputs.__provider);
  return { id, outs };
}

export async function update(id: string, olds: Inputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
  return { outs: await converge(id, settingsOf(news), olds as Partial<FleetOutputs>, news.__provider) };
}

const settingsOf = (inputs: Inputs): FleetSettings => fleetSettings.read(inputs);

/** The settings that decide the work, without the SSH key. */
export function fingerprintOf(s: FleetSettings): string {
  const { ssh, ...rest } = s;
  const { privateKey: _key, ...sshRest } = ssh;
  return JSON.stringify({ ...rest, ssh: sshRest, release: undefined, phase: undefined });
}

/**
 * Brings the fleet to the phase asked for. Adopting (a new resource, live at blue's release)
 * checks the blue fleet only; `prepared` stands green up; `live` performs the window's steps,
 * rolling back to blue on a failure while blue exists.
 */
async function converge(id: string, settings: FleetSettings, olds: Partial<FleetOutputs> | undefined, provider: unknown): Promise<FleetOutputs> {
  const { info, warn } = createProgress(`openedx ${settings.fleet} ${settings.release}`);
  const aws = createAwsClients(awsSettingsFromEnv());
  const cloud: Cloud = { aws, settings, info, pollMs: settings.timing.pollSeconds * 1000 };
  const hosts = new Hosts(settings);
  const recorded = olds?.phase === "prepared" && olds.release === settings.release && olds.blueFleet?.web?.length ? olds.blueFleet : undefined;
  let blue: Record<Role, string[]> = recorded ?? { web: [], worker: [] };
  const outputs = (phase: "prepared" | "live", liveRelease: string, ctx?: FleetContext): FleetOutputs => {
    if (ctx) blue = { web: ctx.blue.web.map((i) => i.id), worker: ctx.blue.worker.map((i) => i.id) };
    return {
      release: settings.release,
      phase,
      liveRelease,
      blueFleet: blue,
      blueIds: [...blue.web, ...blue.worker],
      greenIds: ctx ? [...ctx.green.web, ...ctx.green.worker].map((i) => i.id) : [],
      fingerprint: fingerprintOf(settings),
    };
  };
  return asProviderErrors(async () => {
    const adopting = settings.phase === "live" && settings.release === settings.blue.release;
    if (adopting) {
      const ctx = await fleetContext(settings, cloud, hosts, info, warn, "live");
      const sites = ctx.sites.map(({ site, dns }) => `${site.name} behind ${dns}`).join(", ");
      const out = outputs("live", settings.release, ctx);
      await info(`adopted: blue ${out.blueIds.join(", ")} serves ${settings.release} (${sites})`);
      return { ...out, greenIds: [] };
    }
    const liveBefore = olds?.liveRelease ?? settings.blue.release;
    if (settings.phase === "prepared") {
      const ctx = await fleetContext(settings, cloud, hosts, info, warn, "prepared");
      await runPhase("prepared", prepareSteps, ctx, info);
      return outputs("prepared", liveBefore, ctx);
    }
    // live
    if (olds?.liveRelease === settings.release && olds.phase === "live") {
      blue = olds.blueFleet ?? blue;
      return { ...outputs("live", settings.release), greenIds: olds.greenIds ?? [] };
    }
    const ctx = await fleetContext(settings, cloud, hosts, info, warn, "live", recorded);
    if (ctx.green.web.length < ctx.blue.web.length || ctx.green.worker.length < ctx.blue.worker.length) {
      throw refused(
        `cut over to ${settings.release}`,
        `the green fleet is not there (web ${ctx.green.web.length}/${ctx.blue.web.length}, worker ${ctx.green.worker.length}/${ctx.blue.worker.length}); ${await whereDnsPoints(ctx)}`,
        `run the update with phase: prepared first`,
      );
    }
    const failure = await runPhase("live", liveSteps, ctx, info);
    if (failure) {
      const { step, error } = failure;
      const reason = providerMessage(error);
      if (ROLLBACK_STEPS.has(step)) {
        await warn(`step ${step} failed; rolling back to blue`);
        let rolled: string;
        try {
          rolled = `rolled back to blue: ${(await rollBack(ctx)).join("; ")}`;
        } catch (err) {
          rolled = `the rollback to blue failed too (${describe(err).replace(/\s*\n\s*/g, " ")})`;
        }
        const message = `Open edX cut-over to ${settings.release} failed in step ${step}: ${reason}. ${rolled}. ${await whereDnsPoints(ctx)}. Migrations already applied were not reversed.`;
        throw partialFailure(id, outputs("prepared", liveBefore, ctx), provider, message);
      }
      throw partialFailure(id, outputs("live", settings.release, ctx), provider, `Open edX cut-over to ${settings.release}: green serves, but step ${step} failed: ${reason}. ${await whereDnsPoints(ctx)}.`);
    }
    return outputs("live", settings.release, ctx);
  }).finally(() => {
    hosts.closeAll();
    aws.destroy();
  });
}

/** Runs a phase's steps, reporting each; returns the first failure (the step's id and its error). */
async function runPhase(phase: string, steps: Array<Step<FleetContext>>, ctx: FleetContext, info: (m: string) => Promise<void>): Promise<{ step: string; error: unknown } | undefined> {
  let failedStep: string | undefined;
  const outcome = await runSteps(steps, ctx, {
    dryRun: false,
    emit: (event: UpgradeEvent) => {
      const what = stepOutcome(event);
      if (what === undefined || event.type !== "step-end") return;
      if (event.status === "failed") failedStep ??= event.step;
      void info(`${phase} ${event.step} [${formatDuration(event.durationMs)} ${event.durationMs}ms]: ${what}`);
    },
  });
  if (outcome.failure === undefined) return undefined;
  if (phase === "prepared") throw outcome.failure;
  return { step: failedStep!, error: outcome.failure };
}


