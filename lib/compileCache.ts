import * as nodeModule from "node:module";
import * as path from "node:path";
import { toolchainCache } from "./toolchain";

/**
 * Node's on-disk cache of compiled JavaScript (`module.enableCompileCache`, Node >= 22.8), kept in
 * the toolchain cache. Much of a start is compiling modules: the Automation API loads in 0.47 s
 * compiled afresh and in 0.29 s from the cache (Node 26 on this machine), and a deployment's Pulumi
 * program, which loads @pulumi/pulumi on every engine pass, gains about as much per pass.
 * Node's own switches decide: NODE_COMPILE_CACHE names another directory, and
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. A cache that cannot be written is no error: Node
 * then compiles as it would without one.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  return env.NODE_COMPILE_CACHE || path.join(toolchainCache(env), "node-compile-cache");
}

/** For this process: what it loads from here on comes from the cache. */
export function enableCompileCache(): void {
  const dir = compileCacheDir();
  if (dir) nodeModule.enableCompileCache?.(dir);
}

/** The environment for the engine, whose language host starts the deployment's program under Node. */
export function withCompileCache(env: Record<string, string>): Record<string, string> {
  const dir = compileCacheDir(env);
  return dir && !env.NODE_COMPILE_CACHE ? { ...env, NODE_COMPILE_CACHE: dir } : env;
}
