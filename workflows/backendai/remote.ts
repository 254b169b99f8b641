import { UpgradeError } from "../../lib/errors";
import { connectRemote, shq, type RemoteHost } from "../../lib/ssh";
import { packageOf, serviceOf, type HostSettings, type PackageIndex } from "./settings";

/**
 * What the workflow does on one Backend.AI host, over SSH: read the installed version and the
 * schema revision, stop/start the component, pip install, run Alembic and the `backend.ai` CLI.
 * Everything reads before it acts; nothing here decides the order (that is runbook.ts).
 */
export interface Host {
  readonly settings: HostSettings;
  readonly name: string;
  run(what: string, command: string, options?: { stdin?: string; timeoutMs?: number }): Promise<string>;
  close(): void;
}

export { shq };

export async function connectHost(settings: HostSettings, commandTimeoutMs: number): Promise<Host> {
  const name = `${settings.component}@${settings.ssh.host}${settings.ssh.port ? `:${settings.ssh.port}` : ""}`;
  let remote: RemoteHost;
  try {
    remote = await connectRemote(
      { host: settings.ssh.host, port: settings.ssh.port, username: settings.ssh.user, privateKey: settings.ssh.privateKey, knownHostsPath: settings.ssh.knownHostsPath },
      { name, commandTimeoutMs },
    );
  } catch (err) {
    // Name the component: several hosts often share one address or user.
    if (!(err instanceof UpgradeError)) throw err;
    throw new UpgradeError({ what: `connect to the ${settings.component} host (${err.what.replace(/^connect to /, "")})`, why: err.why, hint: err.hint, permanent: err.permanent, cause: err });
  }
  return { settings, name, run: remote.run, close: remote.close };
}

/** The component's installed package version, or undefined when it is not installed. */
export async function installedVersion(host: Host): Promise<string | undefined> {
  const script = `import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    print("")`;
  const out = await host.run(`read the installed ${packageOf(host.settings.component)}`, `${shq(host.settings.python)} - ${shq(packageOf(host.settings.component))}`, { stdin: script });
  return out.trim() || undefined;
}

export async function isRunning(host: Host): Promise<boolean> {
  return host.run("status", serviceOf(host.settings).status).then(() => true, () => false);
}

export async function stopComponent(host: Host): Promise<void> {
  await host.run(`stop ${host.settings.component}`, serviceOf(host.settings).stop);
}

export async function startComponent(host: Host): Promise<void> {
  await host.run(`start ${host.settings.component}`, serviceOf(host.settings).start);
  if (!(await isRunning(host))) {
    throw new UpgradeError({ what: `start ${host.settings.component} on ${host.name}`, why: "its status command says it is not running after start" });
  }
}

/** pip's options for the settings' package index. */
export function indexArgs(index: PackageIndex | undefined): string[] {
  const args: string[] = [];
  if (index?.noIndex) args.push("--no-index");
  if (index?.indexUrl) args.push("--index-url", index.indexUrl);
  if (index?.trustedHost) args.push("--trusted-host", index.trustedHost);
  for (const link of index?.findLinks ?? []) args.push("--find-links", link);
  return args;
}

export async function pipInstall(host: Host, version: string, index: PackageIndex | undefined): Promise<void> {
  const args = ["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--upgrade", ...indexArgs(index)];
  const spec = `${packageOf(host.settings.component)}==${version}`;
  await host.run(`pip install ${spec}`, [host.settings.python, ...args, spec].map(shq).join(" "));
}

/** The schema as Alembic sees it: the database's revision(s) and the installed package's head(s). */
export interface SchemaState {
  current: string[];
  heads: string[];
  /** Whether `ancestor` is at or below the current revision in the installed package's tree. */
  hasAncestor?: boolean;
}

const SCHEMA_SCRIPT = `import json, sys
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
cfg = Config(sys.argv[1])
script = ScriptDirectory.from_config(cfg)
engine = create_engine(cfg.get_main_option("sqlalchemy.url"))
with engine.connect() as conn:
    current = list(MigrationContext.configure(conn).get_current_heads())
state = {"current": current, "heads": list(script.get_heads())}
if len(sys.argv) > 2:
    try:
        state["hasAncestor"] = any(r.revision == sys.argv[2] for c in current for r in script.iterate_revisions(c, "base"))
    except Exception:
        state["hasAncestor"] = False
engine.dispose()
print(json.dumps(state))`;

export async function schemaState(manager: Host, ancestor?: string): Promise<SchemaState> {
  const { python, alembicIni } = manager.settings;
  const out = await manager.run("read the schema revision", [python, "-", alembicIni!, ...(ancestor ? [ancestor] : [])].map(shq).join(" "), { stdin: SCHEMA_SCRIPT });
  return JSON.parse(out.trim().split("\n").at(-1)!) as SchemaState;
}

export const atHead = (s: SchemaState) => s.current.length > 0 && [...s.current].sort().join() === [...s.heads].sort().join();

/** `alembic upgrade|downgrade <target>` with the manager's alembic.ini, run from its directory. */
export async function alembic(manager: Host, direction: "upgrade" | "downgrade", target: string): Promise<void> {
  const { python, alembicIni } = manager.settings;
  const dir = alembicIni!.includes("/") ? alembicIni!.slice(0, alembicIni!.lastIndexOf("/")) || "/" : ".";
  await manager.run(`alembic ${direction} ${target}`, `cd ${shq(dir)} && ${[python, "-m", "alembic", "-c", alembicIni!, direction, target].map(shq).join(" ")}`);
}

/** `backend.ai mgr schema apply-missing-revisions <previous>`: fills in revisions a major upgrade skips. */
export async function applyMissingRevisions(manager: Host, previous: string): Promise<string> {
  const { python, alembicIni } = manager.settings;
  const cli = `b="$(dirname ${shq(python)})/backend.ai"; [ -x "$b" ] || b=backend.ai; "$b"`;
  return manager.run(
    `backend.ai mgr schema apply-missing-revisions ${previous}`,
    `${cli} mgr schema apply-missing-revisions ${shq(previous)} -f ${shq(alembicIni!)}`,
  );
}

/** One value from the manager's database, connected through its alembic.ini (the URL never leaves the host). */
const SCALAR_SCRIPT = `import sys
from alembic.config import Config
from sqlalchemy import create_engine, text
engine = create_engine(Config(sys.argv[1]).get_main_option("sqlalchemy.url"))
with engine.connect() as conn:
    print(conn.execute(text(sys.argv[2])).scalar())
engine.dispose()`;

async function scalar(manager: Host, what: string, sql: string): Promise<string> {
  const { python, alembicIni } = manager.settings;
  return (await manager.run(what, [python, "-", alembicIni!, sql].map(shq).join(" "), { stdin: SCALAR_SCRIPT })).trim();
}

/** Compute sessions that are not finished (the manager database's `sessions` table). */
export async function activeSessions(manager: Host): Promise<number> {
  return Number(await scalar(manager, "count the running compute sessions", "SELECT count(*) FROM sessions WHERE status NOT IN ('TERMINATED', 'CANCELLED', 'ERROR')"));
}

/** The server's version as a number (150004 for 15.4). */
export async function postgresVersion(manager: Host): Promise<number> {
  return Number(await scalar(manager, "read the PostgreSQL version", "SHOW server_version_num"));
}

export async function pythonVersion(host: Host): Promise<string> {
  const out = await host.run("read the Python version", `${shq(host.settings.python)} -c 'import platform; print(platform.python_version())'`);
  return out.trim();
}
