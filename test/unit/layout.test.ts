import * as fs from "node:fs";
import * as path from "node:path";

// The package's code (what npm pack ships: index.ts, stacks/, workflows/, lib/) never loads the
// test bed; the bed's commands (`npm run sandbox`) are a repository script.
const ROOT = path.resolve(__dirname, "..", "..");
const shipped = (dir: string): string[] =>
  fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? shipped(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : [],
  );

test("nothing the package ships imports from test/", () => {
  const files = ["index.ts", ...shipped("stacks"), ...shipped("workflows"), ...shipped("lib")];
  expect(files.length).toBeGreaterThan(20);
  const offenders: string[] = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    for (const m of text.matchAll(/(?:from\s+|import\(\s*|require\(\s*)["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (!spec.startsWith(".")) continue;
      const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
      if (target === "test" || target.startsWith(`test${path.sep}`)) offenders.push(`${file} → ${spec}`);
    }
  }
  expect(offenders).toEqual([]);
});
