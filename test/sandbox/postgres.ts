import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { commandProbe, freePort, startGuarded, waitUntilReady, type ManagedProcess } from "./processes";

/**
 * Debian's PostgreSQL on a loopback port with a cluster of its own (initdb into a temp dir), a
 * database and a role with a generated password. PostgreSQL refuses to run as root, so as root
 * the server runs as the `postgres` system user (setpriv).
 */
export interface Postgres {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Generated per bed; a secret for the tests that look for leaks. */
  readonly password: string;
  /** postgresql://user:password@127.0.0.1:port/database */
  readonly url: string;
  /** The server's major version (15 on Debian 12). */
  readonly majorVersion: number;
  /** The directory of this PostgreSQL's programs (pg_dump, pg_restore, psql, …). */
  readonly bin: string;
  /** Runs SQL as the database's owner through psql; returns the rows, tab-separated. */
  query(sql: string): string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "initdb"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no PostgreSQL server under ${root}: run \`npm run provision\` (installs postgresql)`);
  return path.join(root, newest, "bin");
}

export async function startPostgres(options: { database?: string; user?: string; /** The role may create databases (e.g. a scratch restore). */ createDb?: boolean } = {}): Promise<Postgres> {
  const bin = postgresBin();
  const database = options.database ?? "backend";
  const user = options.user ?? "backend";
  const password = randomBytes(18).toString("base64url");
  const asRoot = process.getuid?.() === 0;
  // Not inside the bed's own (0700) dir: the postgres user must be able to reach it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-postgres-"));
  const data = path.join(dir, "data");
  const as = (command: string, args: string[]) =>
    asRoot ? { command: "setpriv", args: ["--reuid=postgres", "--regid=postgres", "--clear-groups", command, ...args] } : { command, args };
  const runAs = (command: string, args: string[], input?: string) => {
    const c = as(command, args);
    return execFileSync(c.command, c.args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  };
  if (asRoot) execFileSync("chown", ["postgres:postgres", dir]);
  try {
    runAs(path.join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"]);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${String((err as { stderr?: string }).stderr ?? err)}`);
  }
  const port = await freePort();
  const server = as(path.join(bin, "postgres"), ["-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${dir}`, "-c", "fsync=off"]);
  const proc = startGuarded({ name: "postgres", command: server.command, args: server.args });
  const stop = async () => {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Listening is not accepting: until recovery ends, connections get "the database system is starting up".
    await waitUntilReady(proc, commandProbe(path.join(bin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres"]));
    const psql = (sql: string, db = "postgres", role = "postgres") =>
      runAs(path.join(bin, "psql"), ["-h", dir, "-p", String(port), "-U", role, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t"], sql);
    // The password goes in on stdin, never on a command line.
    psql(`CREATE ROLE "${user}" LOGIN${options.createDb ? " CREATEDB" : ""} PASSWORD '${password}';\nCREATE DATABASE "${database}" OWNER "${user}";\n`);
    const majorVersion = Number(psql("SHOW server_version_num;").trim().slice(0, -4));
    return {
      host: "127.0.0.1",
      port,
      database,
      user,
      password,
      url: `postgresql://${user}:${password}@127.0.0.1:${port}/${database}`,
      majorVersion,
      bin,
      query: (sql) => psql(sql, database, user).trim(),
      process: proc,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
