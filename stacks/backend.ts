import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { badInput, UpgradeError } from "../lib/errors";
import type { Workspace } from "@pulumi/pulumi/automation";
import { createS3Client, isTransientAwsError, type S3Access } from "../lib/aws";

/**
 * The Pulumi backend of a stack, as a store of objects beside the stack's state: the run lock
 * and the run journal live there, so every operator and every pipeline machine of the stack sees
 * them. One interface over the DIY backends: file:// (a directory) and s3:// (a bucket, reached
 * with the same URL parameters the Pulumi CLI reads: endpoint, region, use_path_style /
 * s3ForcePathStyle, disable_https / disableSSL, profile). Pulumi Cloud and other blob stores
 * hold no objects of ours: `openBackendStore` returns undefined and callers say so.
 */
export interface StoredObject {
  body: string;
  /** An opaque version: the S3 ETag, or a content hash for files. */
  etag: string;
}

export interface BackendStore {
  /** For messages: file:///… or s3://bucket/prefix. */
  readonly description: string;
  get(key: string): Promise<StoredObject | undefined>;
  /** Writes only if no object exists at `key` (S3: If-None-Match: *); false when one does. */
  createIfAbsent(key: string, body: string): Promise<{ created: true; etag: string } | { created: false }>;
  /** Replaces only if the object is still at `etag` (S3: If-Match); false when it changed or is gone. */
  replaceIf(key: string, body: string, etag: string): Promise<{ replaced: true; etag: string } | { replaced: false }>;
  /** Deletes only if the object is still at `etag` (S3: If-Match on DeleteObject). */
  deleteIf(key: string, etag: string): Promise<boolean>;
  /** Unconditional write (journals: one writer per object). */
  put(key: string, body: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  close(): void;
}

/** The backend URL the Pulumi CLI uses for a project: PULUMI_BACKEND_URL, Pulumi.yaml backend.url, the current login. */
export function backendUrlFromSettings(env: Record<string, string | undefined>, projectBackendUrl: string | undefined, loggedIn: string | undefined): string | undefined {
  return env.PULUMI_BACKEND_URL || projectBackendUrl || loggedIn || undefined;
}

export type BackendKind = "file" | "s3" | "cloud" | "other";

export function backendKind(url: string): BackendKind {
  if (url.startsWith("file://")) return "file";
  if (url.startsWith("s3://")) return "s3";
  if (/^https?:\/\//.test(url) || url === "") return "cloud";
  return "other";
}

/** The parts of an s3:// backend URL the AWS SDK needs, read as gocloud.dev's s3blob (Pulumi's driver) reads them. */
export function parseS3BackendUrl(url: string): S3Access & { bucket: string; prefix: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badInput("read the backend URL", `${JSON.stringify(url)} is not a URL`, "use s3://<bucket>[/<prefix>]?region=…");
  }
  const q = u.searchParams;
  const flag = (...names: string[]) => names.map((n) => q.get(n)).find((v) => v !== null);
  const insecure = flag("disable_https", "disableSSL") === "true";
  let endpoint = q.get("endpoint") ?? undefined;
  // Pulumi gives a scheme-less endpoint (the AWS SDK v1 form) http or https by disableSSL
  if (endpoint && !endpoint.includes("://")) endpoint = `${insecure ? "http" : "https"}://${endpoint}`;
  return {
    bucket: u.hostname,
    prefix: u.pathname.replace(/^\/+/, "").replace(/\/+$/, ""),
    region: q.get("region") ?? undefined,
    endpoint,
    forcePathStyle: flag("use_path_style", "s3ForcePathStyle") === "true",
    profile: q.get("profile") ?? undefined,
  };
}

export function openBackendStore(url: string, env: Record<string, string | undefined>): BackendStore | undefined {
  switch (backendKind(url)) {
    case "file":
      return fileStore(fileURLToPath(url.split("?")[0]!.replace(/^file:\/\/~/, `file://${os.homedir()}`)));
    case "s3":
      return s3Store(url, env);
    default:
      return undefined;
  }
}

const hash = (body: string) => createHash("sha256").update(body).digest("hex").slice(0, 32);

function fileStore(root: string): BackendStore {
  const file = (key: string) => path.join(root, ...key.split("/"));
  const read = (key: string): StoredObject | undefined => {
    try {
      const body = fs.readFileSync(file(key), "utf8");
      return { body, etag: hash(body) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  };
  // Replace by rename: a reader never sees half a file. The compare-and-swap is not atomic
  // across processes on a plain filesystem; the lock's holders are checked by content too.
  const writeAtomic = (key: string, body: string) => {
    const target = file(key);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, body, { mode: 0o600 });
    fs.renameSync(tmp, target);
  };
  return {
    description: `file://${root}`,
    get: async (key) => read(key),
    async createIfAbsent(key, body) {
      fs.mkdirSync(path.dirname(file(key)), { recursive: true });
      try {
        fs.writeFileSync(file(key), body, { flag: "wx", mode: 0o600 });
        return { created: true, etag: hash(body) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return { created: false };
        throw err;
      }
    },
    async replaceIf(key, body, etag) {
      if (read(key)?.etag !== etag) return { replaced: false };
      writeAtomic(key, body);
      return { replaced: true, etag: hash(body) };
    },
    async deleteIf(key, etag) {
      if (read(key)?.etag !== etag) return false;
      fs.rmSync(file(key), { force: true });
      return true;
    },
    put: async (key, body) => writeAtomic(key, body),
    async list(prefix) {
      const base = file(prefix);
      const walk = (dir: string): string[] =>
        fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)])) : [];
      return walk(base).filter((f) => !f.endsWith(".tmp")).map((f) => path.relative(root, f).split(path.sep).join("/")).sort();
    },
    close() {},
  };
}

