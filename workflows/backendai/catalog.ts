import * as fs from "node:fs";
import * as path from "node:path";
import type { Catalog } from "./versions";

/** The release catalog shipped with the package (releases.json: git tags of lablup/backend.ai with dates). */
export function shippedCatalog(): Catalog {
  // releases.json sits beside the sources; from dist/ it is found in the package's workflows/backendai.
  for (const dir of [__dirname, path.resolve(__dirname, "..", "..", "..", "workflows", "backendai")]) {
    const file = path.join(dir, "releases.json");
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as Catalog;
  }
  throw new Error("releases.json (the Backend.AI release catalog) is missing from the package");
}
