/**
 * Backend.AI versions and upgrade paths (RUNBOOKS.md, runbook 3). Pure: no I/O.
 *
 * Versions are releases `YY.MM.patch` (23.09.8; PyPI spells it 23.9.8), from 2025 `YY.N.patch`
 * (25.1.1 … 25.19.2, 26.1.0 …). Pre-releases (rc, alpha, beta, dev) are not releases. Paths are
 * planned over a release catalog (the installable releases with dates; gaps are real), never by
 * arithmetic:
 *  - minor upgrades walk consecutive releases of a line, skipping none (except releases that
 *    cannot be installed: yanked, or tagged without a distribution; the plan names them);
 *  - a major upgrade leaves a line only from its gate: the latest release of that line published
 *    before the next line's first release ("the very latest minor of the prior release");
 *  - no line is skipped, except in the new numbering (25.1 onward) a line whose every release
 *    was published before the current one: such a line was retired by a newer one, and upgrading
 *    into it would lose the current release's fixes (README: Backend.AI, the new numbering).
 */
export interface Release {
  version: string;
  /** Publication (first upload) date, YYYY-MM-DD. */
  date: string;
  /** The release's Requires-Python (PEP 440 specifiers), e.g. ">=3.12,<3.13". */
  requiresPython?: string;
}

/** A version the catalog knows but never plans through: yanked, or tagged without a distribution. */
export interface Skipped {
  version: string;
  why: string;
  date?: string;
}

export interface Catalog {
  releases: Release[];
  skipped?: Skipped[];
  /** Where the catalog came from (said by every refusal that names it). */
  source?: string;
  readOn?: string;
}

export interface Parsed {
  year: number;
  line: number;
  patch: number;
}

export type PlanResult =
  | { allowed: true; from: string; to: string; path: string[]; notes: string[]; requiresPython: Record<string, string> }
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

/** The project's own spelling: two-digit lines up to 24.12 (23.09.8), plain numbers from 25.1 (25.5.2). */
export const spellVersion = (p: Parsed) => `${p.year}.${isNewNumbering(p) ? p.line : String(p.line).padStart(2, "0")}.${p.patch}`;
/** From 2025 Backend.AI numbers its lines YY.N (25.1 … 25.19, 26.1 …), one roughly every month. */
export const isNewNumbering = (p: Parsed) => p.year >= 25;

const key = (p: Parsed) => p.year * 1_000_000 + p.line * 1_000 + p.patch;
const lineKey = (p: Parsed) => p.year * 1_000 + p.line;
export const lineOf = (version: string) => version.split(".").slice(0, 2).join(".");
const lineName = (line: number) => spellVersion({ year: Math.floor(line / 1000), line: line % 1000, patch: 0 }).replace(/\.0$/, "");

interface Indexed extends Release {
  parsed: Parsed;
}

function index(catalog: Catalog): Indexed[] {
  return catalog.releases
    .map((r) => ({ ...r, parsed: parseVersion(r.version) as Parsed }))
    .filter((r) => !("error" in r.parsed))
    .map((r) => ({ ...r, version: spellVersion(r.parsed) }))
    .sort((a, b) => key(a.parsed) - key(b.parsed));
}

const skippedOf = (catalog: Catalog, p: Parsed) => catalog.skipped?.find((s) => { const q = parseVersion(s.version); return !("error" in q) && key(q) === key(p); });

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

/** Where the catalog came from and how to plan over another: every refusal naming the catalog says it. */
export function catalogHint(catalog: Catalog): string {
  return `catalog: ${catalog.source ?? "given in the settings"}; to plan over another, set the cluster's \`catalog\` setting (an index URL, "bundled", or {releases}) or pass \`backendai path --catalog <file|index URL|bundled>\``;
}

function unknown(catalog: Catalog, releases: Indexed[], text: string, p: Parsed): string {
  const skipped = skippedOf(catalog, p);
  if (skipped) return `${text} cannot be installed: ${skipped.why} (${catalogHint(catalog)})`;
  const lineReleases = ofLine(releases, lineKey(p));
  if (lineReleases.length === 0) return `${text} is not in the release catalog (no installable release of line ${lineName(lineKey(p))}; ${catalogHint(catalog)})`;
  const below = lineReleases.filter((r) => r.parsed.patch < p.patch).at(-1);
  const above = lineReleases.find((r) => r.parsed.patch > p.patch);
  return `${text} was never released (the catalog has ${[below, above].filter(Boolean).map((r) => r!.version).join(" and ") || "no neighbour"} on that line; ${catalogHint(catalog)})`;
}

/**
 * The releases to plan over, and the starting point: a cluster may run a release that is no longer
 * installable (yanked since); it is placed by its date, and never planned through.
 */
