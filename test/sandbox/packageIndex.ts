import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

/**
 * A package index on loopback that real pip uses as it uses PyPI: the simple repository API, with
 * content negotiation as PyPI does it (PEP 691 JSON for `application/vnd.pypi.simple.v1+json`,
 * PEP 503 HTML otherwise), files linked with their sha256, `data-requires-python` /
 * `requires-python` read from each wheel's own METADATA, yanked files (PEP 592) and upload times
 * (PEP 700). A version may be listed with no file at all (tagged, never uploaded).
 */
export interface IndexedFile {
  file: string;
  path: string;
  name: string;
  version: string;
  requiresPython?: string;
  sha256: string;
}

export interface PackageIndexOptions {
  /** Wheel files to serve. */
  wheels: string[];
  /** The Python that reads the wheels' METADATA (test/fixtures/backendai/build_wheels.py --metadata). */
  python: string;
  metadataScript: string;
  /** Upload date (YYYY-MM-DD) by "<project> <version>"; default 2024-01-01. */
  uploaded?: Record<string, string>;
  /** Yank reason by "<project> <version>". */
  yanked?: Record<string, string>;
  /** Versions listed in a project's `versions` with no file, by project. */
  listedOnly?: Record<string, string[]>;
}

export interface PackageIndex {
  /** The index URL for pip (`--index-url`), ending in /simple. */
  url: string;
  /** Requests seen: path and Accept header. */
  requests: Array<{ path: string; accept?: string }>;
  stop(): Promise<void>;
}

const normalize = (name: string) => name.replace(/[-_.]+/g, "-").toLowerCase();
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export async function startPackageIndex(options: PackageIndexOptions): Promise<PackageIndex> {
  const files = JSON.parse(execFileSync(options.python, [options.metadataScript, "--metadata", ...options.wheels], { encoding: "utf8" })) as IndexedFile[];
  const projects = new Map<string, { name: string; files: IndexedFile[] }>();
  for (const f of files) {
    const key = normalize(f.name);
    const project = projects.get(key) ?? { name: f.name, files: [] };
    project.files.push(f);
    projects.set(key, project);
  }
  const id = (f: IndexedFile) => `${normalize(f.name)} ${f.version}`;
  const requests: PackageIndex["requests"] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://index");
    requests.push({ path: url.pathname, accept: req.headers.accept });
    const json = /application\/vnd\.pypi\.simple\.v1\+json/.test(req.headers.accept ?? "");
    const send = (status: number, type: string, body: string | Buffer) => res.writeHead(status, { "content-type": type }).end(body);
    if (url.pathname === "/simple/") {
      if (json) return send(200, "application/vnd.pypi.simple.v1+json", JSON.stringify({ meta: { "api-version": "1.1" }, projects: [...projects.values()].map((p) => ({ name: p.name })) }));
      return send(200, "text/html", `<!DOCTYPE html><html><body>${[...projects.keys()].map((k) => `<a href="${k}/">${k}</a>`).join("\n")}</body></html>`);
    }
    const page = /^\/simple\/([^/]+)\/$/.exec(url.pathname);
    if (page) {
      const project = projects.get(normalize(page[1]!));
      if (!project) return send(404, "text/plain", "not found");
      if (normalize(page[1]!) !== page[1]) return res.writeHead(301, { location: `/simple/${normalize(page[1]!)}/` }).end();
      const entries = project.files.map((f) => ({ f, yanked: options.yanked?.[id(f)], uploaded: options.uploaded?.[id(f)] ?? "2024-01-01" }));
      if (json) {
        const listed = options.listedOnly?.[normalize(project.name)] ?? [];
        return send(200, "application/vnd.pypi.simple.v1+json", JSON.stringify({
          meta: { "api-version": "1.1" },
          name: normalize(project.name),
          versions: [...new Set([...entries.map((e) => e.f.version), ...listed])],
          files: entries.map(({ f, yanked, uploaded }) => ({
            filename: f.file,
            url: `/files/${f.file}`,
            hashes: { sha256: f.sha256 },
            ...(f.requiresPython ? { "requires-python": f.requiresPython } : {}),
            yanked: yanked ?? false,
            "upload-time": `${uploaded}T12:00:00.000000Z`,
          })),
        }));
      }
      const links = entries.map(({ f, yanked }) =>
        `<a href="/files/${f.file}#sha256=${f.sha256}"${f.requiresPython ? ` data-requires-python="${esc(f.requiresPython)}"` : ""}${yanked !== undefined ? ` data-yanked="${esc(yanked)}"` : ""}>${f.file}</a><br/>`);
      return send(200, "text/html", `<!DOCTYPE html>\n<html><head><title>Links for ${esc(project.name)}</title></head><body>\n<h1>Links for ${esc(project.name)}</h1>\n${links.join("\n")}\n</body></html>\n`);
    }
    const file = /^\/files\/([^/]+)$/.exec(url.pathname);
    const served = file ? files.find((f) => f.file === decodeURIComponent(file[1]!)) : undefined;
    if (served) return send(200, "application/octet-stream", fs.readFileSync(served.path));
    send(404, "text/plain", "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/simple`,
    requests,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** Every wheel in the directories. */
export const wheelsIn = (...dirs: string[]) => dirs.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith(".whl")).map((f) => path.join(d, f)) : []));
