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

/**
 * A `pulumi up` killed on a file:// backend can leave the stack's checkpoint torn (empty or cut
 * short): no Pulumi command reads the stack again ("failed to load checkpoint: EOF"). Before each
 * save the backend copies the checkpoint it replaces to `<stack>.json.bak` (pkg/backend/diy,
 * saveCheckpoint). When the evidence is certain (our journal shows this stack's last run died in
 * `up`, and no engine lock's process is alive on this host) or with --repair, the torn file is kept
 * beside as `<stack>.json.torn-<run id>` and the backup put in its place; repair-interrupted-update
 * then clears the lock and refreshes the pending operations as after any interrupted update. The
 * backup may be one step behind: a resource the last step created can be missing from it (the same
 * as a pending create cleared). Returns the note, or undefined when this is not that failure.
 */
export async function restoreTornCheckpoint(ctx: RunContext, workspace: Workspace, message: string): Promise<string | undefined> {
  if (!TORN_CHECKPOINT.test(message)) return undefined;
  const { url, project, store } = await workspaceBackend(workspace, ctx.env);
  if (!url.startsWith("file://") || !store) return undefined;
  const root = fileURLToPath(url.split("?")[0]!);
  const name = ctx.options.stack.split("/").at(-1)!;
  const file = [path.join(root, ".pulumi", "stacks", project, `${name}.json`), path.join(root, ".pulumi", "stacks", `${name}.json`)].find((f) => fs.existsSync(f));
  if (!file || parses(file)) return undefined;
  const backup = `${file}.bak`;
  const what = `the checkpoint of stack ${ctx.options.stack} (${file}) is torn (${fs.statSync(file).size} bytes that do not parse), as a killed \`pulumi up\` leaves it`;
  try {
    if (!fs.existsSync(backup) || !parses(backup)) {
      throw refused("read the stack's state", `${what}, and there is no readable backup ${backup}`, "restore the file from your own backups of the state directory (or `pulumi stack import` a good export)");
    }
    const previous = lastRun(ctx.env, ctx.options.cwd, ctx.options.stack, ctx.runId);
    const diedInUp = previous?.status === "running" && previous.unfinishedStep === "up";
    const here = os.hostname();
    const running = (await engineLocks(store, project, ctx.options.stack)).filter((l) => l.hostname !== here || processAlive(l.pid));
    const plan = `keep it as ${path.basename(file)}.torn-${ctx.runId} and put Pulumi's backup ${path.basename(backup)} (the checkpoint before its last save) in its place`;
    if (running.length > 0 || (!diedInUp && !ctx.options.repair)) {
      const why = running.length > 0 ? `${what}; a Pulumi operation may still hold it (pid ${running[0]!.pid} on ${running[0]!.hostname})` : `${what}; this machine's journal does not show the run that left it`;
      throw refused("read the stack's state", why, `check that no pulumi command runs on this stack anywhere, then re-run with --repair (it will ${plan})`);
    }
    if (ctx.options.dryRun) throw refused("read the stack's state", what, `a run (not a dry run) will ${plan}`);
    fs.renameSync(file, `${file}.torn-${ctx.runId}`);
    fs.copyFileSync(backup, file);
    return `${what}: kept it as ${path.basename(file)}.torn-${ctx.runId} and put Pulumi's backup ${path.basename(backup)} in its place${diedInUp ? ` (run ${previous!.runId} died in up)` : " (--repair)"}`;
  } finally {
    store.close();
  }
}
