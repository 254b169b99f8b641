import type * as pulumi from "@pulumi/pulumi";
import { describe, ExitCode, UpgradeError } from "./errors";
import type { UpgradeEvent } from "./events";
import type { SettingsIssue } from "./settings";

/**
 * What every workflow's dynamic provider needs to speak the engine's protocol the same way.
 *
 * The engine shows a provider's error line by line: `providerMessage` makes it one line with the
 * hint, and a refusal (exit 3) starts with "refused: ", which the driver maps back to exit 3.
 */
export function providerMessage(err: unknown): string {
  if (err instanceof UpgradeError) {
    const text = `${err.exitCode === ExitCode.Refused ? "refused: " : ""}could not ${err.what}: ${err.why}${err.hint ? ` (what to do: ${err.hint})` : ""}`;
    return text.replace(/\s*\n\s*/g, " ");
  }
  return describe(err).replace(/\s*\n\s*/g, " ");
}

/**
 * A failed update as the dynamic-provider protocol's partial failure: the engine records
 * `properties` as the resource's outputs (the last state the system completed), so the next `up`
 * continues from there. The SDK adds its serialized provider (`__provider`) to the outputs of a
 * successful create/update but not to these, and a later refresh cannot load the provider without
 * it, so it is passed through here.
 */
export function partialFailure(id: string, properties: object, provider: unknown, message: string): Error {
  return Object.assign(new Error(message), { id, properties: { ...properties, __provider: provider }, reasons: [message] });
}

/**
 * A workflow's settings as its provider meets them: the inputs without the keys the provider
 * computes (and the SDK's `__provider`), `check`'s failures naming each bad key, and the settings
 * for create/update (a permanent error when they do not parse: retrying cannot fix them).
 */
export function providerSettings<S>(what: string, parse: (raw: Record<string, unknown>) => { settings: S } | { issues: SettingsIssue[] }, computed: string[] = []) {
  const strip = (inputs: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(inputs).filter(([k]) => k !== "__provider" && !computed.includes(k)));
  return {
    strip,
    /** The parsed settings, or check's answer naming every bad key. */
    check(news: Record<string, unknown>): { settings: S } | { failed: pulumi.dynamic.CheckResult } {
      const parsed = parse(strip(news));
      if ("settings" in parsed) return parsed;
      return { failed: { inputs: news, failures: parsed.issues.map((i) => ({ property: i.key.split(/[.[]/)[0]!, reason: `${i.key}: ${i.message}` })) } };
    },
    /** The settings, or undefined when they do not parse (diff compares fingerprints of what parses). */
    tryRead(inputs: Record<string, unknown>): S | undefined {
      const parsed = parse(strip(inputs));
      return "settings" in parsed ? parsed.settings : undefined;
    },
    read(inputs: Record<string, unknown>): S {
      const parsed = parse(strip(inputs));
      if ("issues" in parsed) throw new UpgradeError({ what: `read the ${what}`, why: parsed.issues.map((i) => `${i.key}: ${i.message}`).join("; "), permanent: true });
      return parsed.settings;
    },
  };
}

/** diff's answer: the resource is updated in place (never replaced) when its version or settings changed. */
export const inPlaceDiff = (changes: boolean): pulumi.dynamic.DiffResult => ({ changes, replaces: [], deleteBeforeReplace: false });

/** A finished step as one progress line ("done (note)", "skipped (why)", "failed: error"); undefined for other events. */
export function stepOutcome(event: UpgradeEvent): string | undefined {
  if (event.type !== "step-end") return undefined;
  const what = event.status === "failed" ? `failed: ${event.error}` : event.status === "skipped" ? `skipped (${event.note})` : `done${event.note ? ` (${event.note})` : ""}`;
  return what.replace(/\s*\n\s*/g, " ");
}

/** The provider's work with an UpgradeError turned into the one-line message the engine shows (providerMessage). */
export async function asProviderErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof UpgradeError) throw new Error(providerMessage(err));
    throw err;
  }
}

/** Canonical JSON (sorted keys, undefined left out): settings fingerprints compared by diff. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The thin provider every workflow resource registers. It is serialized into the state with its
 * closure, so it captures only the implementation module's path and loads that module (and its
 * dependencies) when the engine calls it. Taking a resource out of a stack leaves the system as it is.
 */
export function providerLoadedFrom(implementation: string): pulumi.dynamic.ResourceProvider {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    check: (olds, news) => require(implementation).check(olds, news),
    diff: (_id, olds, news) => require(implementation).diff(olds, news),
    create: (inputs) => require(implementation).create(inputs),
    update: (id, olds, news) => require(implementation).update(id, olds, news),
    delete: async () => undefined,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** How a workflow resource reaches a host over SSH (strict host-key checking, no trust on first use). */
export interface SshArgs {
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** The private key; always stored as a Pulumi secret. */
  privateKey: pulumi.Input<string>;
  /** known_hosts holding the host's key (default ~/.ssh/known_hosts). */
  knownHostsPath?: pulumi.Input<string>;
}
