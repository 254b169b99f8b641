/**
 * Backend.AI versions and upgrade paths (RUNBOOKS.md, runbook 3). Pure: no I/O.
 *
 * Versions are releases `YY.MM.patch` (23.09.8; from 2025 `YY.N.patch`, 25.1.0). Pre-releases
 * (rc, alpha, beta, dev) are not releases. Paths are planned over a release catalog (the real
 * release list with dates; gaps are real), never by arithmetic:
 *  - minor upgrades walk consecutive releases of a line, skipping none;
 *  - a major upgrade leaves a line only from its gate: the latest release of that line published
 *    before the next line's first release ("the very latest minor of the prior release");
 *  - no line is skipped.
 */
export interface Release {
  version: string;
  /** Publication date, YYYY-MM-DD. */
  date: string;
}

export interface Catalog {
  releases: Release[];
  source?: string;
  readOn?: string;
}

export interface Parsed {
  year: number;
  line: number;
  patch: number;
}

export type PlanResult =
  | { allowed: true; from: string; to: string; path: string[]; notes: string[] }
  | { allowed: false; from: string; to: string; reason: string; nearest?: { to: string; path: string[] } };

const VERSION = /^(\d{2})\.(\d{1,2})\.(\d+)$/;
const PRERELEASE = /^(\d{2})\.(\d{1,2})\.(\d+)[.-]?(a|b|rc|alpha|beta|dev|post)\d*$/i;

export function parseVersion(text: string): Parsed | { error: string } {
  const trimmed = text.trim();
  const m = VERSION.exec(trimmed);
  if (m) return { year: Number(m[1]), line: Number(m[2]), patch: Number(m[3]) };
  if (PRERELEASE.test(trimmed)) return { error: `${trimmed} is a pre-release (release candidates, alphas, betas and dev builds are not releases)` };
  return { error: `${JSON.stringify(trimmed)} is not a Backend.AI version (expected YY.MM.patch, e.g. 23.09.8)` };
}

const key = (p: Parsed) => p.year * 1_000_000 + p.line * 1_000 + p.patch;
const lineKey = (p: Parsed) => p.year * 1_000 + p.line;
export const lineOf = (version: string) => version.split(".").slice(0, 2).join(".");

interface Indexed extends Release {
  parsed: Parsed;
}

function index(catalog: Catalog): Indexed[] {
  return catalog.releases
    .map((r) => ({ ...r, parsed: parseVersion(r.version) as Parsed }))
    .filter((r) => !("error" in r.parsed))
    .sort((a, b) => key(a.parsed) - key(b.parsed));
}

/** The catalog's spelling of a version ("23.9.8" → "23.09.8"), or undefined when it is not a release. */
function find(releases: Indexed[], p: Parsed): Indexed | undefined {
  return releases.find((r) => key(r.parsed) === key(p));
}

function lines(releases: Indexed[]): number[] {
  return [...new Set(releases.map((r) => lineKey(r.parsed)))].sort((a, b) => a - b);
}

/** The releases of a line, oldest first. */
const ofLine = (releases: Indexed[], line: number) => releases.filter((r) => lineKey(r.parsed) === line);

/**
 * The gate out of `line` towards `next`: its latest release published before, or on the same day
 * as, `next`'s first. Same-day releases ship together: 24.03.11 and 24.09.0 (2024-10-21), and
 * upstream's 24.09 bundles revision_history/24.03.11.json for apply-missing-revisions.
 */
function gate(releases: Indexed[], line: number, next: number): Indexed | undefined {
  const nextFirst = ofLine(releases, next)[0]!;
  return ofLine(releases, line).filter((r) => r.date <= nextFirst.date).at(-1);
}

function unknown(releases: Indexed[], text: string, p: Parsed): string {
  const lineReleases = ofLine(releases, lineKey(p));
  if (lineReleases.length === 0) return `${text} is not in the release catalog (no release of line ${p.year}.${String(p.line).padStart(2, "0")})`;
  const below = lineReleases.filter((r) => r.parsed.patch < p.patch).at(-1);
  const above = lineReleases.find((r) => r.parsed.patch > p.patch);
  return `${text} was never released (the catalog has ${[below, above].filter(Boolean).map((r) => r!.version).join(" and ") || "no neighbour"} on that line)`;
}

