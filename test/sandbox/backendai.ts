import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { pythonVenv, toolchainCache } from "../../lib/toolchain";
import { REPO_ROOT } from "./fixtures";
import type { Sandbox } from "./index";
import { startPackageIndex, wheelsIn, type PackageIndex } from "./packageIndex";
import { startPostgres, type Postgres } from "./postgres";

/**
 * A fixture Backend.AI cluster on the bed: every component is a "host" reached through the bed's
 * sshd, with its own Python virtualenv, a real process started and stopped by a service script,
 * and real pip installing the fixture wheels (test/fixtures/backendai/build_wheels.py) from the
 * bed's package index on loopback (packageIndex.ts: the simple API as PyPI serves it), which is also
 * where the workflow reads its release catalog. Its lines mirror PyPI's: 23.09 needs Python 3.11
 * (the bed's own), 24.03 and 24.09 need 3.12 (a second real interpreter, named in the hosts'
 * `pythons`); 24.03.1 is yanked, 23.09.11 is listed without a file. Each host's environment is
 * `venv`, a symlink to `venv-py3.11`, so a hop can switch it. The manager's Alembic migrations
 * run against the bed's real PostgreSQL.
 */
export const FIXTURE_RELEASES = ["23.09.8", "23.09.10", "24.03.0", "24.03.1", "24.03.2", "24.03.11", "24.09.0"] as const;
/** First upload dates on the bed's index: the real releases' (PyPI), and the yanked one's. */
const UPLOADED: Record<string, string> = {
  "23.09.8": "2024-01-20", "23.09.10": "2024-03-27", "24.03.0": "2024-04-05", "24.03.1": "2024-04-10",
  "24.03.2": "2024-04-17", "24.03.11": "2024-10-21", "24.09.0": "2024-10-21",
};
const YANKED: Record<string, string> = { "24.03.1": "broken version" };
const LISTED_ONLY = ["23.09.11"];

/**
 * The bed's second interpreter (3.12, what the fixture's 24.03 line needs): UO_PYTHON312, else
 * python3.12 on PATH, else pyenv's (this machine's kind ships CPython 3.12 there). Debian 12 has
 * only 3.11; its packages hold no other version.
 */
export function secondPython(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.UO_PYTHON312, ...(env.PATH ?? "").split(":").map((d) => path.join(d, "python3.12"))];
  const pyenv = path.join(env.PYENV_ROOT ?? path.join(os.homedir(), ".pyenv"), "versions");
  if (fs.existsSync(pyenv)) for (const v of fs.readdirSync(pyenv).filter((v) => /^3\.12\.\d+$/.test(v)).sort().reverse()) candidates.push(path.join(pyenv, v, "bin", "python3.12"));
  const found = candidates.find((c) => c && fs.existsSync(c) && !/\.pyenv\/shims/.test(c));
  if (!found) throw new Error("the Backend.AI bed needs a second Python, 3.12 (the fixture's 24.03 line moves to it): set UO_PYTHON312 to one, or install CPython 3.12 (pyenv install 3.12)");
  return found;
}

/** The Python 3.12 wheels of the manager's dependencies (scripts/provision-python.sh). */
export function secondPythonWheels(env: NodeJS.ProcessEnv = process.env): string {
  const cache = toolchainCache(env);
  const dir = fs.readdirSync(cache).find((d) => d.startsWith("backendai-py3.12-wheels-") && fs.existsSync(path.join(cache, d, ".complete")));
  if (!dir) throw new Error(`no Python 3.12 wheels for the Backend.AI bed in ${cache}: run \`npm run provision\``);
  return path.join(cache, dir);
}
export const DEFAULT_COMPONENTS = ["manager", "agent", "storage-proxy"] as const;

export interface FixtureHost {
  component: string;
  dir: string;
  python: string;
  pythons: Record<string, string>;
  /** The manager's alembic.ini (holds the database URL). */
  alembicIni?: string;
  service: { start: string; stop: string; status: string };
}

