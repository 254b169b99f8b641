import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Postgres } from "./postgres";
import type { RabbitMq } from "./rabbitmq";

/**
 * The ways the bed's Utilitarian deployment is laid out (test/sandbox/utilitarian.ts):
 * - `legacy`: compose.yaml with the underscored names of the 2019–2020 docs (utilitarian_api,
 *   utilitarian_poster) and the image in an `x-` anchor the app services merge; the workflow is
 *   told those names through its settings;
 * - `vendor`: docker-compose.yaml shaped like the vendor's current docs/docker_compose.md
 *   (pwitab/utilitarian-api-docs): hyphenated names, the API's `environment: &anchor` shared by
 *   worker and beat (`environment: *anchor`), each of API, worker, beat naming the one
 *   Utilitarian image, the poster, dlms-processor and dlms-udp-server on images of their own. The
 *   vendor's file as published is not valid Compose (a top-level `volumes:` list, an empty
 *   environment item): this is its shape, written here, not a copy. The version is pinned in one
 *   of the ways operators pin it (`Pin`).
 */
export type Layout = "legacy" | "vendor";
/** Where the Utilitarian version is written. */
export type Pin = "image" | "env-version" | "env-default" | "env-image" | "env-shared";
/** Tags of the Utilitarian image in the registry: `1.0.0` or `v1.0.0`. */
export type TagForm = "" | "v";

export const LEGACY_SERVICES = { api: "utilitarian_api", worker: "utilitarian-worker", beat: "utilitarian-beat", poster: "utilitarian_poster" } as const;
export const VENDOR_SERVICES = { api: "utilitarian-api", worker: "utilitarian-worker", beat: "utilitarian-beat", poster: "utilitarian-poster", processor: "dlms-processor", udp: "dlms-udp-server" } as const;
/** The images of the vendor's other services: the poster's image under the vendor's names (the registry copy holds them). */
export const OTHER_IMAGES = ["utilitarian-dlms-processor", "utilitarian-dlms-udp-server"];

export function legacyComposeFile(options: { version: string; apiPort: number }): string {
  return `# Utilitarian at the stand-in utility. Managed by ops: see the runbook before editing.
name: utilitarian

x-utilitarian: &utilitarian
  # The release every Utilitarian process runs (API, workers, beat share it).
  image: quay.io/pwit/utilitarian:${options.version}
  network_mode: host
  env_file: utilitarian.env
  restart: "no"

services:
  utilitarian_api:
    <<: *utilitarian
    command: ["python3", "manage.py", "runserver", "127.0.0.1:${options.apiPort}", "--noreload"]
    volumes:
      - ./static:/var/lib/utilitarian/static
      - ./site:/var/lib/utilitarian/site:ro

  utilitarian-worker:
    <<: *utilitarian
    command: ["python3", "-m", "celery", "-A", "utilitarian", "worker", "--pool", "solo", "--loglevel", "WARNING"]

  utilitarian-beat:
    <<: *utilitarian
    command: ["python3", "-m", "celery", "-A", "utilitarian", "beat", "--schedule", "/tmp/celerybeat-schedule", "--loglevel", "WARNING"]

  # Posts meter data onwards; consumes the poster queue (its own image and release cycle).
  utilitarian_poster:
    image: quay.io/pwit/utilitarian-poster:1.0.0
    network_mode: host
    env_file: utilitarian.env
    command: ["python3", "manage.py", "run_poster"]
`;
}

