import { badInput } from "../../lib/errors";
import { parseDuration } from "../../lib/wait";

/** The `upgrade` command's flags as commander parses them (strings; the parsers below read them). */
export interface UpgradeFlags {
  stack: string[];
  stacksFile?: string;
  concurrency: string;
  keepGoing?: boolean;
  maxFailures?: string;
  waveDelay?: string;
  onLocked: string;
  notify: string[];
  notifyTimeout: string;
  notifyBackoff: string;
  cwd: string;
  runbook: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  message?: string;
  release?: string;
  drainTimeout: string;
  pollInterval: string;
  metricPeriod: string;
  bakeTime: string;
  verifyTimeout: string;
  onFailure: string;
  restorePoint: boolean;
  sshUser?: string;
  sshKey?: string;
  sshPort?: string;
  sshHost?: string;
  knownHosts?: string;
  sshConfig?: string;
  waitDedicated?: boolean;
  servicesPort: string;
  servicesTimeout: string;
  report?: string;
  forceUnlock?: boolean;
  repair?: boolean;
  verbose?: boolean;
  window: string[];
  expectedDuration?: string;
}

export const collect = (value: string, previous: string[]) => [...previous, value];

export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw badInput(`read ${flag}`, `${JSON.stringify(text)} is not a positive whole number`);
  return n;
}

/** --max-failures: a count of failed stacks, or a percentage of a wave ("50%"). */
export function failureLimit(text: string): number | { percent: number } {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (!percent) return positiveInt("--max-failures", text);
  const p = Number(percent[1]);
  if (p <= 0 || p >= 100) throw badInput("read --max-failures", `${JSON.stringify(text)} is not a share of a wave between 0% and 100%`, "e.g. --max-failures 10%, or a count: --max-failures 2");
  return { percent: p };
}

export function webhookUrls(urls: string[]): string[] {
  for (const u of urls) {
    let ok = false;
    try {
      ok = /^https?:$/.test(new URL(u).protocol);
    } catch {
      /* not a URL */
    }
    if (!ok) throw badInput("read --notify", "it is not an http(s) URL", "pass the webhook URL, e.g. https://hooks.slack.com/services/…");
  }
  return urls;
}

/** A default in ms as a flag's text (30m, 15s, 500ms): `--help` shows the defaults the code uses. */
export const durationText = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

export function duration(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw badInput(`read ${flag}`, `${JSON.stringify(text)} is not a duration`, "use e.g. 30m, 15s, 1h30m");
  return ms;
}

export function port(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw badInput(`read ${flag}`, `${JSON.stringify(text)} is not a TCP port`);
  return n;
}

/**
 * UPGRADE_ORCHESTRATOR_TEST_NOW (tests only): an ISO 8601 instant the run's clock starts at, then
 * moves on in real time; what the maintenance-window checks read. Unset: the real clock.
 */
export function testClock(start: string | undefined): (() => number) | undefined {
  if (start === undefined) return undefined;
  const at = Date.parse(start);
  if (Number.isNaN(at)) throw badInput("read UPGRADE_ORCHESTRATOR_TEST_NOW", `${JSON.stringify(start)} is not an ISO 8601 instant`, "e.g. 2026-12-12T02:00:00Z, or unset it (it is for tests)");
  const offset = at - Date.now();
  return () => Date.now() + offset;
}