function planningIndex(catalog: Catalog, fp: Parsed): { releases: Indexed[]; from?: Indexed; note?: string } {
  const releases = index(catalog);
  const from = find(releases, fp);
  if (from) return { releases, from };
  const skipped = skippedOf(catalog, fp);
  if (!skipped?.date) return { releases };
  const start: Indexed = { version: spellVersion(fp), date: skipped.date, parsed: fp };
  const all = [...releases, start].sort((a, b) => key(a.parsed) - key(b.parsed));
  return { releases: all, from: start, note: `${start.version} runs now but ${skipped.why}; the plan starts from it` };
}

/** Plans the strict upgrade path from `fromText` to `toText` over the catalog. */
export function planPath(catalog: Catalog, fromText: string, toText: string): PlanResult {
  const refuse = (reason: string, nearest?: { to: string; path: string[] }): PlanResult => ({ allowed: false, from: fromText, to: toText, reason, ...(nearest ? { nearest } : {}) });
  const fp = parseVersion(fromText);
  if ("error" in fp) return refuse(`current version: ${fp.error}`);
  const tp = parseVersion(toText);
  if ("error" in tp) return refuse(`target version: ${tp.error}`);
  const { releases, from, note: startNote } = planningIndex(catalog, fp);
  if (!from) return refuse(`current version: ${unknown(catalog, releases, fromText, fp)}`);
  // A downgrade is refused whatever the catalog holds (the database schema only moves forward).
  if (key(tp) < key(fp)) return refuse(`${toText} is older than ${from.version}: downgrades are not supported (the database schema only moves forward)`);
  const to = key(tp) === key(fp) ? from : find(index(catalog), tp);
  if (!to) {
    const next = releases.find((r) => key(r.parsed) > key(tp) && r !== from);
    const nearest = next ? planPath(catalog, from.version, next.version) : undefined;
    return refuse(`target version: ${unknown(catalog, releases, toText, tp)}`, nearest?.allowed ? { to: next!.version, path: nearest.path } : undefined);
  }
  if (key(tp) === key(fp)) return { allowed: true, from: from.version, to: to.version, path: [], notes: [`already at ${to.version}`], requiresPython: {} };

  const notes: string[] = startNote ? [startNote] : [];
  const path: string[] = [];
  const allLines = lines(releases);
  let cur = from;
  const walk = (line: number, until: Indexed) => {
    for (const r of ofLine(releases, line)) if (key(r.parsed) > key(cur.parsed) && key(r.parsed) <= key(until.parsed)) path.push(r.version);
    cur = until;
  };
  while (lineKey(cur.parsed) < lineKey(tp)) {
    const line = lineKey(cur.parsed);
    let next = allLines[allLines.indexOf(line) + 1]!;
    const exit = gate(releases, line, next);
    if (exit && key(cur.parsed) < key(exit.parsed)) {
      const first = ofLine(releases, next)[0]!;
      walk(line, exit);
      notes.push(`${exit.version} (${exit.date}) is the latest ${lineOf(exit.version)} release published before ${first.version} (${first.date}): the major upgrade starts from it`);
    }
    // Entering the next line: at its first release, or, when the current release was published after
    // the next line began, at its first release published since (so no fix or migration is lost).
    let entry = ofLine(releases, next).find((r) => r.date >= cur.date);
    if (!entry && isNewNumbering(ofLine(releases, next)[0]!.parsed)) {
      // New numbering: fixes land on main first and are backported, so a line cut from main after the
      // current release has its fixes; the lines cut before it and done since were retired by newer ones.
      const later = allLines
        .filter((l) => l > next && l <= lineKey(tp))
        .find((l) => ofLine(releases, l)[0]!.date >= cur.date || (l === lineKey(tp) && ofLine(releases, l).some((r) => r.date >= cur.date)));
      if (later !== undefined) {
        const retired = allLines.filter((l) => l >= next && l < later).map(lineName);
        notes.push(`${retired.join(", ")} skipped: cut from main before ${cur.version} (${cur.date}), and ${lineName(next)} has no release since, so entering it would lose the fixes of ${cur.version}; ${lineName(later)} has them (every fix lands on main first; from 25.1 a line is retired when a newer one is cut)`);
        next = later;
        entry = ofLine(releases, next).find((r) => r.date >= cur.date);
      }
    }
    const nextFirst = ofLine(releases, next)[0]!;
    if (!entry) return refuse(`no ${lineOf(nextFirst.version)} release was published after ${cur.version} (${cur.date}); wait for one`);
    if (entry !== nextFirst) notes.push(`${cur.version} (${cur.date}) is newer than ${lineOf(nextFirst.version)}'s first releases; entering at ${entry.version} (${entry.date}), the first published after it`);
    if (next === lineKey(tp) && key(entry.parsed) > key(tp)) {
      const nearestTo = entry.version;
      const nearest = planPath(catalog, from.version, nearestTo);
      return refuse(`${to.version} (${to.date}) was published before ${cur.version} (${cur.date}); upgrading to it could lose that release's fixes and migrations`, nearest.allowed ? { to: nearestTo, path: nearest.path } : undefined);
    }
    path.push(entry.version);
    cur = entry;
  }
  walk(lineKey(tp), to);
  if (lineKey(fp) !== lineKey(tp)) notes.push("within each line the plan walks every release in order (the stricter reading of the rules; the runbook also shows direct jumps into a line)");
  notes.push(...skippedNotes(catalog, fp, tp), ...pythonNotes(releases, from, path));
  const requiresPython: Record<string, string> = {};
  for (const r of [from, ...path.map((v) => find(releases, parseVersion(v) as Parsed)!)]) if (r.requiresPython) requiresPython[r.version] = r.requiresPython;
  return { allowed: true, from: from.version, to: to.version, path, notes, requiresPython };
}

