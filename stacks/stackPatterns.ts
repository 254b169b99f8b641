/** A stack name with `*`, `?` or `[` is a glob over the backend's stacks (`--stack 'prod-*'`). */
export const GLOB = /[*?[]/;

/** Whether any of the `--stack` values is a glob (then the backend's stacks are listed). */
export const hasGlob = (patterns: string[]) => patterns.some((p) => GLOB.test(p));
