/** A stack name with `*`, `?` or `[` is a glob over the backend's stacks (`--stack 'prod-*'`). */
export const GLOB = /[*?[]/;

/** Whether any of the `--stack` values is a glob (then the backend's stacks are listed). */
export const hasGlob = (patterns: string[]) => patterns.some((p) => GLOB.test(p));
/** One stack by its name: not repeated `--stack`, not a glob, not a fleet file (those are a fleet). */
export const isSingleStack = (stacks: string[], stacksFile?: string) => stacks.length === 1 && !hasGlob(stacks) && !stacksFile;