/** What the catalog knows between the two versions and does not plan through, with why. */
function skippedNotes(catalog: Catalog, fp: Parsed, tp: Parsed): string[] {
  return (catalog.skipped ?? [])
    .map((s) => ({ s, p: parseVersion(s.version) }))
    .filter((x): x is { s: Skipped; p: Parsed } => !("error" in x.p) && key(x.p) > key(fp) && key(x.p) < key(tp))
    .sort((a, b) => key(a.p) - key(b.p))
    .map(({ s, p }) => `skipped ${spellVersion(p)}: ${s.why}`);
}

/** ">=3.11,<3.12" and "<3.12,>=3.11" are one specifier. */
export const normalizeSpec = (spec: string | undefined) => (spec ?? "").split(",").map((c) => c.replace(/\s+/g, "")).filter(Boolean).sort().join(",");

/** The hops whose release needs another Python than the one before (Requires-Python). */
function pythonNotes(releases: Indexed[], from: Indexed, path: string[]): string[] {
  const notes: string[] = [];
  let prev = from;
  for (const version of path) {
    const r = find(releases, parseVersion(version) as Parsed)!;
    if (normalizeSpec(r.requiresPython) !== normalizeSpec(prev.requiresPython)) notes.push(`${prev.version} → ${r.version} changes Requires-Python from ${prev.requiresPython ?? "(none)"} to ${r.requiresPython ?? "(none)"}`);
    prev = r;
  }
  return notes;
}

/** Whether one direct hop (no intermediate release) follows the rules, with the reason when not. */
export function checkHop(catalog: Catalog, fromText: string, toText: string): { allowed: boolean; reason: string } {
  const fp = parseVersion(fromText);
  const tp = parseVersion(toText);
  if ("error" in fp) return { allowed: false, reason: fp.error };
  if ("error" in tp) return { allowed: false, reason: tp.error };
  const { releases, from } = planningIndex(catalog, fp);
  const to = find(index(catalog), tp);
  if (!from) return { allowed: false, reason: unknown(catalog, releases, fromText, fp) };
  if (!to) return { allowed: false, reason: unknown(catalog, releases, toText, tp) };
  if (key(tp) <= key(fp)) return { allowed: false, reason: "not an upgrade" };
  const allLines = lines(releases);
  const [lf, lt] = [lineKey(fp), lineKey(tp)];
  if (lf === lt) {
    const next = ofLine(releases, lf).find((r) => key(r.parsed) > key(fp))!;
    return next.version === to.version ? { allowed: true, reason: "the next release of the line" } : { allowed: false, reason: `skips ${next.version}: minor upgrades go through every release` };
  }
  const between = allLines.filter((l) => l > lf && l < lt);
  // New numbering: a line cut from main before `from` was published may be skipped (planPath says why).
  const retired = (l: number) => isNewNumbering(ofLine(releases, l)[0]!.parsed) && ofLine(releases, l)[0]!.date < from.date;
  const skipped = between.filter((l) => !retired(l));
  if (skipped.length > 0) return { allowed: false, reason: `skips the major release ${skipped.map(lineName).join(", ")}` };
  const exit = gate(releases, lf, between[0] ?? lt);
  if (exit && key(fp) < key(exit.parsed)) return { allowed: false, reason: `a major upgrade starts from ${exit.version}, the latest ${lineOf(exit.version)} release before ${lineName(between[0] ?? lt)} began` };
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
