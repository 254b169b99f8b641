import { parseVersion, spellVersion, type Catalog, type Release, type Skipped } from "./versions";

/**
 * A project's page of the package index pip reads (the "simple" repository API), as a release
 * catalog. Pure: the text of the page in, the catalog out.
 *  - PEP 691 JSON (`application/vnd.pypi.simple.v1+json`): files with `requires-python`,
 *    `yanked` (PEP 592) and, from api-version 1.1 (PEP 700), `upload-time`;
 *  - PEP 503 HTML: anchors with `data-requires-python` and `data-yanked`, but no upload time, so
 *    dates come from a catalog known before (the bundled one); a release without one is skipped.
 * A release is a final version (no rc, alpha, dev) with at least one distribution file; it is
 * yanked when all its files are (PEP 592), and yanked releases are never planned.
 */
export interface IndexFile {
  filename: string;
  requiresPython?: string;
  /** false, or the reason (true: yanked without one). */
  yanked: boolean | string;
  /** ISO timestamp (PEP 700), absent on HTML pages. */
  uploadTime?: string;
}

/** PEP 503's normalized project name, the path segment of its page: backend.ai-manager → backend-ai-manager. */
export const normalizeProject = (name: string) => name.replace(/[-_.]+/g, "-").toLowerCase();

/** The version a distribution's file name carries (wheel: name-version-…whl; sdist: name-version.tar.gz). */
export function versionOfFile(filename: string): string | undefined {
  const wheel = /^([^-]+)-([^-]+)-.+\.whl$/.exec(filename);
  if (wheel) return wheel[2];
  const sdist = /^(.+)-([^-]+)\.(tar\.gz|zip|tar\.bz2)$/.exec(filename);
  return sdist?.[2];
}

export function filesFromJson(text: string): IndexFile[] {
  const page = JSON.parse(text) as { files?: Array<Record<string, unknown>> };
  if (!Array.isArray(page.files)) throw new Error("not a PEP 691 project page (no \"files\" list)");
  return page.files.map((f) => ({
    filename: String(f.filename),
    requiresPython: typeof f["requires-python"] === "string" && f["requires-python"] ? (f["requires-python"] as string) : undefined,
    yanked: typeof f.yanked === "string" ? f.yanked || true : f.yanked === true,
    uploadTime: typeof f["upload-time"] === "string" ? (f["upload-time"] as string) : undefined,
  }));
}

const unescape = (s: string) =>
  s.replace(/&(lt|gt|amp|quot|#x27|#39);/g, (_m, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', "#x27": "'", "#39": "'" })[e]!);

export function filesFromHtml(text: string): IndexFile[] {
  const files: IndexFile[] = [];
  for (const m of text.matchAll(/<a\s([^>]*)>([^<]*)<\/a>/gi)) {
    const attrs = m[1]!;
    const attr = (name: string) => {
      const a = new RegExp(`${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, "i").exec(attrs);
      return a ? unescape(a[2] ?? a[3] ?? "") : undefined;
    };
    const href = attr("href") ?? "";
    const filename = unescape(m[2]!.trim()) || decodeURIComponent(href.split("#")[0]!.split("/").at(-1) ?? "");
    const yanked = attr("data-yanked");
    files.push({ filename, requiresPython: attr("data-requires-python") || undefined, yanked: yanked === undefined ? false : yanked.trim() || true });
  }
  return files;
}

/**
 * The catalog of a project's files: its installable final releases (date, Requires-Python) and the
 * releases it skips with why (yanked). `knownDates` dates releases when the files carry no upload
 * time (HTML pages).
 */
export function catalogFromFiles(files: IndexFile[], source: string, knownDates: Map<string, string> = new Map(), listed: string[] = []): Catalog {
  const byVersion = new Map<string, IndexFile[]>();
  for (const file of files) {
    const raw = versionOfFile(file.filename);
    if (raw === undefined) continue;
    const parsed = parseVersion(raw);
    if ("error" in parsed) continue; // pre-releases, post-releases and old numbering schemes
    const version = spellVersion(parsed);
    byVersion.set(version, [...(byVersion.get(version) ?? []), file]);
  }
  const releases: Release[] = [];
  const skipped: Skipped[] = [];
  for (const [version, all] of byVersion) {
    const live = all.filter((f) => f.yanked === false);
    const dated = (live.length > 0 ? live : all).map((f) => f.uploadTime?.slice(0, 10)).filter((d): d is string => !!d).sort();
    const date = dated[0] ?? knownDates.get(version);
    if (live.length === 0) {
      const reasons = [...new Set(all.map((f) => (typeof f.yanked === "string" ? f.yanked.trim() : "")).filter(Boolean))];
      skipped.push({ version, why: `yanked on the index${reasons.length ? ` (${reasons.join("; ")})` : ""}`, ...(date ? { date } : {}) });
      continue;
    }
    if (!date) {
      skipped.push({ version, why: "no upload date (the index's HTML page carries none, and the bundled catalog does not know it)" });
      continue;
    }
    const requiresPython = live.find((f) => f.requiresPython)?.requiresPython;
    releases.push({ version, date, ...(requiresPython ? { requiresPython } : {}) });
  }
  // PEP 700's `versions` may name a version with no file at all (tagged, never uploaded).
  for (const raw of listed) {
    const parsed = parseVersion(raw);
    if ("error" in parsed || byVersion.has(spellVersion(parsed))) continue;
    skipped.push({ version: spellVersion(parsed), why: "listed on the index without any distribution file" });
  }
  const order = (a: { version: string }, b: { version: string }) => sortKey(a.version) - sortKey(b.version);
  return { source, releases: releases.sort(order), skipped: skipped.sort(order) };
}

function sortKey(version: string): number {
  const p = parseVersion(version);
  return "error" in p ? 0 : p.year * 1_000_000 + p.line * 1_000 + p.patch;
}

/** Parses a project page by its Content-Type (JSON for PEP 691, HTML otherwise). */
export function catalogFromPage(text: string, contentType: string, source: string, knownDates?: Map<string, string>): Catalog {
  const json = /application\/vnd\.pypi\.simple\.v1\+json|application\/json/.test(contentType);
  if (!json) return catalogFromFiles(filesFromHtml(text), source, knownDates);
  const versions = (JSON.parse(text) as { versions?: unknown }).versions;
  return catalogFromFiles(filesFromJson(text), source, knownDates, Array.isArray(versions) ? versions.map(String) : []);
}
