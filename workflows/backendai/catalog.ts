import * as fs from "node:fs";
import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { describeProbe, probeHttp } from "../../lib/http";
import { catalogFromPage, normalizeProject } from "./simpleIndex";
import type { Catalog } from "./versions";

/**
 * Where the release catalog comes from, at run time:
 *  - the package index pip installs from (the settings' `packageIndex.indexUrl`, else pip's
 *    default https://pypi.org/simple), its page of backend.ai-manager read as pip reads it
 *    (PEP 691 JSON preferred, PEP 503 HTML accepted);
 *  - the bundled releases.json (the same read of PyPI, saved with its date) when there is no index
 *    to read (hosts installing from `findLinks` only), when asked ("bundled"), or, with a warning,
 *    when the live read fails;
 *  - a catalog given in the settings ({releases}) or a file (`backendai path --catalog`).
 */
export const PIP_DEFAULT_INDEX = "https://pypi.org/simple";
export const CATALOG_PACKAGE = "backend.ai-manager";

/** The release catalog shipped with the package (releases.json, the index's history on its `readOn` date). */
export function bundledCatalog(): Catalog {
  // releases.json sits beside the sources; from dist/ it is found in the package's workflows/backendai.
  for (const dir of [__dirname, path.resolve(__dirname, "..", "..", "..", "workflows", "backendai")]) {
    const file = path.join(dir, "releases.json");
    if (fs.existsSync(file)) {
      const catalog = JSON.parse(fs.readFileSync(file, "utf8")) as Catalog;
      return { ...catalog, source: `the bundled catalog (releases.json: ${catalog.source}, read on ${catalog.readOn})` };
    }
  }
  throw new Error("releases.json (the Backend.AI release catalog) is missing from the package");
}
/** @deprecated the bundled catalog; kept for importers of 1.x. */
export const shippedCatalog = bundledCatalog;

const ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/** The project page's URL as pip builds it: <index>/<normalized name>/. */
export const projectPageUrl = (indexUrl: string, project = CATALOG_PACKAGE) => `${indexUrl.replace(/\/+$/, "")}/${normalizeProject(project)}/`;

/** Reads the catalog from a package index; an UpgradeError says what failed. */
export async function readIndexCatalog(indexUrl: string, options: { timeoutMs?: number; project?: string } = {}): Promise<Catalog> {
  const url = projectPageUrl(indexUrl, options.project);
  const what = `read the release catalog from ${url}`;
  const probe = await probeHttp(url, { timeoutMs: options.timeoutMs ?? 15_000, headers: { accept: ACCEPT }, maxBodyBytes: 32_000_000 });
  if (probe.error || probe.status !== 200) {
    throw new UpgradeError({ what, why: probe.error ? describeProbe(probe) : `HTTP ${probe.status}`, hint: "check the index URL (settings packageIndex.indexUrl or catalog)" });
  }
  const kind = /json/.test(probe.contentType ?? "") ? "PEP 691 JSON" : "PEP 503 HTML";
  const known = new Map(bundledCatalog().releases.map((r) => [r.version, r.date]));
  try {
    return { ...catalogFromPage(probe.body, probe.contentType ?? "text/html", `the package index ${url} (${kind}, read ${new Date().toISOString().slice(0, 16)}Z)`, known), readOn: new Date().toISOString().slice(0, 10) };
  } catch (err) {
    throw new UpgradeError({ what, why: `the page is not a simple-API project page: ${(err as Error).message}` });
  }
}

/** What the settings say about the catalog: inline releases, an index URL, "bundled", or nothing. */
export type CatalogSetting = Catalog | string | undefined;

/**
 * The catalog to plan over. A live read that fails falls back to the bundled catalog, with a
 * warning, and the catalog's `source` says so (every refusal quotes it).
 */
export async function loadCatalog(
  setting: CatalogSetting,
  packageIndex: { indexUrl?: string; noIndex?: boolean } | undefined,
  warn: (message: string) => Promise<void> | void,
): Promise<Catalog> {
  if (typeof setting === "object") return { ...setting, source: setting.source ?? "the catalog given in the settings" };
  if (setting === "bundled") return bundledCatalog();
  const indexUrl = setting ?? packageIndex?.indexUrl ?? (packageIndex?.noIndex ? undefined : PIP_DEFAULT_INDEX);
  if (indexUrl === undefined) {
    const bundled = bundledCatalog();
    return { ...bundled, source: `${bundled.source}; the hosts install from findLinks only (packageIndex.noIndex), so there is no index to read` };
  }
  try {
    return await readIndexCatalog(indexUrl);
  } catch (err) {
    const why = err instanceof UpgradeError ? err.why : String(err);
    const bundled = bundledCatalog();
    await warn(`could not read the release catalog from ${projectPageUrl(indexUrl)} (${why}); planning over the bundled catalog of ${bundled.readOn}, which may lack newer releases`);
    return { ...bundled, source: `${bundled.source}, because reading ${projectPageUrl(indexUrl)} failed: ${why}` };
  }
}

/** `backendai path --catalog <file|URL|bundled>` (default: PIP_INDEX_URL, else pip's default index). */
export async function catalogForCli(option: string | undefined, warn: (message: string) => void): Promise<Catalog> {
  if (option === undefined) return loadCatalog(process.env.PIP_INDEX_URL || PIP_DEFAULT_INDEX, undefined, warn);
  if (option === "bundled" || /^https?:\/\//.test(option)) return loadCatalog(option, undefined, warn);
  const catalog = JSON.parse(fs.readFileSync(option, "utf8")) as Catalog;
  if (!Array.isArray(catalog.releases)) throw new Error(`${option} has no "releases" list`);
  return { ...catalog, source: `the file ${option}${catalog.source ? ` (${catalog.source})` : ""}` };
}