/** Plans the strict upgrade path from `fromText` to `toText` over the catalog. */
export function planPath(catalog: Catalog, fromText: string, toText: string): PlanResult {
  const releases = index(catalog);
  const refuse = (reason: string, nearest?: { to: string; path: string[] }): PlanResult => ({ allowed: false, from: fromText, to: toText, reason, ...(nearest ? { nearest } : {}) });
  const fp = parseVersion(fromText);
  if ("error" in fp) return refuse(`current version: ${fp.error}`);
  const tp = parseVersion(toText);
  if ("error" in tp) return refuse(`target version: ${tp.error}`);
  const from = find(releases, fp);
  if (!from) return refuse(`current version: ${unknown(releases, fromText, fp)}`);
  const to = find(releases, tp);
  if (!to) {
    const next = releases.find((r) => key(r.parsed) > key(tp));
    const nearest = next ? planPath(catalog, from.version, next.version) : undefined;
    return refuse(`target version: ${unknown(releases, toText, tp)}`, nearest?.allowed ? { to: next!.version, path: nearest.path } : undefined);
  }
  if (key(tp) < key(fp)) return refuse(`${to.version} is older than ${from.version}: downgrades are not supported (the database schema only moves forward)`);
  if (key(tp) === key(fp)) return { allowed: true, from: from.version, to: to.version, path: [], notes: [`already at ${to.version}`] };

  const notes: string[] = [];
  const path: string[] = [];
  const allLines = lines(releases);
  const route = allLines.filter((l) => l >= lineKey(fp) && l <= lineKey(tp));
  let cur = from;
  const walk = (line: number, until: Indexed) => {
    for (const r of ofLine(releases, line)) if (key(r.parsed) > key(cur.parsed) && key(r.parsed) <= key(until.parsed)) path.push(r.version);
    cur = until;
  };
  for (let i = 0; i + 1 < route.length; i++) {
    const line = route[i]!;
    const next = route[i + 1]!;
    const exit = gate(releases, line, next);
    const nextReleases = ofLine(releases, next);
    if (exit && key(cur.parsed) < key(exit.parsed)) {
      walk(line, exit);
      notes.push(`${exit.version} (${exit.date}) is the latest ${lineOf(exit.version)} release published before ${nextReleases[0]!.version} (${nextReleases[0]!.date}): the major upgrade starts from it`);
    }
    // Entering the next line: at its first release, or, when the current release was published after
    // the next line began, at its first release published since (so no fix or migration is lost).
    const entry = nextReleases.find((r) => r.date >= cur.date);
    if (!entry) return refuse(`no ${lineOf(nextReleases[0]!.version)} release was published after ${cur.version} (${cur.date}); wait for one`);
    if (entry !== nextReleases[0]) notes.push(`${cur.version} (${cur.date}) is newer than ${lineOf(nextReleases[0]!.version)}'s first releases; entering at ${entry.version} (${entry.date}), the first published after it`);
    if (next === lineKey(tp) && key(entry.parsed) > key(tp.valueOf() as Parsed)) {
      const nearestTo = entry.version;
      const nearest = planPath(catalog, from.version, nearestTo);
      return refuse(`${to.version} (${to.date}) was published before ${cur.version} (${cur.date}); upgrading to it could lose that release's fixes and migrations`, nearest.allowed ? { to: nearestTo, path: nearest.path } : undefined);
    }
    path.push(entry.version);
    cur = entry;
  }
  walk(lineKey(tp), to);
  if (route.length > 1) notes.push("within each line the plan walks every release in order (the stricter reading of the rules; the runbook also shows direct jumps into a line)");
  return { allowed: true, from: from.version, to: to.version, path, notes };
}

/** Whether one direct hop (no intermediate release) follows the rules, with the reason when not. */
export function checkHop(catalog: Catalog, fromText: string, toText: string): { allowed: boolean; reason: string } {
  const releases = index(catalog);
  const fp = parseVersion(fromText);
  const tp = parseVersion(toText);
  if ("error" in fp) return { allowed: false, reason: fp.error };
  if ("error" in tp) return { allowed: false, reason: tp.error };
  const from = find(releases, fp);
  const to = find(releases, tp);
  if (!from) return { allowed: false, reason: unknown(releases, fromText, fp) };
  if (!to) return { allowed: false, reason: unknown(releases, toText, tp) };
  if (key(tp) <= key(fp)) return { allowed: false, reason: "not an upgrade" };
  const allLines = lines(releases);
  const [lf, lt] = [lineKey(fp), lineKey(tp)];
  if (lf === lt) {
    const next = ofLine(releases, lf).find((r) => key(r.parsed) > key(fp))!;
    return next === to ? { allowed: true, reason: "the next release of the line" } : { allowed: false, reason: `skips ${next.version}: minor upgrades go through every release` };
  }
  if (allLines.indexOf(lt) !== allLines.indexOf(lf) + 1) {
    const skipped = allLines.filter((l) => l > lf && l < lt).map((l) => lineOf(ofLine(releases, l)[0]!.version));
    return { allowed: false, reason: `skips the major release ${skipped.join(", ")}` };
  }
  const exit = gate(releases, lf, lt);
  if (exit && key(fp) < key(exit.parsed)) return { allowed: false, reason: `a major upgrade starts from ${exit.version}, the latest ${lineOf(exit.version)} release before ${lineOf(to.version)} began` };
  if (to.date < from.date) return { allowed: false, reason: `${to.version} was published before ${from.version}` };
  return { allowed: true, reason: `a major upgrade from ${from.version}, the latest of its line when ${lineOf(to.version)} began` };
}

/** Orders two release versions (negative when a is older); undefined when either is not a release. */
export function compareReleases(a: string, b: string): number | undefined {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if ("error" in pa || "error" in pb) return undefined;
  return key(pa) - key(pb);
}