export interface BackendAiFixture {
  readonly wheelsDir: string;
  /** The bed's package index (pip's --index-url, and the catalog's source). */
  readonly index: PackageIndex;
  readonly postgres: Postgres;
  /** The SSH private key every host accepts (the bed's client key). */
  readonly privateKey: string;
  readonly hosts: FixtureHost[];
  /** Head revision of each fixture release. */
  readonly heads: Record<string, string>;
  /** Settings for a BackendAiCluster at `version` (the SSH key in clear: wrap it as a secret). */
  settings(version: string): {
    version: string;
    hosts: Array<{
      component: string;
      ssh: { host: string; port: number; user: string; privateKey: string; knownHostsPath: string };
      python: string;
      pythons: Record<string, string>;
      alembicIni?: string;
      service: FixtureHost["service"];
    }>;
    packageIndex: { indexUrl: string };
  };
  /** The directory the host's environment symlink `venv` points at. */
  environment(component: string): string;
  /** The Python version the host's environment runs (3.11.7). */
  pythonOf(component: string): string;
  /**
   * The cluster as an own stack's config declares it (`upgrade-orchestrator:systems.<name>`):
   * kind "backendai", the key named by a secret config key instead of given in clear.
   */
  systemConfig(version: string, keyConfig: string): { kind: "backendai"; hosts: Array<Record<string, unknown> & { ssh: Record<string, unknown> }> } & Record<string, unknown>;
  installedVersion(component: string): string | undefined;
  running(component: string): boolean;
  /** The database's Alembic revision(s). */
  revision(): string[];
  /** Columns of a table in the manager's database. */
  columns(table: string): string[];
  stop(): Promise<void>;
}

const SERVICE_SCRIPT = `#!/usr/bin/env bash
# start|stop|status of one fixture Backend.AI component: a real process, its pid in run/pid.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
run="$here/run"
export BACKENDAI_RUN_DIR="$run" BACKENDAI_ALEMBIC_INI="$here/alembic.ini"
alive() { [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; }
case "\${1:-}" in
  start)
    alive && exit 0
    mkdir -p "$run"; rm -f "$run/ready"
    setsid "$here/venv/bin/python" -m "ai.backend.$MODULE.server" >"$here/server.log" 2>&1 </dev/null &
    echo $! > "$run/pid"
    for _ in $(seq 150); do
      [ -f "$run/ready" ] && exit 0
      alive || { rm -f "$run/pid"; tail -n 3 "$here/server.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "$MODULE did not report ready within 15s" >&2; exit 1 ;;
  stop)
    alive || { rm -f "$run/pid" "$run/ready"; exit 0; }
    pid="$(cat "$run/pid")"; kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$run/pid" "$run/ready"; exit 0; }; sleep 0.1; done
    kill -KILL "$pid"; rm -f "$run/pid" "$run/ready" ;;
  status) alive ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`;

