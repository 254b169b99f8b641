import { z } from "zod";

/**
 * What every workflow's settings schema shares: problems named by their key path, and the SSH
 * fields (as the resource takes them, with the key itself as a Pulumi secret, and as an own stack's
 * config declares them, naming where the key comes from).
 */
export interface SettingsIssue {
  /** Dotted path of the offending key, prefixed by where the settings came from (e.g. `hosts[1].ssh.port`). */
  key: string;
  message: string;
}

/** Validates `input`; every problem names its key. */
export function parseWith<S extends z.ZodType, R>(schema: S, input: unknown, prefix: string, wrap: (value: z.infer<S>) => R): R | { issues: SettingsIssue[] } {
  const result = schema.safeParse(input);
  if (result.success) return wrap(result.data);
  return { issues: result.error.issues.map((issue) => ({ key: keyPath(prefix, issue.path), message: issue.message })) };
}

function keyPath(prefix: string, path: ReadonlyArray<PropertyKey>): string {
  let key = prefix;
  for (const part of path) key += typeof part === "number" ? `[${part}]` : `${key ? "." : ""}${String(part)}`;
  return key || "(top level)";
}

/** host, port, user, knownHostsPath: a workflow may make `host` optional (a default it finds itself). */
export const sshFields = {
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1),
  /** known_hosts holding the host's key, on the machine running Pulumi (strict checking; default ~/.ssh/known_hosts). */
  knownHostsPath: z.string().min(1).optional(),
};

/**
 * The two shapes of a workflow's SSH settings: `resource` with the private key itself (a Pulumi
 * secret), `config` as an own stack declares it, never the key in clear: `privateKeyConfig` names a
 * secret config key of the stack, `privateKeyPath` a key file.
 */
export function sshSchemas<F extends z.ZodRawShape>(fields: F) {
  return {
    resource: z.strictObject({ ...fields, privateKey: z.string().min(1) }),
    config: z
      .strictObject({ ...fields, privateKeyPath: z.string().min(1).optional(), privateKeyConfig: z.string().min(1).optional() })
      .refine((value) => {
        const ssh = value as { privateKeyPath?: string; privateKeyConfig?: string };
        return (ssh.privateKeyPath === undefined) !== (ssh.privateKeyConfig === undefined);
      }, {
        message: "give exactly one of privateKeyPath (a key file) or privateKeyConfig (the name of a secret config key)",
      }),
  };
}
