import { UpgradeError } from "../../lib/errors";
import { answerPasses, describeAnswer, httpGet } from "../../lib/http";
import type { Progress } from "../../lib/progress";
import type { Step } from "../../lib/steps";
import { pollUntil } from "../../lib/wait";
import { compose, composeCommand } from "./deployment";
import { prepareUpgrade, withCandidates, writeEdits } from "./prepare";
import { containers, existingBackup, migrateProcesses, pruneBackups, queueDepths, running, takeVerifiedBackup, type Backup, type ContainerState, type Deployment } from "./remote";
import { imageServices } from "./settings";

/**
 * Runbook 4 of RUNBOOKS.md (Utilitarian), each step checking the host before it acts so that a
 * re-run after a crash resumes where the last one stopped. The order is `upgradeSteps` below:
 *
 *   read the deployment → pull the new image (before anything stops) → verified backup →
 *   queues exist → stop dependents → stop API, beat, workers → change the version where it lives →
 *   start the API alone → migrate → collectstatic → compress → start the rest → verify →
 *   prune old backups.
 */
export interface UpgradeContext {
  d: Deployment;
  from: string;
  to: string;
  info: Progress;
  /** Set by the backup step: the verified backup this upgrade relies on. */
  backup?: Backup;
  /** Set by read-deployment: the tags as the deployment and the registry write them (e.g. v1.0.0). */
  fromTag: string;
  toTag: string;
  /** Where the version lives (".env: UTILITARIAN_VERSION"), and the new texts of the files to change. */
  where: string;
  edits: Map<string, string>;
  /** The files the rewrite changed. */
  rewritten?: string[];
  /** The step that failed, for the partial-failure message. */
  failedMigration?: string;
}

const settingsOf = (ctx: UpgradeContext) => ctx.d.settings;
const targetImage = (ctx: UpgradeContext) => `${settingsOf(ctx).image.repository}:${ctx.toTag}`;
const appServices = (ctx: UpgradeContext) => imageServices(settingsOf(ctx));
export { previousPath } from "./prepare";

export const readDeployment: Step<UpgradeContext> = {
  id: "read-deployment",
  title: "Read the deployment as Compose resolves it, and where its version lives",
  readOnly: true,
  async run(ctx) {
    const prepared = await prepareUpgrade(ctx.d, ctx.from, ctx.to, ctx.info);
    ctx.fromTag = prepared.fromTag;
    ctx.toTag = prepared.toTag;
    ctx.edits = prepared.plan.edits;
    ctx.where = prepared.plan.where;
    return prepared.note;
  },
};

export const pullImage: Step<UpgradeContext> = {
  id: "pull-image",
  title: "Pull the new image (before anything stops)",
  async run(ctx) {
    await compose(ctx.d, `pull ${targetImage(ctx)}`, ["pull", "--quiet", ...appServices(ctx)], withCandidates(ctx.d, ctx.edits)).catch((err) => {
      throw new UpgradeError({
        what: `pull ${targetImage(ctx)}`,
        why: (err as UpgradeError).why ?? (err as Error).message,
        hint: `check that ${ctx.to} is a release of ${settingsOf(ctx).image.repository} and the registry is reachable from the host; nothing was stopped`,
        permanent: true,
      });
    });
    return targetImage(ctx);
  },
};

export const backupDatabase: Step<UpgradeContext> = {
  id: "backup",
  title: "Back up the database (pg_dump -Fc) and verify the backup",
  async check(ctx) {
    const s = settingsOf(ctx);
    if (s.backups.fresh) return undefined;
    // A backup is reused only by a re-run inside the downtime it was taken for (a service of
    // the deployment stopped, or the compose file already rewritten): while everything ran on,
    // the data changed since, and an older backup would lose it.
    const all = await containers(ctx.d);
    const downtimeBegun = ctx.edits.size === 0 || [...appServices(ctx), ...s.services.dependents].some((name) => !running(all, name));
    if (!downtimeBegun) return undefined;
    const found = await existingBackup(ctx.d, ctx.from, ctx.to);
    if (!found) return undefined;
    if (!found.intact) {
      throw new UpgradeError({
        what: "reuse the backup of this upgrade",
        why: `${found.path} no longer matches its checksum ${found.sha256}`,
        hint: "do not go on without a backup you trust: set backups.fresh: true to take a new one",
        exitCode: 3,
        permanent: true,
      });
    }
    ctx.backup = { path: found.path, sha256: found.sha256 };
    return `verified backup ${found.path} of this upgrade kept (no second backup; backups.fresh: true takes one)`;
  },
  async run(ctx) {
    const backup = await takeVerifiedBackup(ctx.d, ctx.from, ctx.to);
    ctx.backup = { path: backup.path, sha256: backup.sha256 };
    return `${backup.path} (sha256 ${backup.sha256.slice(0, 12)}…, restored into a scratch database: ${backup.tables} tables)`;
  },
};

