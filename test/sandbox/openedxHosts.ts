import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { toolchainCache } from "../../lib/toolchain";
import { REPO_ROOT } from "./fixtures";
import type { MariaDb } from "./mariadb";
import { delay, freePort, httpProbe, startGuarded, waitUntilReady } from "./processes";

/**
 * One fixture Open edX host of the bed: a directory with the fixture Django app
 * (test/fixtures/openedx/app) at the host's release: on a web host lms and cms (`manage.py lms|cms
 * runserver`, each on a port of its own), on a worker host the worker stand-in (`manage.py lms
 * worker_beat`, which beats in the database while it runs). Two layouts, as Open edX hosts run:
 *
 * - supervisor (openedx/configuration's native installation): a real supervisord (PyPI
 *   `supervisor`) runs the programs; bin/ holds what /edx/bin has: supervisorctl,
 *   edxapp-migrate-lms|cms, manage (manage.py lms|cms <command>).
 * - compose (MIT's current EC2 layout): the programs are services of a docker-compose.yaml in the
 *   host's directory, run by the bed's real Docker Compose on its podman engine (host network).
 *   The bed has one image, Debian bookworm with python3 (the Utilitarian fixture's); the app, the
 *   hosts' venv and the host's directory are bind-mounted at their own paths; the image's Python
 *   runs the app with the venv's pure-Python packages (PYTHONPATH), and `python` on PATH is it, so
 *   `python manage.py …` in a `compose run` is the app's.
 */
export interface OpenEdxHost {
  id: string;
  release: string;
  role: "web" | "worker";
  layout: "supervisor" | "compose";
  dir: string;
  /** lms and cms ports (web hosts). */
  ports: { lms: number; cms: number };
  /** Each program / service and its state: RUNNING, STOPPED, … */
  status(): Record<string, string>;
  stop(): Promise<void>;
  stopped: boolean;
}

/** The compose layout's engine: the Docker Compose binary and the podman service it talks to. */
export interface ComposeEngine {
  readonly binary: string;
  readonly dockerHost: string;
  /** The image every service runs. */
  readonly image: string;
}

const run = promisify(execFile);

export const APP = path.join(REPO_ROOT, "test", "fixtures", "openedx", "app");

/** The hosts' own Python environment (Django, supervisor, PyMySQL), cached by its requirements. */
export function openEdxVenv(): string {
  const requirements = path.join(REPO_ROOT, "test", "fixtures", "openedx", "requirements.txt");
  const hash = createHash("sha256").update(fs.readFileSync(requirements)).digest("hex").slice(0, 12);
  const dir = path.join(toolchainCache(), `openedx-venv-${hash}`);
  if (fs.existsSync(path.join(dir, ".complete"))) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.build-`);
  execFileSync("python3", ["-m", "venv", tmp]);
  execFileSync(path.join(tmp, "bin", "python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements], { stdio: ["ignore", "ignore", "pipe"] });
  fs.writeFileSync(path.join(tmp, ".complete"), "");
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
  return dir;
}

export async function bootHost(options: { root: string; id: string; release: string; role: "web" | "worker"; python: string; db: MariaDb; markers: string[]; compose?: ComposeEngine }): Promise<OpenEdxHost> {
  const { root, id, release, role, python, db } = options;
  const dir = path.join(root, "hosts", id);
  fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
  const ports = { lms: await freePort(), cms: await freePort() };
  fs.writeFileSync(path.join(dir, "release"), `${release}\n`);
  for (const m of options.markers) fs.writeFileSync(path.join(dir, m), "");
  fs.writeFileSync(path.join(dir, "db.json"), JSON.stringify({ host: db.host, port: db.port, name: db.database, user: db.user, password: db.password }), { mode: 0o600 });
  if (options.compose) return bootComposeHost({ id, release, role, dir, ports, python, engine: options.compose });
  const conf = path.join(dir, "supervisord.conf");
  const env = `EDXAPP_HOST_DIR="${dir}",PYTHONUNBUFFERED="1"`;
  const program = (name: string, command: string) =>
    `[program:${name}]\ncommand=${command}\nenvironment=${env}\ndirectory=${APP}\nautostart=true\nstartsecs=1\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=5\nredirect_stderr=true\nstdout_logfile=${dir}/${name}.log\n`;
  const serve = (service: "lms" | "cms") => `${python} ${APP}/manage.py ${service} runserver 127.0.0.1:${ports[service]} --noreload --skip-checks`;
  const programs = role === "web" ? program("lms", serve("lms")) + program("cms", serve("cms")) : program("lms_default_worker", `${python} ${APP}/manage.py lms worker_beat`);
  fs.writeFileSync(
    conf,
    `[unix_http_server]\nfile=${dir}/supervisor.sock\n[supervisord]\nlogfile=${dir}/supervisord.log\npidfile=${dir}/supervisord.pid\nnodaemon=true\nuser=root\n` +
      `[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n[supervisorctl]\nserverurl=unix://${dir}/supervisor.sock\n` +
      programs,
  );
  const script = (name: string, body: string) => fs.writeFileSync(path.join(dir, "bin", name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  script("supervisorctl", `exec ${python} -m supervisor.supervisorctl -c ${conf} "$@"`);
  script("manage", `cd ${APP} && EDXAPP_HOST_DIR=${dir} exec ${python} manage.py "$@"`);
  for (const service of ["lms", "cms"]) script(`edxapp-migrate-${service}`, `cd ${APP} && EDXAPP_HOST_DIR=${dir} exec ${python} manage.py ${service} migrate --noinput`);
  const supervisord = startGuarded({ name: `supervisord ${id}`, command: python, args: ["-m", "supervisor.supervisord", "-c", conf] });
  // Ready when supervisorctl reaches it over its socket and it answers with its pid.
  await waitUntilReady(supervisord, () =>
    new Promise((resolve) =>
      execFile(path.join(dir, "bin", "supervisorctl"), ["pid"], { encoding: "utf8", timeout: 10_000 }, (_err, stdout, stderr) =>
        resolve(/^\d+$/.test(stdout.trim()) || `supervisorctl pid: ${(stdout || stderr).trim().split("\n").at(-1)}`),
      ),
    ),
  );
  const host: OpenEdxHost = {
    id,
    release,
    role,
    layout: "supervisor",
    dir,
    ports,
    status: () => supervisorStatus(dir),
    stop: async () => {
      host.stopped = true;
      await supervisord.stop();
    },
    stopped: false,
  };
  return host;
}

/** `supervisorctl status` of a host, as {program: state}. */
function supervisorStatus(dir: string): Record<string, string> {
  let out: string;
  try {
    out = execFileSync(path.join(dir, "bin", "supervisorctl"), ["status"], { encoding: "utf8" });
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? "");
  }
  return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/).slice(0, 2) as [string, string]));
}

