import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { toolchainCache } from "../../lib/toolchain";
import { REPO_ROOT } from "./fixtures";
import type { MariaDb } from "./mariadb";
import { freePort, startGuarded, waitUntilReady, type ManagedProcess } from "./processes";

/**
 * One fixture Open edX host of the bed: a directory with a real supervisord (PyPI `supervisor`)
 * supervising the fixture Django app (test/fixtures/openedx/app) at the host's release: on a web
 * host lms and cms (`manage.py lms|cms runserver`, each on a port of its own), on a worker host the
 * worker stand-in (`manage.py lms worker_beat`, which beats in the database while it runs). Its
 * bin/ holds what a native installation has under /edx/bin: supervisorctl, edxapp-migrate-lms|cms,
 * manage (manage.py lms|cms <command>).
 */
export interface OpenEdxHost {
  id: string;
  release: string;
  role: "web" | "worker";
  dir: string;
  /** lms and cms ports (web hosts). */
  ports: { lms: number; cms: number };
  supervisord: ManagedProcess;
  stopped: boolean;
}

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

export async function bootHost(options: { root: string; id: string; release: string; role: "web" | "worker"; python: string; db: MariaDb; markers: string[] }): Promise<OpenEdxHost> {
  const { root, id, release, role, python, db } = options;
  const dir = path.join(root, "hosts", id);
  fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
  const ports = { lms: await freePort(), cms: await freePort() };
  fs.writeFileSync(path.join(dir, "release"), `${release}\n`);
  for (const m of options.markers) fs.writeFileSync(path.join(dir, m), "");
  fs.writeFileSync(path.join(dir, "db.json"), JSON.stringify({ host: db.host, port: db.port, name: db.database, user: db.user, password: db.password }), { mode: 0o600 });
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
  return { id, release, role, dir, ports, supervisord, stopped: false };
}

/** `supervisorctl status` of a host, as {program: state}. */
export function supervisorStatus(host: OpenEdxHost): Record<string, string> {
  let out: string;
  try {
    out = execFileSync(path.join(host.dir, "bin", "supervisorctl"), ["status"], { encoding: "utf8" });
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? "");
  }
  return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/).slice(0, 2) as [string, string]));
}