export const checkQueues: Step<UpgradeContext> = {
  id: "check-queues",
  title: "Check the dependents' queues exist (messages queue there during the downtime)",
  readOnly: true,
  when: (ctx) => (settingsOf(ctx).rabbitmq?.queues.length ?? 0) > 0,
  async run(ctx) {
    const depths = await queueDepths(ctx.d);
    const missing = Object.entries(depths).filter(([, n]) => n === undefined).map(([q]) => q);
    if (missing.length > 0) {
      throw new UpgradeError({
        what: "check the RabbitMQ queues",
        why: `${missing.join(", ")} does not exist, so messages sent while the dependents are stopped would be lost`,
        hint: "start the dependents once so they declare their queues (or fix rabbitmq.queues); nothing was stopped",
        exitCode: 3,
        permanent: true,
      });
    }
    return Object.entries(depths).map(([q, n]) => `${q}: ${n} ready`).join(", ");
  },
};

/** A step that stops those of `services` that run (and that `stops` picks), via compose stop. */
function stopStep(id: string, title: string, services: (ctx: UpgradeContext) => string[], stops: (ctx: UpgradeContext, c: ContainerState) => boolean = () => true): Step<UpgradeContext> {
  const toStop = async (ctx: UpgradeContext) => {
    const all = await containers(ctx.d);
    return services(ctx).filter((name) => all.some((c) => c.service === name && c.state === "running" && stops(ctx, c)));
  };
  return {
    id,
    title,
    async check(ctx) {
      return (await toStop(ctx)).length > 0 ? undefined : `${services(ctx).join(", ")}: none to stop`;
    },
    async run(ctx) {
      const names = await toStop(ctx);
      await compose(ctx.d, `stop ${names.join(", ")}`, ["stop", ...names]);
      return names.join(", ");
    },
  };
}

export const stopDependents: Step<UpgradeContext> = stopStep("stop-dependents", "Stop the dependents", (ctx) => settingsOf(ctx).services.dependents);

// One already on the new image is not stopped again: that is the API an interrupted run
// started (its migrate may still be running in it).
export const stopApp: Step<UpgradeContext> = stopStep("stop-app", "Stop the API, beat and workers", appServices, (ctx, c) => c.image !== targetImage(ctx));

export const rewriteComposeFile: Step<UpgradeContext> = {
  id: "rewrite-compose-file",
  title: "Change the version where it lives (the image text, or the .env variable)",
  async check(ctx) {
    return ctx.edits.size === 0 ? `${ctx.where} already names ${ctx.toTag}` : undefined;
  },
  async run(ctx) {
    const kept = await writeEdits(ctx.d, ctx.edits, ctx.from);
    ctx.rewritten = [...ctx.edits.keys()];
    ctx.edits = new Map();
    return `${ctx.rewritten.join(", ")} (previous kept as ${kept.join(", ")})`;
  },
};

export const startApi: Step<UpgradeContext> = {
  id: "start-api",
  title: "Start the API alone on the new image",
  async check(ctx) {
    const all = await containers(ctx.d);
    const api = all.find((c) => c.service === settingsOf(ctx).services.api);
    return api?.state === "running" && api.image === targetImage(ctx) ? `${api.service} runs ${api.image}` : undefined;
  },
  async run(ctx) {
    await compose(ctx.d, "start the API", ["up", "-d", "--no-deps", settingsOf(ctx).services.api]);
  },
};

