/**
 * Requires-Python (PEP 440 version specifiers) against an interpreter's version. Pure. Covers the
 * operators release metadata uses: >=, <=, >, <, ==, != (with `.*`), ~=, ===.
 */
const nums = (v: string) => v.split(".").map((n) => Number.parseInt(n, 10) || 0);

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function clause(text: string, version: number[]): boolean {
  const m = /^(~=|===|==|!=|<=|>=|<|>)\s*([0-9][0-9.]*)(\.\*)?$/.exec(text.trim());
  if (!m) throw new Error(`${JSON.stringify(text.trim())} is not a version specifier`);
  const [, op, raw, star] = m;
  const target = nums(raw!);
  if (star) {
    const same = compare(version.slice(0, target.length), target) === 0;
    if (op === "==") return same;
    if (op === "!=") return !same;
    throw new Error(`${text.trim()}: .* only goes with == and !=`);
  }
  const c = compare(version, target);
  switch (op) {
    case ">=": return c >= 0;
    case "<=": return c <= 0;
    case ">": return c > 0;
    case "<": return c < 0;
    case "==": case "===": return c === 0;
    case "!=": return c !== 0;
    default: // ~=X.Y.Z: >= X.Y.Z and == X.Y.*
      return c >= 0 && compare(version.slice(0, target.length - 1), target.slice(0, -1)) === 0;
  }
}

/** Whether Python `version` (3.11, 3.12.4) satisfies `spec` (">=3.11,<3.12"); no spec admits all. */
export function pythonSatisfies(spec: string | undefined, version: string): boolean {
  if (!spec?.trim()) return true;
  const v = nums(version);
  return spec.split(",").filter((c) => c.trim()).every((c) => clause(c, v));
}

/** The first of `versions` (e.g. a host's configured interpreters, "3.12") that `spec` admits. */
export function matchingPython(spec: string | undefined, versions: string[]): string | undefined {
  return [...versions].sort((a, b) => compare(nums(a), nums(b))).find((v) => pythonSatisfies(spec, v));
}
