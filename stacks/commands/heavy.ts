/** Whether this process is the CLI itself (not a test or a program importing `main`). */
let asCli = false;

/** Called once by the CLI's entry point. */
export function runningAsCli(): void {
  asCli = true;
}

/**
 * A command's heavy modules (the driver, Pulumi's Automation API, the AWS SDK, the bed), loaded
 * with Node's compile cache on when this process is the CLI (lib/compileCache.ts). Only these
 * gain from it: `--help` and `backendai path` load a few small modules, and would pay the cache's
 * set-up (~2 ms) for nothing.
 */
export async function heavy<T>(load: () => Promise<T>): Promise<T> {
  if (asCli) (await import("../../lib/compileCache")).enableCompileCache();
  return load();
}
