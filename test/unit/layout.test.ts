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

test("the shipped modules load without a cycle (static imports; type-only and lazy import() excluded)", () => {
  const files = ["index.ts", ...shipped("stacks"), ...shipped("workflows"), ...shipped("lib")];
  const resolve = (from: string, spec: string) => {
    const base = path.relative(ROOT, path.resolve(ROOT, path.dirname(from), spec));
    return [`${base}.ts`, path.join(base, "index.ts")].find((f) => files.includes(f));
  };
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    // `import … from "./x"` and `export … from "./x"`, not `import type`/`export type`: those are erased
    const specs = [...text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?\sfrom\s+["'](\.[^"']+)["']/gms)].map((m) => m[1]!);
    edges.set(file, specs.map((s) => resolve(file, s)).filter((f): f is string => f !== undefined));
  }
  expect([...edges.values()].flat().length).toBeGreaterThan(100);
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const trail: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    trail.push(file);
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === "open") cycles.push([...trail.slice(trail.indexOf(next)), next].join(" → "));
      else if (!state.has(next)) visit(next);
    }
    trail.pop();
    state.set(file, "done");
  };
  for (const file of files) if (!state.has(file)) visit(file);
  expect(cycles).toEqual([]);
});