/** The image text of API, worker and beat for a pin, and the .env that goes with it. */
function pinned(pin: Pin, tag: string): { image: string; posterImage: string; dotenv?: string } {
  const repo = "quay.io/pwit/utilitarian";
  const poster = "quay.io/pwit/utilitarian-poster:1.0.0";
  switch (pin) {
    case "image":
      return { image: `${repo}:${tag}`, posterImage: poster };
    case "env-version":
      return { image: `${repo}:\${UTILITARIAN_VERSION}`, posterImage: poster, dotenv: `# The Utilitarian release (API, worker, beat): change it with the runbook.\nUTILITARIAN_VERSION=${tag}\nTZ=UTC\n` };
    case "env-default":
      return { image: `"${repo}:\${UTILITARIAN_VERSION:-${tag}}"`, posterImage: poster, dotenv: `TZ=UTC\nexport UTILITARIAN_VERSION="${tag}"  # pinned\n` };
    case "env-image":
      return { image: "${UTILITARIAN_IMAGE}", posterImage: poster, dotenv: `UTILITARIAN_IMAGE=${repo}:${tag}\n` };
    case "env-shared":
      // one variable for every pwit image: the poster's release would move with the API's
      return { image: `${repo}:\${UTILITARIAN_VERSION}`, posterImage: "quay.io/pwit/utilitarian-poster:${UTILITARIAN_VERSION}", dotenv: `UTILITARIAN_VERSION=${tag}\n` };
  }
}

export function vendorDeploymentFiles(options: { pin: Pin; tag: string; apiPort: number }): { compose: string; dotenv?: string } {
  const { image, posterImage, dotenv } = pinned(options.pin, options.tag);
  const compose = `# Utilitarian at the stand-in utility, laid out as the vendor's docs/docker_compose.md.
# PostgreSQL and RabbitMQ run outside compose (the docs allow it): their addresses are in utilitarian.env.
services:
  utilitarian-api:
    image: ${image}
    restart: "no"
    network_mode: host
    command: ["python3", "manage.py", "runserver", "127.0.0.1:${options.apiPort}", "--noreload"]
    env_file: utilitarian.env
    volumes:
      - ./static:/var/lib/utilitarian/static
      - ./site:/var/lib/utilitarian/site:ro
    environment: &utilitarian_env
      # Debug
      - UTILITARIAN_DEBUG=false
      - UTILITARIAN_LOGLEVEL=info
      # General settings
      - UTILITARIAN_SITE_DIR=/var/lib/utilitarian/site

  utilitarian-worker:
    image: ${image}
    restart: "no"
    network_mode: host
    command: ["python3", "-m", "celery", "-A", "utilitarian", "worker", "--pool", "solo", "--loglevel", "WARNING"]
    env_file: utilitarian.env
    environment: *utilitarian_env  # anchored to the API's: defined once

  utilitarian-beat:
    image: ${image}
    restart: "no"
    network_mode: host
    command: ["python3", "-m", "celery", "-A", "utilitarian", "beat", "--schedule", "/tmp/celerybeat-schedule", "--loglevel", "WARNING"]
    env_file: utilitarian.env
    environment: *utilitarian_env  # anchored to the API's: defined once

  dlms-processor:
    image: quay.io/pwit/utilitarian-dlms-processor:1.0.0
    restart: "no"
    network_mode: host
    command: ["python3", "manage.py", "run_poster"]
    env_file: utilitarian.env
    environment:
      - POSTER_QUEUE=utilitarian.dlms_push_messages

  dlms-udp-server:
    image: quay.io/pwit/utilitarian-dlms-udp-server:1.0.0
    restart: "no"
    network_mode: host
    command: ["python3", "-c", "import time; time.sleep(10**9)"]

  utilitarian-poster:
    image: ${posterImage}
    restart: "no"
    network_mode: host
    command: ["python3", "manage.py", "run_poster"]
    env_file: utilitarian.env
`;
  return { compose, dotenv };
}

/** The compose project on the bed's disk, as the operator's host has it. */
export interface Project {
  readonly projectDir: string;
  /** The operator's site directory, mounted into the API at /var/lib/utilitarian/site. */
  readonly siteDir: string;
  readonly backupDir: string;
  readonly composeFile: string;
  /** The project's .env (vendor layout; absent with pin "image"). */
  readonly envFile: string;
  /** (Re)writes the layout's compose file, and the vendor layout's .env, with `tag` pinned as `pin` says. */
  writeDeployment(pin: Pin, tag: string): void;
}

