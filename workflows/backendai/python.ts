import { compareParts } from "../../lib/versions";

/**
 * Requires-Python (PEP 440 version specifiers) against an interpreter's version. Pure. Covers the
 * operators release metadata uses: >=, <=, >, <, ==, != (with `.*`), ~=, ===.
 */
const nums = (v: string) => v.split(".").map((n) => Number.parseInt(n, 10) || 0);

const compare = compareParts;

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

const CANDIDATES = Array.from({ length: 20 }, (_, i) => `3.${i + 6}`);

/**
 * The hops of a plan whose release no Python of the release before can run (their Requires-Python
 * admit no common 3.x), with each host that names no matching interpreter in `pythons`: what the
 * preview refuses, before anything stops. Pure: the environment's own Python is not known here,
 * only that it runs the release before.
 */
export function missingInterpreters(
  plan: { from: string; path: string[]; requiresPython: Record<string, string> },
  hosts: Array<{ component: string; pythons?: Record<string, string> }>,
): Array<{ hop: { from: string; to: string }; needs: string; component: string }> {
  const gaps: Array<{ hop: { from: string; to: string }; needs: string; component: string }> = [];
  let prev = plan.from;
  for (const to of plan.path) {
    const [before, after] = [plan.requiresPython[prev], plan.requiresPython[to]];
    const shared = CANDIDATES.some((v) => pythonSatisfies(before, v) && pythonSatisfies(after, v));
    if (!shared && after) {
      for (const host of hosts) if (!matchingPython(after, Object.keys(host.pythons ?? {}))) gaps.push({ hop: { from: prev, to }, needs: after, component: host.component });
    }
    prev = to;
  }
  return gaps;
}