interface S3Error {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function s3Store(url: string, env: Record<string, string | undefined>): BackendStore {
  const access = parseS3BackendUrl(url);
  const { bucket, prefix } = access;
  const s3 = createS3Client(access, env);
  const full = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const description = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
  const status = (err: unknown) => (err as S3Error)?.$metadata?.httpStatusCode;
  const fail = (what: string, err: unknown): never => {
    const e = err as S3Error;
    const code = e?.name ?? "Error";
    const hint =
      code === "NoSuchBucket"
        ? `create the bucket, or check the backend URL (${description})`
        : /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden/.test(code) || status(err) === 403
          ? "check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID…) that can read and write the backend bucket"
          : isTransientAwsError(err) ? "S3 is failing or throttling; retry later" : undefined;
    throw new UpgradeError({ what: `${what} in the backend ${description}`, why: `${code}: ${e?.message ?? String(err)}`, hint, permanent: !isTransientAwsError(err), exitCode: hint?.startsWith("check the AWS") || code === "NoSuchBucket" ? 2 : 1, cause: err });
  };
  return {
    description,
    async get(key) {
      const { GetObjectCommand } = await import("@aws-sdk/client-s3");
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }));
        return { body: (await out.Body?.transformToString("utf8")) ?? "", etag: out.ETag ?? "" };
      } catch (err) {
        if ((err as S3Error).name === "NoSuchKey" || status(err) === 404 && (err as S3Error).name !== "NoSuchBucket") return undefined;
        return fail(`read ${key}`, err);
      }
    },
    async createIfAbsent(key, body) {
      const { PutObjectCommand } = await import("@aws-sdk/client-s3");
      try {
        const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: body, IfNoneMatch: "*", ContentType: "application/json" }));
        return { created: true, etag: out.ETag ?? "" };
      } catch (err) {
        // 412: an object exists; 409 ConditionalRequestConflict: another conditional write raced us
        if (status(err) === 412 || status(err) === 409) return { created: false };
        return fail(`create ${key}`, err);
      }
    },
    async replaceIf(key, body, etag) {
      const { PutObjectCommand } = await import("@aws-sdk/client-s3");
      try {
        const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: body, IfMatch: etag, ContentType: "application/json" }));
        return { replaced: true, etag: out.ETag ?? "" };
      } catch (err) {
        if (status(err) === 412 || status(err) === 409 || status(err) === 404) return { replaced: false };
        return fail(`replace ${key}`, err);
      }
    },
    async deleteIf(key, etag) {
      const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
      try {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key), IfMatch: etag }));
        return true;
      } catch (err) {
        if (status(err) === 412 || status(err) === 404) return false;
        return fail(`delete ${key}`, err);
      }
    },
    async put(key, body) {
      const { PutObjectCommand } = await import("@aws-sdk/client-s3");
      try {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: body }));
      } catch (err) {
        fail(`write ${key}`, err);
      }
    },
    async list(keyPrefix) {
      const { paginateListObjectsV2 } = await import("@aws-sdk/client-s3");
      const keys: string[] = [];
      try {
        for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: full(keyPrefix) })) {
          for (const o of page.Contents ?? []) if (o.Key) keys.push(prefix ? o.Key.slice(prefix.length + 1) : o.Key);
        }
      } catch (err) {
        fail(`list ${keyPrefix}`, err);
      }
      return keys.sort();
    },
    close: () => s3.destroy(),
  };
}

/** Where our objects live beside the stack's state. Stack names with an org part keep only the last segment's slashes as "_". */
export const lockKey = (project: string, stack: string) => `.pulumi/upgrade-orchestrator/locks/${project}/${stack.replace(/\//g, "_")}.json`;
export const journalPrefix = (project: string, stack: string) => `.pulumi/upgrade-orchestrator/journal/${project}/${stack.replace(/\//g, "_")}/`;
/** Pulumi's own update locks in a DIY backend: `.pulumi/locks/<org>/<project>/<stack>/<id>.json`. */
export const engineLocksPrefix = ".pulumi/locks/";

/**
 * The backend of a project directory without selecting a stack (for `status` on a machine that
 * never ran the stack): the project's name and backend.url from Pulumi.yaml, the CLI's login.
 */
export async function projectBackend(cwd: string, env: Record<string, string | undefined>): Promise<{ url: string; project: string; store?: BackendStore }> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  const { pulumiCommand: findCommand } = await import("../lib/toolchain");
  const clean = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const pulumiCommand = (await findCommand(clean)).command;
  return workspaceBackend(await LocalWorkspace.create({ workDir: cwd, pulumiCommand, envVars: clean }), env);
}

/** A workspace's backend and project: `pulumi whoami` (a CLI start) only when neither the environment nor Pulumi.yaml names it. */
export async function workspaceBackend(workspace: Workspace, env: Record<string, string | undefined>): Promise<{ url: string; project: string; store?: BackendStore }> {
  const settings = await workspace.projectSettings();
  const login = env.PULUMI_BACKEND_URL || settings.backend?.url ? undefined : (await workspace.whoAmI()).url;
  const url = backendUrlFromSettings(env, settings.backend?.url, login) ?? "";
  return { url, project: settings.name, store: openBackendStore(url, env) };
}
