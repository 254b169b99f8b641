/**
 * Refreshes the bundled Backend.AI release catalog (workflows/backendai/releases.json) from the
 * package index, as the workflow reads it at run time, plus what git tags know and the index does
 * not: versions tagged in lablup/backend.ai with no distribution, so a plan can say it skipped them.
 *
 *   node dist/scripts/refresh-backendai-catalog.js [--page <saved PEP 691 page>] [--tags <file>]
 *
 * --page: a saved project page (default: read https://pypi.org/simple/backend-ai-manager/ live);
 * --tags: lines "<tag> <YYYY-MM-DD>" (`git for-each-ref refs/tags --format='%(refname:short) %(creatordate:short)'`
 * in a clone of lablup/backend.ai); default: keep the tag-only entries of the current file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectPageUrl, PIP_DEFAULT_INDEX, readIndexCatalog } from "../workflows/backendai/catalog";
import { catalogFromPage } from "../workflows/backendai/simpleIndex";
import { parseVersion, spellVersion, type Catalog, type Skipped } from "../workflows/backendai/versions";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const file = path.resolve(__dirname, "..", "..", "workflows", "backendai", "releases.json");
  const previous = JSON.parse(fs.readFileSync(file, "utf8")) as Catalog;
  const page = opt("--page");
  const source = `PyPI's simple API (PEP 691), ${projectPageUrl(PIP_DEFAULT_INDEX)}: final releases with a distribution that is not yanked, first upload dates, Requires-Python`;
  const live = page ? catalogFromPage(fs.readFileSync(page, "utf8"), "application/vnd.pypi.simple.v1+json", source) : await readIndexCatalog(PIP_DEFAULT_INDEX);
  const onIndex = new Set([...live.releases, ...(live.skipped ?? [])].map((r) => r.version));
  const tagOnly: Skipped[] = [];
  const tagsFile = opt("--tags");
  if (tagsFile) {
    for (const line of fs.readFileSync(tagsFile, "utf8").split("\n")) {
      const [tag, date] = line.trim().split(/\s+/);
      const parsed = tag ? parseVersion(tag) : { error: "" };
      if ("error" in parsed) continue;
      const version = spellVersion(parsed);
      if (!onIndex.has(version)) tagOnly.push({ version, why: `tagged in lablup/backend.ai (${date}) but no distribution on the index`, date });
    }
  } else {
    tagOnly.push(...(previous.skipped ?? []).filter((s) => !onIndex.has(s.version) && /^tagged/.test(s.why)));
  }
  const key = (v: string) => { const p = parseVersion(v); return "error" in p ? 0 : p.year * 1e6 + p.line * 1e3 + p.patch; };
  const out = {
    source,
    readOn: new Date().toISOString().slice(0, 10),
    releases: live.releases,
    skipped: [...(live.skipped ?? []), ...tagOnly].sort((a, b) => key(a.version) - key(b.version)),
  };
  const lines = [
    "{",
    `  "source": ${JSON.stringify(out.source)},`,
    `  "readOn": ${JSON.stringify(out.readOn)},`,
    `  "releases": [\n${out.releases.map((r) => `    ${JSON.stringify(r)}`).join(",\n")}\n  ],`,
    `  "skipped": [\n${out.skipped.map((r) => `    ${JSON.stringify(r)}`).join(",\n")}\n  ]`,
    "}",
  ];
  fs.writeFileSync(file, lines.join("\n") + "\n");
  process.stdout.write(`${file}: ${out.releases.length} releases, ${out.skipped.length} skipped, read on ${out.readOn}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
