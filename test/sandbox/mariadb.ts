import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { commandProbe, freePort, startGuarded, waitUntilReady, type ManagedProcess } from "./processes";

/**
 * Debian's MariaDB (Open edX runs MySQL) as a bed-local server: its own data directory
 * (mariadb-install-db), a loopback port, a database and a user with a generated password. As root
 * the server runs as the `mysql` system user, the way Debian runs it.
 */
export interface MariaDb {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Generated per bed. */
  readonly password: string;
  /** Runs SQL as the server's root over its socket; returns the rows, tab-separated. */
  query(sql: string): string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

const MARIADBD = "/usr/sbin/mariadbd";

export async function startMariaDb(options: { database?: string; user?: string } = {}): Promise<MariaDb> {
  if (!fs.existsSync(MARIADBD)) throw new Error(`${MARIADBD} not found: run \`npm run provision\` (installs mariadb-server)`);
  const database = options.database ?? "edxapp";
  const user = options.user ?? "edxapp001";
  const password = randomBytes(18).toString("base64url");
  const asRoot = process.getuid?.() === 0;
  // Outside the bed's own 0700 dir: the mysql user must reach it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-mariadb-"));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, "data");
  const socket = path.join(dir, "mysqld.sock");
  // A temp dir of its own: two bootstraps sharing /tmp collide on their temporary tables.
  const tmp = path.join(dir, "tmp");
  fs.mkdirSync(tmp);
  if (asRoot) execFileSync("chown", ["-R", "mysql:mysql", dir]);
  const userArgs = asRoot ? ["--user=mysql"] : [];
  execFileSync("mariadb-install-db", [`--datadir=${data}`, ...userArgs, "--auth-root-authentication-method=socket", "--skip-test-db", `--tmpdir=${tmp}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const port = await freePort();
  const proc = startGuarded({
    name: "mariadb",
    command: MARIADBD,
    args: [
      "--no-defaults",
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--tmpdir=${tmp}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--pid-file=${path.join(dir, "mysqld.pid")}`,
      "--skip-log-bin",
      "--innodb-buffer-pool-size=32M",
      "--innodb-log-file-size=8M",
      ...userArgs,
    ],
  });
  const stop = async () => {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(proc, commandProbe("mariadb", ["--no-defaults", `--socket=${socket}`, "-u", "root", "--batch", "-e", "SELECT 1"]));
    const query = (sql: string) =>
      execFileSync("mariadb", ["--no-defaults", `--socket=${socket}`, "-u", "root", "--batch", "--skip-column-names", "-e", sql], { encoding: "utf8" }).trim();
    query(
      `CREATE DATABASE ${database} CHARACTER SET utf8mb4; CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; ` +
        `GRANT ALL ON ${database}.* TO '${user}'@'127.0.0.1';`,
    );
    return { host: "127.0.0.1", port, database, user, password, query: (sql) => query(`USE ${database}; ${sql}`), process: proc, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