export const migrate: Step<UpgradeContext> = {
  id: "migrate",
  title: "Apply the database migrations (manage.py migrate)",
  async check(ctx) {
    const waited = await waitForInterruptedMigrate(ctx);
    const plan = await manage(ctx, "read the migration plan", ["showmigrations", "--plan"]);
    if (plan.includes("[ ]")) return undefined;
    return waited === undefined ? "every migration is applied" : `every migration is applied (the interrupted run's migrate finished after ${waited}s)`;
  },
  async run(ctx) {
    const deadline = settingsOf(ctx).deadlines.migrateSeconds;
    const started = Date.now();
    await ctx.info(`migrate: started (${settingsOf(ctx).manage} migrate --no-input in ${settingsOf(ctx).services.api}, deadline ${deadline}s)`);
    const timer = setInterval(() => void ctx.info(`migrate: running for ${Math.round((Date.now() - started) / 1000)}s (deadline ${deadline}s)`), 15_000);
    try {
      const result = await ctx.d.host.exec(commandOf(ctx, [...manageArgv(ctx), "migrate", "--no-input"]), { timeoutMs: deadline * 1000 });
      const applied = [...result.stdout.matchAll(/Applying (\S+)\.\.\. OK/g)].map((m) => m[1]!);
      if (result.code !== 0) {
        const failed = [...result.stdout.matchAll(/Applying (\S+)\.\.\./g)].map((m) => m[1]!).find((m) => !applied.includes(m));
        ctx.failedMigration = failed;
        const cause = (result.stderr || result.stdout).trim().split("\n").filter(Boolean).at(-1) ?? "(no output)";
        throw new UpgradeError({ what: `apply migration ${failed ?? "(unknown)"}`, why: cause, permanent: true });
      }
      return applied.length > 0 ? `applied ${applied.join(", ")}` : "nothing to apply";
    } finally {
      clearInterval(timer);
    }
  },
};

export const collectStatic: Step<UpgradeContext> = {
  id: "collectstatic",
  title: "Collect the static files (manage.py collectstatic --no-input)",
  async run(ctx) {
    const out = await manage(ctx, "collect the static files", ["collectstatic", "--no-input"]);
    return out.trim().split("\n").at(-1);
  },
};

export const compress: Step<UpgradeContext> = {
  id: "compress",
  title: "Compress the assets (manage.py compress)",
  when: (ctx) => settingsOf(ctx).compress,
  async run(ctx) {
    const command = `${settingsOf(ctx).manage} compress`;
    const out = await manage(ctx, command, ["compress"]).catch((err) => {
      throw new UpgradeError({
        what: `compress the assets (\`${command}\` in ${settingsOf(ctx).services.api}, through compose exec) on ${ctx.d.host.name}`,
        why: (err as UpgradeError).why ?? (err as Error).message,
        hint: "fix the templates or static files it names and run `up` again (it resumes at compress, without a second backup), or set compress: false if this release has no django-compressor",
        permanent: true,
      });
    });
    return out.trim().split("\n").filter(Boolean).at(-1);
  },
};

export const startAll: Step<UpgradeContext> = {
  id: "start-all",
  title: "Start the beat, workers and dependents",
  async run(ctx) {
    await compose(ctx.d, "start every service", ["up", "-d"]);
  },
};

export const verify: Step<UpgradeContext> = {
  id: "verify",
  title: "Verify: every service on the new image, the checks pass, the queues drained",
  async run(ctx) {
    const s = settingsOf(ctx);
    const seen = await pollUntil<string[]>({
      intervalMs: 1000,
      timeoutMs: s.deadlines.settleSeconds * 1000,
      poll: async () => {
        const problems: string[] = [];
        const all = await containers(ctx.d);
        for (const name of appServices(ctx)) {
          const c = all.find((x) => x.service === name);
          if (c?.state !== "running" || c.image !== targetImage(ctx)) problems.push(`${name}: ${c ? `${c.state} on ${c.image}` : "no container"}`);
        }
        for (const name of s.services.dependents) if (!running(all, name)) problems.push(`${name}: not running`);
        for (const check of s.checks.http) {
          const answer = await httpGet(check.url);
          const expect = check.expect?.replaceAll("{version}", ctx.to);
          if (!answerPasses(answer, expect)) problems.push(`${check.url}: ${describeAnswer(answer)}${expect ? ` (expected ${JSON.stringify(expect)})` : ""}`);
        }
        if (s.rabbitmq && s.rabbitmq.queues.length > 0) {
          for (const [q, n] of Object.entries(await queueDepths(ctx.d))) if (n !== 0) problems.push(`queue ${q}: ${n ?? "missing"} ready`);
        }
        return { done: problems.length === 0, seen: problems };
      },
      onProgress: ({ seen, elapsedMs, attempt }) => {
        if (seen.length > 0 && attempt % 5 === 1) void ctx.info(`verify: waiting (${Math.round(elapsedMs / 1000)}s): ${seen.join("; ")}`);
      },
      onTimeout: (last) =>
        new UpgradeError({ what: "verify the upgrade", why: `after ${s.deadlines.settleSeconds}s: ${(last ?? []).join("; ")}`, hint: "look at the services' logs (docker compose logs); run `up` again once fixed" }),
    });
    void seen;
    if (s.checks.command) await manage(ctx, `run the check ${s.checks.command}`, ["sh", "-c", s.checks.command], true);
    return `${appServices(ctx).join(", ")} on ${targetImage(ctx)}; dependents running; checks pass${s.rabbitmq?.queues.length ? "; queues drained" : ""}`;
  },
};

