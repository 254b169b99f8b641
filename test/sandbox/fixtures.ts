import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The checkout's root (works from test/sandbox under ts-jest and from dist/test/sandbox). */
export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json")) || path.basename(dir) === "dist") dir = path.dirname(dir);
  return dir;
})();

/**
 * Copies a fixture Pulumi project into a fresh temp dir (Pulumi writes Pulumi.<stack>.yaml into
 * the project dir, which must not dirty the checkout) and links the checkout's node_modules.
 */
export function copyFixture(name: string, into?: string): string {
  const source = path.join(REPO_ROOT, "test", "fixtures", name);
  if (!fs.existsSync(source)) throw new Error(`no fixture project ${source}`);
  const target = into ?? fs.mkdtempSync(path.join(os.tmpdir(), `uo-${name}-`));
  fs.cpSync(source, target, { recursive: true });
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(target, "node_modules"), "dir");
  return target;
}
