/**
 * Release numbers, one way for the whole project: a dotted number with an optional `v` (`3.8.2`,
 * `v2.0.0`, `3.190`) and, where a tool prints one, a pre-release or build suffix (`3.191.0-alpha.1`,
 * not part of the order). Each workflow validates its own forms (CloudFormation template versions,
 * Utilitarian tags, Python's PEP 440 specifiers, Backend.AI's calendar versions) and orders them here.
 */
const RELEASE = /^v?(\d+(?:\.\d+)*)(?:[-+][0-9A-Za-z.+-]*)?$/i;

/** The numbers of a release (`v3.8.2` → [3, 8, 2]); undefined for anything else. */
export function releaseParts(text: string): number[] | undefined {
  const m = RELEASE.exec(text.trim());
  return m ? m[1]!.split(".").map(Number) : undefined;
}

/** Orders two lists of release numbers, a missing part counting as 0 (3.8 = 3.8.0): -1, 0 or 1. */
export function compareParts(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Orders two releases (-1 when a is older, 0, 1); throws on one that is not a release number. */
export function compareReleases(a: string, b: string): number {
  const x = releaseParts(a);
  const y = releaseParts(b);
  if (!x || !y) throw new Error(`not a release number: ${JSON.stringify(!x ? a : b)}`);
  return compareParts(x, y);
}