/**
 * A compose-layout host: its docker-compose.yaml (project `edxapp-<instance id>`), brought up as
 * the host's boot would (`up -d`), ready when every service runs and the web services answer.
 * bin/compose runs the bed's Compose against the bed's engine, as `docker compose` on the host.
 */
async function bootComposeHost(o: { id: string; release: string; role: "web" | "worker"; dir: string; ports: { lms: number; cms: number }; python: string; engine: ComposeEngine }): Promise<OpenEdxHost> {
  const { id, dir, ports, engine } = o;
  // The image's own Python 3.11 (Debian's) runs the app; the venv gives only its pure-Python
  // packages (Django, PyMySQL) by PYTHONPATH, since its interpreter is the host's. `python` is what
  // edxapp images and the compose layout's commands call: a link to python3 on PATH.
  const venv = path.dirname(path.dirname(o.python));
  const lib = path.join(venv, "lib");
  const sitePackages = path.join(lib, fs.readdirSync(lib).find((d) => d.startsWith("python3"))!, "site-packages");
  fs.mkdirSync(path.join(dir, "pybin"), { recursive: true });
  fs.symlinkSync("/usr/bin/python3", path.join(dir, "pybin", "python"));
  const service = (command: string[]) => ({
    image: engine.image,
    network_mode: "host",
    working_dir: APP,
    environment: { EDXAPP_HOST_DIR: dir, PYTHONUNBUFFERED: "1", PYTHONPATH: sitePackages, PATH: `${dir}/pybin:/usr/local/bin:/usr/bin:/bin` },
    volumes: [`${APP}:${APP}:ro`, `${venv}:${venv}:ro`, `${dir}:${dir}`],
    command,
    stop_grace_period: "5s",
  });
  const serve = (name: "lms" | "cms") => service(["python", "manage.py", name, "runserver", `127.0.0.1:${ports[name]}`, "--noreload", "--skip-checks"]);
  const services = o.role === "web" ? { lms: serve("lms"), cms: serve("cms") } : { "lms-worker": service(["python", "manage.py", "lms", "worker_beat"]) };
  // JSON is YAML: Compose reads it as the compose file
  fs.writeFileSync(path.join(dir, "docker-compose.yaml"), JSON.stringify({ name: `edxapp-${id}`, services }, null, 2));
  fs.writeFileSync(path.join(dir, "bin", "compose"), `#!/bin/sh\nDOCKER_HOST=${engine.dockerHost} exec ${engine.binary} "$@"\n`, { mode: 0o755 });
  const args = (more: string[]) => ["-f", path.join(dir, "docker-compose.yaml"), ...more];
  const compose = async (more: string[], timeout = 120_000) => (await run(path.join(dir, "bin", "compose"), args(more), { encoding: "utf8", timeout })).stdout;
  // the fixture's status read is synchronous (as supervisorctl's is)
  const status = () => composeStatus(execFileSync(path.join(dir, "bin", "compose"), args(["ps", "--all", "--format", "json"]), { encoding: "utf8", timeout: 30_000 }));
  await compose(["up", "-d"], 300_000);
  // Ready when every service runs and each web service answers HTTP (any status: it serves).
  const answers = (port: number) => httpProbe(`http://127.0.0.1:${port}/heartbeat`, () => true)().catch((err: Error) => err.message);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const states = composeStatus(await compose(["ps", "--all", "--format", "json"], 30_000));
    const up = Object.keys(services).every((s) => states[s] === "RUNNING");
    const serving = o.role === "worker" || (await Promise.all([answers(ports.lms), answers(ports.cms)])).every((r) => r === true);
    if (up && serving) break;
    if (Date.now() > deadline) throw new Error(`compose host ${id} did not come up within 60 s: ${JSON.stringify(states)}`);
    await delay(250);
  }
  const host: OpenEdxHost = {
    id,
    release: o.release,
    role: o.role,
    layout: "compose",
    dir,
    ports,
    status,
    stop: async () => {
      host.stopped = true;
      await compose(["down", "--timeout", "2"]);
    },
    stopped: false,
  };
  return host;
}

/** `docker compose ps --all --format json` (one object per line) as {service: RUNNING | STOPPED | …}. */
function composeStatus(stdout: string): Record<string, string> {
  const rows = stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { Service: string; State: string });
  return Object.fromEntries(rows.map((r) => [r.Service, r.State === "running" ? "RUNNING" : r.State === "exited" || r.State === "created" ? "STOPPED" : r.State.toUpperCase()]));
}
