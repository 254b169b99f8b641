import * as path from "node:path";
import { UpgradeError } from "../../lib/errors";
import { withRetry } from "../../lib/retry";
import { lastLines, shq } from "../../lib/ssh";
import { apiTag, compose, type Deployment } from "./deployment";
import type { UtilitarianSettings } from "./settings";

/**
 * What the workflow does on the Utilitarian host, over SSH: Docker Compose in the project
 * directory, pg_dump/pg_restore against the database (the password goes in on stdin, never on a
 * command line), rabbitmqctl. Everything reads before it acts; the order is in runbook.ts.
 */
export type { Deployment } from "./deployment";

export interface ContainerState {
  service: string;
  state: string;
  image: string;
}

/**
 * The project's service containers (`compose ps --all`), without one-off `compose run`
 * containers. A one-off removed between compose's listing and its inspection makes the listing
 * fail ("no such container"): that is retried.
 */
export async function containers(d: Deployment): Promise<ContainerState[]> {
  const list = () =>
    compose(d, "list the containers", ["ps", "--all", "--format", "json"]).catch((err) => {
      if (err instanceof UpgradeError && /no such container/i.test(err.why)) throw new UpgradeError({ what: err.what, why: err.why, permanent: false });
      throw err;
    });
  const out = (await withRetry("list the containers", list, { retries: 3, minTimeoutMs: 300, maxTimeoutMs: 1000 })).trim();
  if (!out) return [];
  const rows = (out.startsWith("[") ? JSON.parse(out) : out.split("\n").filter(Boolean).map((l) => JSON.parse(l))) as Array<Record<string, string>>;
  return rows
    .filter((r) => !String(r.Labels ?? "").includes("com.docker.compose.oneoff=True"))
    .map((r) => ({ service: r.Service ?? "", state: String(r.State ?? "").toLowerCase(), image: r.Image ?? "" }));
}

export const running = (all: ContainerState[], service: string) => all.some((c) => c.service === service && c.state === "running");

/** What the host runs: the API's image tag as Compose resolves it, and the project's containers. */
export interface HostVersion {
  /** The tag the compose files (with their env files) name for the API (what the deployment is set to run). */
  file: string;
  containers: ContainerState[];
}

export async function hostVersion(d: Deployment): Promise<HostVersion> {
  const { tag } = await apiTag(d);
  return { file: tag, containers: await containers(d) };
}

/** Running containers and their states in one line: "running: a, b (repo:2.0.0); exited: c (repo:1.0.0)". */
export function describeContainers(all: ContainerState[], services: string[]): string {
  const groups = new Map<string, string[]>();
  for (const name of services) {
    const c = all.find((x) => x.service === name);
    const key = c ? `${c.state === "running" ? "running" : `${c.state || "stopped"}`}` : "no container";
    groups.set(key, [...(groups.get(key) ?? []), c ? `${name} (${c.image})` : name]);
  }
  return [...groups].map(([state, names]) => `${state}: ${names.join(", ")}`).join("; ");
}

/**
 * `manage.py migrate` processes still running in the API container (left by a run that was
 * killed: `compose exec` ends with its client, the command in the container does not). Read from
 * the container's /proc with its own sh (podman's compat API answers `compose top` with EOF).
 */
export async function migrateProcesses(d: Deployment): Promise<string[]> {
  const script = `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null; echo; done`;
  const out = await compose(d, "list the processes in the API container", ["exec", "-T", d.settings.services.api, "sh", "-c", script]);
  const manage = d.settings.manage.split(/\s+/).filter(Boolean).join(" ");
  return out.split("\n").map((l) => l.trim()).filter((l) => l.includes(`${manage} migrate`));
}

/**
 * Writes a file atomically: a temp file beside it, then rename, and only once the whole text is
 * written (a failed write, e.g. a full disk, leaves the file as it was and removes the temp file).
 */
