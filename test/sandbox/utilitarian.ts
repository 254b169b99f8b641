import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { toolchainCache } from "../../lib/toolchain";
import type { Sandbox } from "./index";
import { startPostgres, type Postgres } from "./postgres";
import { delay, freePort } from "./processes";
import { startRabbitMq, type RabbitMq } from "./rabbitmq";
import { startUtilitarianEngine } from "./utilitarianEngine";
import { LEGACY_SERVICES, VENDOR_SERVICES, writeProject, type Layout, type Pin, type TagForm } from "./utilitarianLayouts";
export type { Layout, Pin, TagForm } from "./utilitarianLayouts";

/**
 * A stand-in Utilitarian deployment on the bed (runbook 4): a Docker Compose v2 project whose
 * containers run on a real engine (rootful podman with runc, reached through `podman system
 * service` on a unix socket: DOCKER_HOST), images pulled by their literal `quay.io/pwit/...`
 * names from a local registry (Debian's docker-registry on loopback, a registries.conf mirror),
 * the database in the bed's PostgreSQL and the broker in the bed's RabbitMQ, both on the host.
 * The project directory is reached through the bed's sshd, as an operator's host would be.
 * The registry and the engine: utilitarianEngine.ts; the project's files: utilitarianLayouts.ts.
 */
export const FIXTURE_VERSIONS = ["1.0.0", "2.0.0"] as const;
export const COMPOSE_VERSION = "v2.40.3";
export const POSTER_QUEUE = "utilitarian.poster";
/** The legacy layout's service names (the default layout; see utilitarianLayouts.ts). */
export const SERVICES = LEGACY_SERVICES;
export { VENDOR_SERVICES };

export interface UtilitarianFixture {
  readonly layout: Layout;
  readonly projectDir: string;
  readonly composeFile: string;
  /** The project's .env (vendor layout; absent with pin "image"). */
  readonly envFile: string;
  /** The registry's API URL (the image.registry setting: tags are listed from it). */
  readonly registryUrl: string;
  /** The docker-compose binary (built from the Go module proxy, cached). */
  readonly composeBinary: string;
  /** DOCKER_HOST of the podman service. */
  readonly dockerHost: string;
  readonly apiUrl: string;
  readonly postgres: Postgres;
  readonly rabbitmq: RabbitMq;
  readonly registry: string;
  readonly privateKey: string;
  readonly backupDir: string;
  /**
   * The system as an own stack's config declares it (`upgrade-orchestrator:systems.<name>`). With
   * the vendor layout: no compose files and no service names (the defaults), only the project
   * directory and how to reach the bed's engine (compose.command, DOCKER_HOST).
   */
  systemConfig(version: string, keyConfig: string, passwordConfig: string): Record<string, unknown>;
  /** Runs docker compose in the project (throws on a non-zero exit). */
  compose(args: string[], timeoutMs?: number): string;
  /** Per service: state and image of its container (from `docker compose ps`). */
  services(): Record<string, { state: string; image: string }>;
  /** The API's /api/version answer, or undefined when it does not answer. */
  apiVersion(): Promise<{ version: string; migrations: string[] } | undefined>;
  /** Publishes messages to the poster's queue (from the host, with the image's own kombu). */
  publish(count: number, prefix: string): void;
  /** The operator's site directory, mounted into the API at /var/lib/utilitarian/site (site templates). */
  readonly siteDir: string;
  // Fault knobs: each gives the real program a real cause to fail on, or to take long.
  /** A site template whose `{% compress %}` block links a stylesheet that does not exist: `manage.py compress` fails on it (false: removed). */
  brokenSiteTemplate(on: boolean): void;
  /** While on, 2.0.0's data migration holds with its transaction open (a hold file in the site dir). */
  holdMigration(on: boolean): void;
  /**
   * A directory for the `database.tools` setting: the bed's PostgreSQL programs, except that after
   * the real pg_dump has written the whole dump and exited 0, the dump is cut to half its size (a
   * file that lost its tail after pg_dump reported success: what the verification is for).
   */
  pgToolsCuttingDumps(): string;
  /**
   * A backup location whose disk is full: a small tmpfs mounted in the bed's dir and filled up
   * (root may mount here). `release` unmounts it (the bed's stop does too).
   */
  fullBackupDir(): { dir: string; release(): void };
  /** Rows of a table in a backup file (its COPY data, as pg_restore reads it). */
  backupRows(file: string, table: string): number;
  /**
   * The way back the workflow's messages name: stop the services, restore the backup
   * (pg_restore --clean --if-exists), put back the previous compose file, start everything.
   */
  rollBack(backup: string, previousComposeFile: string): Promise<void>;
  /**
   * Vendor layout: the deployment at 1.0.0 again in another form: everything stopped, the backup
   * restored, the compose file and .env written for `pin`, the registry's Utilitarian tags in
   * `tagForm` (the deployment names that form), pulled, everything started.
   */
  reset(backup: string, form: { pin: Pin; tagForm: TagForm }): Promise<void>;
  /** `docker compose config --format json` of the project, as Compose resolves it. */
  config(): { services: Record<string, { image: string }> };
  stop(): Promise<void>;
}

