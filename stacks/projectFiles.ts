import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The project files a preview depends on besides the code: the lockfile, the project's and the
 * stack's Pulumi config, each as the sha256 of its content (null: absent). plan-update reads them to
 * know whether its preview still holds; a reviewed plan records them.
 */
export function projectFileHashes(cwd: string, stack: string): { lockfile: string | null; project: string | null; stack: string | null } {
  const sha256Of = (names: string[]): string | null => {
    for (const name of names) {
      try {
        return createHash("sha256").update(fs.readFileSync(path.join(cwd, name))).digest("hex");
      } catch {
        // absent: the next spelling
      }
    }
    return null;
  };
  return {
    lockfile: sha256Of(["package-lock.json"]),
    project: sha256Of(["Pulumi.yaml", "Pulumi.yml"]),
    stack: sha256Of([`Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`]),
  };
}