export async function writeFileAtomically(d: Deployment, file: string, text: string): Promise<void> {
  const tmp = shq(`${file}.tmp-${process.pid}`);
  await d.host.run(`write ${file}`, `if cat > ${tmp}; then chmod --reference=${shq(file)} ${tmp} 2>/dev/null; mv -f ${tmp} ${shq(file)}; else rm -f ${tmp}; exit 1; fi`, { stdin: text });
}

// ---- database ------------------------------------------------------------------------------

const pgArgs = (s: UtilitarianSettings) => `-h ${shq(s.database.host)} -p ${s.database.port} -U ${shq(s.database.user)}`;
/** A PostgreSQL client program: from database.tools, or as the host's PATH finds it. */
const pg = (s: UtilitarianSettings, program: "pg_dump" | "pg_restore" | "createdb" | "dropdb" | "psql") =>
  s.database.tools ? shq(path.posix.join(s.database.tools, program)) : program;
/** Reads the password from stdin into PGPASSWORD (never on a command line, never in a file). */
const withPassword = (script: string) => `IFS= read -r PGPASSWORD; export PGPASSWORD; set -e; ${script}`;

export interface Backup {
  path: string;
  sha256: string;
}

/** A verified backup of this upgrade already on the host (its checksum file is written only after verification). */
export async function existingBackup(d: Deployment, from: string, to: string): Promise<(Backup & { intact: boolean }) | undefined> {
  const dir = d.settings.backups.dir;
  const out = await d.host.run(
    "look for a verified backup",
    `for f in $(ls -1 ${shq(dir)}/${backupPrefix(from, to)}*.dump.sha256 2>/dev/null | sort | tail -n 1); do d="\${f%.sha256}"; s="$(cat "$f")"; if [ -f "$d" ] && [ "$(sha256sum "$d" | cut -d' ' -f1)" = "$s" ]; then echo "ok $d $s"; else echo "bad $d $s"; fi; done`,
  );
  const [status, file, sha] = out.trim().split(" ");
  return file ? { path: file, sha256: sha ?? "", intact: status === "ok" } : undefined;
}

const backupPrefix = (from: string, to: string) => `utilitarian-${from}-to-${to}-`;

/**
 * pg_dump -Fc to a timestamped file, then verified: `pg_restore --list` reads its table of
 * contents and a restore into a scratch database reads it whole (the scratch database is dropped
 * after). The checksum file is written last: its presence means "verified". A dump that does not
 * verify is renamed `<file>.unverified` (kept for inspection, never used).
 */
