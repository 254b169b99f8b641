import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import type { SettingsIssue } from "./settings";

/**
 * The orchestrator's own Pulumi program (index.ts) declares one workflow resource per system in
 * `upgrade-orchestrator:systems`. Each workflow contributes an `OwnStackKind`: how its config
 * block becomes the resource's arguments, secrets included. What every kind needs from the stack
 * config (a secret by key, an SSH key by path or by key, a clear error naming the key) is here.
 */
export interface OwnStackKind {
  /** The `kind:` of a system's config block. */
  kind: string;
  /** Declares the workflow resource; returns the output the stack reports as the system's version. */
  declare(name: string, settings: unknown, at: OwnStackConfig): pulumi.Output<string>;
}

/** A stack-config error, shown to people as the preview's error: every problem names its key. */
export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid stack config:\n  ${problems.join("\n  ")}`);
    // The stack trace adds nothing for the person reading the preview.
    this.stack = this.message;
  }
}

/** The stack config as one system's block sees it: `key` is the block's full config key. */
export class OwnStackConfig {
  constructor(
    readonly key: string,
    private readonly config: pulumi.Config = new pulumi.Config(),
  ) {}

  /** The settings, or a ConfigError naming every bad key. */
  parsed<T>(result: { config: T } | { issues: SettingsIssue[] }): T {
    if ("issues" in result) throw new ConfigError(result.issues.map((i) => `${i.key}: ${i.message}`));
    return result.config;
  }

  /** A secret config value by its key (`pulumi config set --secret <key> …`). */
  secret(configKey: string): pulumi.Output<string> {
    return this.config.requireSecret(configKey);
  }

  /** An SSH private key, from a secret config key or read from a file; always a Pulumi secret. */
  privateKey(at: string, privateKeyPath?: string, privateKeyConfig?: string): pulumi.Output<string> {
    if (privateKeyConfig !== undefined) return this.secret(privateKeyConfig);
    try {
      return pulumi.secret(fs.readFileSync(privateKeyPath!, "utf8"));
    } catch (err) {
      throw new ConfigError([`${this.key}.${at}.privateKeyPath: cannot read ${privateKeyPath} (${(err as Error).message})`]);
    }
  }
}