export async function startBackendAiCluster(
  bed: Sandbox,
  options: { version: string; components?: string[]; dir?: string },
): Promise<BackendAiFixture> {
  if (!bed.sshd) throw new Error("the Backend.AI fixture needs the bed's sshd");
  const sshd = bed.sshd;
  const tools = pythonVenv();
  const toolsPython = path.join(tools, "bin", "python");
  const root = options.dir ?? path.join(bed.dir, "backendai");
  const wheelsDir = path.join(root, "wheels");
  const components = options.components ?? [...DEFAULT_COMPONENTS];
  fs.mkdirSync(root, { recursive: true });
  const built = execFileSync(toolsPython, [path.join(REPO_ROOT, "test", "fixtures", "backendai", "build_wheels.py"), wheelsDir, ...FIXTURE_RELEASES], { encoding: "utf8" });
  const heads = JSON.parse(built.trim().split("\n").at(-1)!) as Record<string, string>;
  const toolsSitePackages = execFileSync(toolsPython, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], { encoding: "utf8" }).trim();

  const python312 = secondPython();
  const index = await startPackageIndex({
    wheels: [...wheelsIn(wheelsDir), ...wheelsIn(secondPythonWheels())],
    python: toolsPython,
    metadataScript: path.join(REPO_ROOT, "test", "fixtures", "backendai", "build_wheels.py"),
    uploaded: Object.fromEntries(Object.entries(UPLOADED).flatMap(([v, d]) => [...components, "webserver"].map((c) => [`backend-ai-${c} ${v}`, d]))),
    yanked: Object.fromEntries(Object.entries(YANKED).flatMap(([v, why]) => [...components, "webserver"].map((c) => [`backend-ai-${c} ${v}`, why]))),
    listedOnly: Object.fromEntries([...components, "webserver"].map((c) => [`backend-ai-${c}`, LISTED_ONLY])),
  });
  const postgres = await startPostgres();
  const hosts: FixtureHost[] = [];
  const stop = async () => {
    for (const host of hosts) {
      try {
        execFileSync(path.join(host.dir, "svc.sh"), ["stop"], { stdio: "ignore", timeout: 15_000 });
      } catch {
        /* already stopped */
      }
    }
    await postgres.stop();
    await index.stop();
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const component of components) {
      const dir = path.join(root, component);
      fs.mkdirSync(dir, { recursive: true });
      // The environment the starting release needs: 23.09 runs the bed's own Python 3.11, with the
      // bed's tools (pip, Alembic, SQLAlchemy, psycopg) visible through a .pth file as if installed
      // in it; 24.03 and later a 3.12 environment with those installed from the wheels.
      const py = options.version.startsWith("23.") ? "3.11" : "3.12";
      const venv = path.join(dir, `venv-py${py}`);
      if (py === "3.11") {
        execFileSync(toolsPython, ["-m", "venv", "--without-pip", venv]);
        const sitePackages = execFileSync(path.join(venv, "bin", "python"), ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], { encoding: "utf8" }).trim();
        fs.writeFileSync(path.join(sitePackages, "bed-tools.pth"), `${toolsSitePackages}\n`);
      } else {
        execFileSync(python312, ["-m", "venv", venv]);
      }
      fs.symlinkSync(path.basename(venv), path.join(dir, "venv"));
      const python = path.join(dir, "venv", "bin", "python");
      execFileSync(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links", wheelsDir, "--find-links", secondPythonWheels(), `backend.ai-${component}==${options.version}`]);
      const script = path.join(dir, "svc.sh");
      fs.writeFileSync(script, SERVICE_SCRIPT.replace(/\$MODULE/g, component.replace(/-/g, "_")), { mode: 0o755 });
      const host: FixtureHost = { component, dir, python, pythons: { "3.12": python312 }, service: { start: `${script} start`, stop: `${script} stop`, status: `${script} status` } };
      if (component === "manager") {
        host.alembicIni = path.join(dir, "alembic.ini");
        fs.writeFileSync(host.alembicIni, `[alembic]\nscript_location = ai.backend.manager.models:alembic\nsqlalchemy.url = ${postgres.url}\n`, { mode: 0o600 });
        execFileSync(python, ["-m", "alembic", "-c", host.alembicIni, "upgrade", "head"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
      }
      hosts.push(host);
    }
    for (const host of hosts) execFileSync(path.join(host.dir, "svc.sh"), ["start"], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
  } catch (err) {
    await stop();
    throw err;
  }

  const hostOf = (component: string) => {
    const host = hosts.find((h) => h.component === component);
    if (!host) throw new Error(`no ${component} in the fixture cluster`);
    return host;
  };
  const privateKey = fs.readFileSync(sshd.privateKeyPath, "utf8");
  const settings: BackendAiFixture["settings"] = (version) => ({
      version,
      hosts: hosts.map((h) => ({
        component: h.component,
        ssh: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey, knownHostsPath: sshd.knownHostsPath },
        python: h.python,
        pythons: h.pythons,
        ...(h.alembicIni ? { alembicIni: h.alembicIni } : {}),
        service: h.service,
      })),
      packageIndex: { indexUrl: index.url },
    });
  return {
    wheelsDir,
    index,
    environment: (component) => fs.realpathSync(path.join(hostOf(component).dir, "venv")),
    pythonOf: (component) => execFileSync(hostOf(component).python, ["-c", "import platform; print(platform.python_version())"], { encoding: "utf8" }).trim(),
    postgres,
    privateKey,
    hosts,
    heads,
    settings,
    systemConfig(version, keyConfig) {
      const { hosts: withKeys, ...rest } = settings(version);
      const hosts = withKeys.map(({ ssh: { privateKey: _key, ...ssh }, ...host }) => ({ ...host, ssh: { ...ssh, privateKeyConfig: keyConfig } }));
      return { kind: "backendai", ...rest, hosts };
    },
    installedVersion(component) {
      const host = hostOf(component);
      const out = execFileSync(host.python, ["-c", `import importlib.metadata as m\ntry: print(m.version("backend.ai-${component}"))\nexcept m.PackageNotFoundError: print("")`], { encoding: "utf8" });
      return out.trim() || undefined;
    },
    running(component) {
      try {
        execFileSync(path.join(hostOf(component).dir, "svc.sh"), ["status"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    },
    revision: () => postgres.query("SELECT version_num FROM alembic_version ORDER BY 1;").split("\n").filter(Boolean),
    columns: (table) =>
      postgres.query(`SELECT column_name FROM information_schema.columns WHERE table_name = '${table}' ORDER BY 1;`).split("\n").filter(Boolean),
    stop,
  };
}