export const pruneOldBackups: Step<UpgradeContext> = {
  id: "prune-backups",
  title: "Remove verified backups older than backups.keepDays",
  async run(ctx) {
    return pruneBackups(ctx.d, ctx.backup?.path ?? "");
  },
};

/** The runbook in order. The image is pulled before anything stops, so a bad tag or registry costs no downtime. */
export const upgradeSteps: Array<Step<UpgradeContext>> = [
  // Before the downtime.
  readDeployment, pullImage, backupDatabase, checkQueues,
  // The downtime: dependents first, so their messages queue in RabbitMQ until the API is back.
  stopDependents, stopApp, rewriteComposeFile, startApi, migrate, collectStatic, compress, startAll,
  // After.
  verify, pruneOldBackups,
];

/**
 * Waits for a `manage.py migrate` that a killed run left running in the API container (its
 * `compose exec` client died with the run, the migration did not): a second migrate beside it
 * would plan the same migrations and fail on them. Returns the seconds waited, or undefined.
 */
async function waitForInterruptedMigrate(ctx: UpgradeContext): Promise<number | undefined> {
  const s = settingsOf(ctx);
  const found = await migrateProcesses(ctx.d);
  if (found.length === 0) return undefined;
  const started = Date.now();
  await ctx.info(`migrate: the interrupted run's migrate still runs in ${s.services.api} (${found[0]}): waiting for it (deadline ${s.deadlines.migrateSeconds}s)`);
  await pollUntil<string[]>({
    intervalMs: 2000,
    timeoutMs: s.deadlines.migrateSeconds * 1000,
    poll: async () => {
      const still = await migrateProcesses(ctx.d);
      return { done: still.length === 0, seen: still };
    },
    onProgress: ({ seen, elapsedMs, attempt }) => {
      if (seen.length > 0 && attempt % 8 === 0) void ctx.info(`migrate: the interrupted run's migrate still runs (${Math.round(elapsedMs / 1000)}s)`);
    },
    onTimeout: (last) =>
      new UpgradeError({
        what: "wait for the interrupted run's migrate",
        why: `it still runs in ${s.services.api} after ${s.deadlines.migrateSeconds}s: ${(last ?? []).join("; ")}`,
        hint: "look at the database's locks (pg_stat_activity); run `up` again once it has finished, or stop it and run again",
      }),
  });
  return Math.round((Date.now() - started) / 1000);
}

/** `compose exec -T <api> …` as one shell command. */
const commandOf = (ctx: UpgradeContext, argv: string[]) => composeCommand(ctx.d, ["exec", "-T", settingsOf(ctx).services.api, ...argv]);

/** A Django management command in the API container (`compose exec -T <api> python manage.py …`). */
async function manage(ctx: UpgradeContext, what: string, args: string[], raw = false): Promise<string> {
  const argv = raw ? args : [...manageArgv(ctx), ...args];
  return ctx.d.host.run(what, commandOf(ctx, argv), { timeoutMs: settingsOf(ctx).deadlines.commandSeconds * 1000 });
}

const manageArgv = (ctx: UpgradeContext) => settingsOf(ctx).manage.split(/\s+/).filter(Boolean);