export async function startUtilitarian(bed: Sandbox, options: { version?: string; dir?: string; layout?: Layout; pin?: Pin; tagForm?: TagForm } = {}): Promise<UtilitarianFixture> {
  const layout = options.layout ?? "legacy";
  const names = layout === "vendor" ? VENDOR_SERVICES : LEGACY_SERVICES;
  if (!bed.sshd) throw new Error("the Utilitarian fixture needs the bed's sshd");
  const sshd = bed.sshd;
  const version = options.version ?? "1.0.0";
  const root = options.dir ?? path.join(bed.dir, "utilitarian");
  fs.mkdirSync(root, { recursive: true });
  const composeBinary = path.join(toolchainCache(), "compose", COMPOSE_VERSION, "docker-compose");
  if (!fs.existsSync(composeBinary)) throw new Error(`${composeBinary} is missing: run \`npm run provision\``);

  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const { registry, dockerHost, bedStorage } = await startUtilitarianEngine({ root, layout, tagForm: options.tagForm, stops });

    const rabbitmq = await startRabbitMq(path.join(root, "rabbitmq"));
    stops.push(() => rabbitmq.stop());
    const postgres = await startPostgres({ database: "utilitarian", user: "utilitarian", createDb: true });
    stops.push(() => postgres.stop());

    const apiPort = await freePort();
    const { projectDir, siteDir, backupDir, composeFile, envFile, writeDeployment } = writeProject({ root, layout, apiPort, pin: options.pin ?? "image", tag: `${options.tagForm ?? ""}${version}`, postgres, rabbitmq, posterQueue: POSTER_QUEUE });
    const composeEnv = { ...process.env, DOCKER_HOST: dockerHost };
    const compose = (args: string[], timeoutMs = 180_000) => {
      const result = spawnSync(composeBinary, ["--project-directory", projectDir, "-f", composeFile, ...args], { env: composeEnv, encoding: "utf8", timeout: timeoutMs });
      if (result.status !== 0) throw new Error(`docker compose ${args.join(" ")} failed (${result.status ?? result.signal}):\n${result.stderr}`);
      return result.stdout;
    };
    // stopped first (stops run in reverse): the containers before the database and the broker
    stops.push(async () => void spawnSync(composeBinary, ["--project-directory", projectDir, "-f", composeFile, "down", "--timeout", "5"], { env: composeEnv, stdio: "ignore", timeout: 120_000 }));

    // The deployment at `version`: database migrated, static files collected, seed data, all running.
    compose(["pull", "--quiet"], 300_000);
    compose(["up", "-d", names.api]);
    compose(["exec", "-T", names.api, "python3", "manage.py", "migrate", "--no-input"]);
    compose(["exec", "-T", names.api, "python3", "manage.py", "collectstatic", "--no-input"]);
    postgres.query("INSERT INTO meters_meter (serial, name) SELECT 'M' || g, 'meter ' || g FROM generate_series(1, 50) g;");
    compose(["up", "-d"]);

    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const apiVersion = async () => {
      try {
        const res = await fetch(`${apiUrl}/api/version`, { signal: AbortSignal.timeout(3000) });
        return res.ok ? ((await res.json()) as { version: string; migrations: string[] }) : undefined;
      } catch {
        return undefined;
      }
    };
    const serving = async () => {
      for (let i = 0; !(await apiVersion()); i++) {
        if (i > 150) throw new Error(`the stand-in API did not answer on ${apiUrl} within 30s`);
        await delay(200);
      }
      for (let i = 0; (await rabbitmq.depth(POSTER_QUEUE)) === undefined; i++) {
        if (i > 60) throw new Error(`the poster did not declare ${POSTER_QUEUE} within 30s`);
        await delay(500);
      }
    };
    await serving();
    const pgRestore = (args: string[]) =>
      execFileSync(path.join(postgres.bin, "pg_restore"), args, { encoding: "utf8", maxBuffer: 256 << 20, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000, env: { ...process.env, PGPASSWORD: postgres.password } });
    const privateKey = fs.readFileSync(sshd.privateKeyPath, "utf8");
    const registryUrl = `http://${registry}`;
    return {
      layout,
      projectDir,
      composeFile,
      envFile,
      registryUrl,
      composeBinary,
      dockerHost,
      apiUrl,
      postgres,
      rabbitmq,
      registry,
      privateKey,
      backupDir,
      compose,
      systemConfig(target, keyConfig, passwordConfig) {
        const engine = { projectDir, command: composeBinary, env: { DOCKER_HOST: dockerHost } };
        return {
          kind: "utilitarian",
          version: target,
          ssh: { host: sshd.host, port: sshd.port, user: sshd.user, knownHostsPath: sshd.knownHostsPath, privateKeyConfig: keyConfig },
          ...(layout === "vendor"
            ? { compose: engine, image: { registry: registryUrl } }
            : {
                compose: { ...engine, files: ["compose.yaml"] },
                // the 2019–2020 docs' underscored names, through the settings
                services: { api: SERVICES.api, beat: SERVICES.beat, workers: [SERVICES.worker], dependents: [SERVICES.poster] },
                image: { registry: false },
              }),
          manage: "python3 manage.py",
          database: { host: postgres.host, port: postgres.port, name: postgres.database, user: postgres.user, passwordConfig },
          backups: { dir: backupDir },
          rabbitmq: { ctl: rabbitmq.ctl, queues: [POSTER_QUEUE] },
          checks: { http: [{ url: `${apiUrl}/api/version`, expect: `"version": "{version}"` }] },
          deadlines: { migrateSeconds: 600, commandSeconds: 180, settleSeconds: 60 },
        };
      },
      services() {
        const out = compose(["ps", "--all", "--format", "json"]);
        const rows = out.trim().startsWith("[") ? (JSON.parse(out) as Array<Record<string, string>>) : out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
        return Object.fromEntries(rows.map((r) => [r.Service!, { state: r.State!, image: r.Image! }]));
      },
      apiVersion,
      publish(count, prefix) {
        const script = `import sys\nfrom kombu import Connection, Queue\nq = Queue(sys.argv[2], durable=True)\nwith Connection(sys.argv[1]) as c:\n    p = c.Producer()\n    for i in range(int(sys.argv[3])):\n        p.publish(f"{sys.argv[4]}-{i}", routing_key=q.name, declare=[q], serializer="json")\n`;
        execFileSync(composeBinary, ["--project-directory", projectDir, "-f", composeFile, "run", "--rm", "--no-deps", "-T", names.poster, "python3", "-c", script, rabbitmq.url, POSTER_QUEUE, String(count), prefix], {
          env: composeEnv,
          stdio: ["ignore", "ignore", "pipe"],
          timeout: 60_000,
        });
      },
      siteDir,
      brokenSiteTemplate(on) {
        const file = path.join(siteDir, "templates", "meters", "site_banner.html");
        if (!on) return fs.rmSync(file, { force: true });
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, `{% load compress %}{% compress css %}<link rel="stylesheet" href="/static/meters/site-banner.css">{% endcompress %}\n`);
      },
      holdMigration(on) {
        const file = path.join(siteDir, "hold-migration");
        if (on) fs.writeFileSync(file, "");
        else fs.rmSync(file, { force: true });
      },
      pgToolsCuttingDumps() {
        const dir = path.join(root, "pg-tools-cutting-dumps");
        fs.mkdirSync(dir, { recursive: true });
        for (const tool of ["pg_restore", "psql", "createdb", "dropdb"]) {
          if (!fs.existsSync(path.join(dir, tool))) fs.symlinkSync(path.join(postgres.bin, tool), path.join(dir, tool));
        }
        const script = [
          "#!/bin/sh",
          "# The real pg_dump, then its output file (-f) cut to half its size.",
          'out=""; prev=""',
          'for a in "$@"; do [ "$prev" = "-f" ] && out="$a"; prev="$a"; done',
          `${path.join(postgres.bin, "pg_dump")} "$@" || exit $?`,
          '[ -n "$out" ] && truncate -s $(( $(stat -c %s "$out") / 2 )) "$out"',
          "",
        ].join("\n");
        fs.writeFileSync(path.join(dir, "pg_dump"), script, { mode: 0o755 });
        return dir;
      },
      fullBackupDir() {
        const dir = path.join(root, "backups-full");
        fs.mkdirSync(dir, { recursive: true });
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "uo-backups-full", dir], { stdio: ["ignore", "ignore", "pipe"] });
        let mounted = true;
        const release = () => {
          if (mounted) execFileSync("umount", [dir], { stdio: ["ignore", "ignore", "pipe"] });
          mounted = false;
        };
        stops.push(async () => release());
        // fill it: writes until the disk refuses
        spawnSync("sh", ["-c", `cat /dev/zero > ${JSON.stringify(path.join(dir, "filler"))}`], { stdio: "ignore", timeout: 10_000 });
        return { dir, release };
      },
      backupRows(file, table) {
        const lines = pgRestore(["--data-only", "--table", table, "--file", "-", file]).split("\n");
        const start = lines.findIndex((l) => l.startsWith(`COPY public.${table} `));
        const end = start < 0 ? -1 : lines.indexOf("\\.", start);
        if (end < 0) throw new Error(`${file} holds no data of ${table}`);
        return end - start - 1;
      },
      async rollBack(backup, previousComposeFile) {
        compose(["stop", "--timeout", "5"]);
        pgRestore(["--clean", "--if-exists", "--no-owner", "-h", postgres.host, "-p", String(postgres.port), "-U", postgres.user, "-d", postgres.database, backup]);
        fs.copyFileSync(previousComposeFile, composeFile);
        compose(["up", "-d"]);
        await serving();
      },
      async reset(backup, form) {
        if (!bedStorage) throw new Error("reset needs the vendor layout");
        compose(["stop", "--timeout", "5"]);
        pgRestore(["--clean", "--if-exists", "--no-owner", "-h", postgres.host, "-p", String(postgres.port), "-U", postgres.user, "-d", postgres.database, backup]);
        bedStorage.setTagForm(form.tagForm);
        writeDeployment(form.pin, `${form.tagForm}1.0.0`);
        compose(["pull", "--quiet"], 300_000);
        compose(["up", "-d", "--remove-orphans"]);
        await serving();
      },
      config() {
        return JSON.parse(compose(["config", "--format", "json"])) as { services: Record<string, { image: string }> };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
