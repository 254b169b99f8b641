import { z } from "zod";

/**
 * How the edX processes of one host are controlled: two layouts with their default commands, and a
 * deadline per kind of command. Placeholders: `{instanceId}`, `{service}` (lms, cms), `{args}`
 * (manage.py's arguments), `{composeFile}`.
 *
 * - supervisor: the native installation of openedx/configuration (deprecated upstream; its last
 *   tag is quince.3), `/edx/bin/supervisorctl`, `/edx/bin/edxapp-migrate-{lms,cms}`, manage.py as
 *   `/edx/bin/python.edxapp /edx/bin/manage.edxapp`.
 * - compose: edxapp as Docker Compose services on the host (MIT's current EC2 layout): `docker
 *   compose stop | up -d | ps`, migrations and manage.py commands as one-off `compose run`s of the
 *   lms/cms service.
 *
 * Deadlines: a command that outlasts its deadline is given up on (its SSH channel is closed; what
 * it started on the host may go on) and the step fails, which in the window rolls back to blue.
 * Workers stop slowly: configuration gives Celery workers `stopwaitsecs=432000` (5 days, to let
 * long tasks finish), so `supervisorctl stop all` waits for them; the stop deadline (default 900 s)
 * bounds that wait, and a worker still running at it fails the step with its name.
 */
export const LAYOUTS = ["supervisor", "compose"] as const;
export type Layout = (typeof LAYOUTS)[number];

const commandsSchema = z.strictObject({
  status: z.string().min(1),
  stop: z.string().min(1),
  start: z.string().min(1),
  migrate: z.string().min(1),
  manage: z.string().min(1),
});
export type HostCommands = z.infer<typeof commandsSchema>;

const deadlineDefaults = { status: 60, stop: 900, start: 300, migrate: 3600, releaseStep: 7200 };
const deadlinesSchema = z.strictObject({
  status: z.number().int().min(1).default(deadlineDefaults.status),
  stop: z.number().int().min(1).default(deadlineDefaults.stop),
  start: z.number().int().min(1).default(deadlineDefaults.start),
  migrate: z.number().int().min(1).default(deadlineDefaults.migrate),
  releaseStep: z.number().int().min(1).default(deadlineDefaults.releaseStep),
});
export type CommandKind = keyof z.infer<typeof deadlinesSchema>;

export const DEFAULT_COMMANDS: Record<Layout, HostCommands> = {
  supervisor: {
    status: "sudo /edx/bin/supervisorctl status",
    stop: "sudo /edx/bin/supervisorctl stop all",
    start: "sudo /edx/bin/supervisorctl start all",
    migrate: "sudo /edx/bin/edxapp-migrate-{service}",
    manage: "sudo -u www-data /edx/bin/python.edxapp /edx/bin/manage.edxapp {service} {args} --settings=production",
  },
  compose: {
    status: "docker compose -f {composeFile} ps --all --format json",
    stop: "docker compose -f {composeFile} stop",
    start: "docker compose -f {composeFile} up -d",
    migrate: "docker compose -f {composeFile} run --rm {service} python manage.py {service} migrate --noinput",
    manage: "docker compose -f {composeFile} run --rm {service} python manage.py {service} {args}",
  },
};

export const hostSchema = z
  .strictObject({
    layout: z.enum(LAYOUTS).default("supervisor"),
    /** The compose layout's file on the host; `{instanceId}` is filled in (hosts that keep it under a per-instance path). */
    composeFile: z.string().min(1).optional(),
    /** Any command left out takes the layout's default. */
    commands: commandsSchema.partial().default({}),
    /** Seconds per kind of command. */
    deadlines: deadlinesSchema.default(deadlineDefaults),
  })
  .superRefine((host, ctx) => {
    const uses = Object.values({ ...DEFAULT_COMMANDS[host.layout], ...host.commands }).some((c) => c.includes("{composeFile}"));
    if (uses && !host.composeFile) ctx.addIssue({ code: "custom", path: ["composeFile"], message: "the compose layout's commands need composeFile (the edxapp docker-compose.yaml on the host)" });
  })
  .transform((host) => ({ ...host, commands: { ...DEFAULT_COMMANDS[host.layout], ...host.commands } as HostCommands }));
export type HostSettings = z.output<typeof hostSchema>;

/** A process's state in either layout's status output: RUNNING or STOPPED (anything else as it is). */
export function parseStatus(layout: Layout, stdout: string): Record<string, string> {
  const states: Record<string, string> = {};
  if (layout === "supervisor") {
    for (const line of stdout.split("\n")) {
      const [name, state] = line.trim().split(/\s+/);
      if (name && state) states[name] = state === "EXITED" ? "STOPPED" : state;
    }
    return states;
  }
  // `docker compose ps --format json`: one JSON object per line (Compose ≥ 2.21) or one array (older).
  const text = stdout.trim();
  const rows: Array<{ Service?: string; Name?: string; State?: string }> = text.startsWith("[") ? JSON.parse(text) : text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  for (const row of rows) {
    const name = row.Service ?? row.Name;
    if (!name) continue;
    const state = (row.State ?? "").toLowerCase();
    states[name] = state === "running" ? "RUNNING" : ["exited", "created", "dead", "removing"].includes(state) ? "STOPPED" : state.toUpperCase();
  }
  return states;
}
