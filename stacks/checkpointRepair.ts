import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Workspace } from "@pulumi/pulumi/automation";
import { refused } from "../lib/errors";
import type { RunContext } from "./context";
import { workspaceBackend } from "./backend";
import { lastRun } from "./journal";
import { engineLocks, processAlive } from "./lock";

/** What `pulumi stack export` says of a checkpoint file that is empty or cut short. */
export const TORN_CHECKPOINT = /failed to load checkpoint: (.*: )?(EOF|unexpected EOF|unexpected end of JSON input|invalid character)/;

const parses = (file: string) => {
  try {
    return typeof (JSON.parse(fs.readFileSync(file, "utf8")) as { checkpoint?: unknown }).checkpoint === "object";
  } catch {
    return false;
  }
};

/** Whether a file holds JSON (fileblob's metadata sidecar is one JSON object). */
const isJson = (file: string) => {
  try {
    JSON.parse(fs.readFileSync(file, "utf8"));
    return true;
  } catch {
    return false;
  }
};

/**
 * A `pulumi up` killed on a file:// backend can leave the stack's checkpoint unreadable, and no
 * Pulumi command reads the stack again. Two states, two messages:
 * - `failed to load checkpoint: EOF` (or `unexpected EOF`): the metadata sidecar `<stack>.json.attrs`
 *   is empty or cut short. gocloud.dev's fileblob, Pulumi's file:// storage, writes a blob to a temp
 *   file, then rewrites the sidecar in place (os.Create, then the JSON) and only then renames the
 *   temp file over the blob (blob/fileblob: writerWithSidecar.Close, setAttrs); every read decodes
 *   the sidecar first. A kill between the create and the write leaves it empty while the checkpoint
 *   itself is the last whole save. This is what kill -9 in `up` leaves (seen in CI and under
 *   stress-ng). The sidecar is kept beside as `<stack>.json.attrs.torn-<run id>`; fileblob reads a
 *   blob without a sidecar (as application/octet-stream) and Pulumi's next save writes a new one.
 * - `failed to load checkpoint: … unexpected end of JSON input`: the checkpoint itself is empty or
 *   cut short. fileblob's rename does not leave that; a machine that crashed before its page cache
 *   reached the disk can. Before each save the backend copies the checkpoint it replaces to
 *   `<stack>.json.bak` (pkg/backend/diy, saveCheckpoint): the torn file is kept beside as
 *   `<stack>.json.torn-<run id>` and the backup put in its place. The backup may be one step behind:
 *   a resource the last step created can be missing from it (the same as a pending create cleared).
 * Either is done only when the evidence is certain (our journal shows this stack's last run died in
 * `up`, and no engine lock's process is alive on this host) or with --repair; repair-interrupted-update
 * then clears the lock and refreshes the pending operations as after any interrupted update.
 * Returns the note, or undefined when this is not that failure.
 */
export async function restoreTornCheckpoint(ctx: RunContext, workspace: Workspace, message: string): Promise<string | undefined> {
  if (!TORN_CHECKPOINT.test(message)) return undefined;
  const { url, project, store } = await workspaceBackend(workspace, ctx.env);
  if (!url.startsWith("file://") || !store) return undefined;
  const root = fileURLToPath(url.split("?")[0]!);
  const name = ctx.options.stack.split("/").at(-1)!;
  const file = [path.join(root, ".pulumi", "stacks", project, `${name}.json`), path.join(root, ".pulumi", "stacks", `${name}.json`)].find((f) => fs.existsSync(f));
  const sidecar = `${file}.attrs`;
  const tornCheckpoint = file !== undefined && !parses(file);
  const tornSidecar = file !== undefined && fs.existsSync(sidecar) && !isJson(sidecar);
  if (!file || (!tornCheckpoint && !tornSidecar)) {
    store.close();
    return undefined;
  }
  const backup = `${file}.bak`;
  const bytes = (f: string) => `${fs.statSync(f).size} bytes that do not parse`;
  const what = [
    tornCheckpoint && `the checkpoint of stack ${ctx.options.stack} (${file}) is torn (${bytes(file)}), as a crash of the machine during a save can leave it`,
    tornSidecar && `the metadata sidecar of stack ${ctx.options.stack}'s checkpoint (${sidecar}) is torn (${bytes(sidecar)}), as a \`pulumi up\` killed during a save leaves it${tornCheckpoint ? "" : "; the checkpoint itself is whole"}`,
  ].filter(Boolean).join("; ");
  const keep = (f: string) => `${path.basename(f)}.torn-${ctx.runId}`;
  const steps = [
    tornCheckpoint && `keep it as ${keep(file)} and put Pulumi's backup ${path.basename(backup)} (the checkpoint before its last save) in its place`,
    tornSidecar && `keep the sidecar as ${keep(sidecar)} (fileblob reads the checkpoint without it; Pulumi's next save writes a new one)`,
  ].filter(Boolean).join(", and ");
  try {
    if (tornCheckpoint && (!fs.existsSync(backup) || !parses(backup))) {
      throw refused("read the stack's state", `${what}, and there is no readable backup ${backup}`, "restore the file from your own backups of the state directory (or `pulumi stack import` a good export)");
    }
    const previous = lastRun(ctx.env, ctx.options.cwd, ctx.options.stack, ctx.runId);
    const diedInUp = previous?.status === "running" && previous.unfinishedStep === "up";
    const here = os.hostname();
    const running = (await engineLocks(store, project, ctx.options.stack)).filter((l) => l.hostname !== here || processAlive(l.pid));
    if (running.length > 0 || (!diedInUp && !ctx.options.repair)) {
      const why = running.length > 0 ? `${what}; a Pulumi operation may still hold it (pid ${running[0]!.pid} on ${running[0]!.hostname})` : `${what}; this machine's journal does not show the run that left it`;
      throw refused("read the stack's state", why, `check that no pulumi command runs on this stack anywhere, then re-run with --repair (it will ${steps})`);
    }
    if (ctx.options.dryRun) throw refused("read the stack's state", what, `a run (not a dry run) will ${steps}`);
    if (tornSidecar) fs.renameSync(sidecar, path.join(path.dirname(sidecar), keep(sidecar)));
    if (tornCheckpoint) {
      fs.renameSync(file, path.join(path.dirname(file), keep(file)));
      fs.copyFileSync(backup, file);
    }
    const done = [tornCheckpoint && `kept it as ${keep(file)} and put Pulumi's backup ${path.basename(backup)} in its place`, tornSidecar && `kept the sidecar as ${keep(sidecar)}`].filter(Boolean).join(", and ");
    return `${what}: ${done}${diedInUp ? ` (run ${previous!.runId} died in up)` : " (--repair)"}`;
  } finally {
    store.close();
  }
}