export async function takeVerifiedBackup(d: Deployment, from: string, to: string): Promise<Backup & { tables: number }> {
  const s = d.settings;
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const file = path.posix.join(s.backups.dir, `${backupPrefix(from, to)}${stamp}.dump`);
  const scratch = `${s.database.name}_verify_${stamp.toLowerCase()}`;
  const f = shq(file);
  const script = withPassword(
    [
      `umask 077; mkdir -p ${shq(s.backups.dir)}`,
      `not_verified() { echo "$2" >&2; mv -f ${f} ${shq(`${file}.unverified`)}; exit $1; }`,
      `${pg(s, "pg_dump")} -Fc ${pgArgs(s)} -d ${shq(s.database.name)} -f ${shq(`${file}.partial`)} || { echo "pg_dump failed" >&2; rm -f ${shq(`${file}.partial`)}; exit 11; }`,
      `mv -f ${shq(`${file}.partial`)} ${f}`,
      `entries=$(${pg(s, "pg_restore")} --list ${f} 2>&1) || not_verified 12 "pg_restore --list cannot read it: $(echo "$entries" | tail -n 2 | tr '\\n' ' ')"`,
      `${pg(s, "createdb")} ${pgArgs(s)} ${shq(scratch)} || exit 13`,
      `drop_scratch() { ${pg(s, "dropdb")} --if-exists ${pgArgs(s)} ${shq(scratch)} >/dev/null 2>&1; }`,
      "trap drop_scratch EXIT",
      `restored=$(${pg(s, "pg_restore")} --no-owner --exit-on-error ${pgArgs(s)} -d ${shq(scratch)} ${f} 2>&1) || not_verified 14 "the restore into a scratch database failed: $(echo "$restored" | tail -n 2 | tr '\\n' ' ')"`,
      `tables=$(${pg(s, "psql")} ${pgArgs(s)} -d ${shq(scratch)} -tAc "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")`,
      `sha256sum ${f} | cut -d' ' -f1 > ${shq(`${file}.sha256`)}`,
      `echo "$tables $(cat ${shq(`${file}.sha256`)})"`,
    ].join("\n"),
  );
  const result = await d.host.exec(`bash -c ${shq(script)}`, { stdin: `${s.database.password}\n`, timeoutMs: s.deadlines.migrateSeconds * 1000 });
  if (result.code !== 0) {
    const why = lastLines(result.stderr || result.stdout);
    const step = result.code === 11 ? "dump the database" : result.code === 13 ? "create a scratch database to verify the backup" : "verify the backup";
    throw new UpgradeError({
      what: `${step} (${s.database.user}@${s.database.host}:${s.database.port}/${s.database.name}) on ${d.host.name}`,
      why,
      hint:
        result.code === 11
          ? /No space left on device|Disk quota exceeded|File too large/i.test(why)
            ? `${s.backups.dir} has no room for the dump: free space there or set backups.dir to a larger disk, then run again; nothing was stopped`
            : "check that the database is reachable from the host and the database settings; nothing was stopped"
          : result.code === 13
            ? "the database user needs CREATEDB to verify a backup by restoring it; nothing was stopped"
            : `the backup does not restore, so it is not one (kept as ${file}.unverified, never used): check free space in ${s.backups.dir} and that pg_dump (database.tools) matches the server, then run again; nothing was stopped`,
      permanent: true,
    });
  }
  const [tables, sha256] = result.stdout.trim().split("\n").at(-1)!.split(" ");
  return { path: file, sha256: sha256!, tables: Number(tables) };
}

export const restoreCommand = (s: UtilitarianSettings, backup: string) =>
  `PGPASSWORD=… ${s.database.tools ? path.posix.join(s.database.tools, "pg_restore") : "pg_restore"} --clean --if-exists --no-owner -h ${s.database.host} -p ${s.database.port} -U ${s.database.user} -d ${s.database.name} ${backup}`;

/** Removes verified backups older than keepDays, never `keep`. */
export async function pruneBackups(d: Deployment, keep: string): Promise<string> {
  const { dir, keepDays } = d.settings.backups;
  const out = await d.host.run(
    "prune old backups",
    `find ${shq(dir)} -maxdepth 1 -name 'utilitarian-*.dump' -mtime +${keepDays} ! -path ${shq(keep)} -print -exec rm -f {} {}.sha256 \\;`,
  );
  const removed = out.trim().split("\n").filter(Boolean);
  return removed.length === 0 ? `none older than ${keepDays} days` : `removed ${removed.length}`;
}

// ---- RabbitMQ ------------------------------------------------------------------------------

/** Messages ready per queue (undefined: the queue does not exist). */
export async function queueDepths(d: Deployment): Promise<Record<string, number | undefined>> {
  const mq = d.settings.rabbitmq!;
  const vhost = mq.vhost ? ` -p ${shq(mq.vhost)}` : "";
  const out = await d.host.run("list the RabbitMQ queues", `${mq.ctl} -q list_queues${vhost} --no-table-headers name messages`);
  const rows = new Map(out.split("\n").map((l) => l.trim().split(/\s+/)).filter((r) => r.length >= 2).map(([n, m]) => [n!, Number(m)]));
  return Object.fromEntries(mq.queues.map((q) => [q, rows.get(q)]));
}