/**
 * Writes the project under `root`: project/ with static/, site/templates/, the deployment at `tag`
 * and utilitarian.env (the database and the broker on the host, as the compose files' env_file
 * reads them); backups/ beside it.
 */
export function writeProject(options: { root: string; layout: Layout; apiPort: number; pin: Pin; tag: string; postgres: Postgres; rabbitmq: RabbitMq; posterQueue: string }): Project {
  const { layout, apiPort, postgres, rabbitmq } = options;
  const projectDir = path.join(options.root, "project");
  const backupDir = path.join(options.root, "backups");
  fs.mkdirSync(path.join(projectDir, "static"), { recursive: true });
  const siteDir = path.join(projectDir, "site");
  fs.mkdirSync(path.join(siteDir, "templates"), { recursive: true });
  fs.mkdirSync(backupDir, { recursive: true });
  const composeFile = path.join(projectDir, layout === "vendor" ? "docker-compose.yaml" : "compose.yaml");
  const envFile = path.join(projectDir, ".env");
  const writeDeployment = (pin: Pin, tag: string) => {
    if (layout === "legacy") return fs.writeFileSync(composeFile, legacyComposeFile({ version: tag, apiPort }));
    const files = vendorDeploymentFiles({ pin, tag, apiPort });
    fs.writeFileSync(composeFile, files.compose);
    if (files.dotenv === undefined) fs.rmSync(envFile, { force: true });
    else fs.writeFileSync(envFile, files.dotenv);
  };
  writeDeployment(options.pin, options.tag);
  fs.writeFileSync(
    path.join(projectDir, "utilitarian.env"),
    [
      `DATABASE_HOST=127.0.0.1`,
      `DATABASE_PORT=${postgres.port}`,
      `DATABASE_NAME=${postgres.database}`,
      `DATABASE_USER=${postgres.user}`,
      `DATABASE_PASSWORD=${postgres.password}`,
      `CELERY_BROKER_URL=${rabbitmq.url}`,
      `POSTER_QUEUE=${options.posterQueue}`,
      "UTILITARIAN_SITE_DIR=/var/lib/utilitarian/site",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return { projectDir, siteDir, backupDir, composeFile, envFile, writeDeployment };
}

/**
 * A registry storage of the bed's own, from the cached one: blobs hard-linked (the registry only
 * reads them; nothing is pushed), the repositories' link files copied, the poster's repository
 * also under the vendor's other image names. Its tags can be renamed (`setTagForm`), so that the
 * registry really has `v1.0.0`/`v2.0.0` and not `1.0.0`/`2.0.0`: distribution reads tags from
 * the filesystem on every request.
 */
export function bedRegistryStorage(cached: string, dir: string): { storage: string; setTagForm(form: TagForm): void } {
  const v2 = path.join("docker", "registry", "v2");
  fs.mkdirSync(path.join(dir, v2), { recursive: true });
  try {
    execFileSync("cp", ["-al", path.join(cached, v2, "blobs"), path.join(dir, v2, "blobs")], { stdio: ["ignore", "ignore", "pipe"] });
  } catch {
    // another filesystem: a copy (about 85 MB)
    fs.rmSync(path.join(dir, v2, "blobs"), { recursive: true, force: true });
    execFileSync("cp", ["-a", path.join(cached, v2, "blobs"), path.join(dir, v2, "blobs")]);
  }
  execFileSync("cp", ["-a", path.join(cached, v2, "repositories"), path.join(dir, v2, "repositories")]);
  const repos = path.join(dir, v2, "repositories", "pwit");
  for (const name of OTHER_IMAGES) execFileSync("cp", ["-a", path.join(repos, "utilitarian-poster"), path.join(repos, name)]);
  const tags = path.join(repos, "utilitarian", "_manifests", "tags");
  return {
    storage: dir,
    setTagForm(form) {
      for (const tag of fs.readdirSync(tags)) {
        const bare = tag.replace(/^v/, "");
        const wanted = `${form}${bare}`;
        if (tag !== wanted) fs.renameSync(path.join(tags, tag), path.join(tags, wanted));
      }
    },
  };
}
