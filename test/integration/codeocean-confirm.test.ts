import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { startSandbox, type Sandbox } from "../sandbox";
import { awsSnapshot } from "../sandbox/awsState";
import { CLI } from "../sandbox/cli";
import { startCodeOceanScenario, type CodeOceanScenario } from "../sandbox/codeocean";
import { delay } from "../sandbox/processes";

// Runbook 1 at a real terminal (a tmux pane, so the CLI sees a TTY and renders its live task
// list): the operator is asked right after plan-update, before anything is disrupted, and told what
// would be; declining leaves the deployment exactly as it was.
let bed: Sandbox;
let scenario: CodeOceanScenario;
let socket: string;

beforeAll(async () => {
  bed = await startSandbox();
  scenario = await startCodeOceanScenario(bed, { stackName: "tty", workers: 2, gpuWorkers: 0, drainMs: 60_000 });
  socket = path.join(bed.dir, "tmux.sock");
});
afterAll(async () => {
  if (socket && fs.existsSync(socket)) execFileSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" });
  await scenario?.stop();
  await bed?.stop();
});

const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
/** The pane as the operator sees it (wrapped lines joined). */
const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "uo");

async function waitFor(what: string, test: () => boolean, timeoutMs = 180_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; the screen:\n${screen()}`);
    await delay(300);
  }
}

test("a terminal run declined at the confirmation has cancelled nothing: computations still running, no instance unprotected, no alarm touched", async () => {
  const before = await awsSnapshot(bed.env);
  const running = scenario.services.running();
  expect(Object.values(running).every((n) => n > 0)).toBe(true);
  const asg = scenario.deployment.outputs.workersAsgId!.value as string;
  expect(before.protection[asg]).toHaveLength(2);
  bed.aws!.clearCalls();

  // the run's environment goes to the pane through a script only this user can read (it holds the bed's passphrase)
  const script = path.join(bed.dir, "tty-run.sh");
  const exitFile = path.join(bed.dir, "tty-run.exit");
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(bed.env).map(([k, v]) => `export ${k}=${quote(String(v))}`).join("\n");
  const command = [process.execPath, CLI, "upgrade", ...scenario.upgradeArgs, "--release", "2.0.0"].map(quote).join(" ");
  fs.writeFileSync(script, `${exports}\n${command}\necho $? > ${quote(exitFile)}\nsleep 600\n`, { mode: 0o700 });
  tmux("new-session", "-d", "-s", "uo", "-x", "220", "-y", "60", `bash ${quote(script)}`);

  await waitFor("the confirmation question", () => /Go ahead with this upgrade of stack tty\? \[y\/N\]/.test(screen()));
  const asked = screen();
  // what will be disrupted, read from the world, and what `up` will change
  expect(asked).toMatch(new RegExp(`CANCEL every running computation on the services machine: ${asg}: \\d+% of slots in use, 2 InService`));
  expect(asked).toMatch(/remove scale-in protection from 2 instances/);
  expect(asked).toMatch(/suspend the actions of 13 alarms until the run ends/);
  expect(asked).toMatch(/then `pulumi up` will apply: .*replace/);
  expect(asked).toMatch(/\+- .*workers-asg/); // the plan's resources are on screen
  // asked before the disruption: nothing was sent to the services machine, nothing written to AWS
  expect(scenario.services.requests()).toEqual([]);
  expect(bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action))).toEqual([]);

  tmux("send-keys", "-t", "uo", "n", "Enter");
  await waitFor("the run to end", () => fs.existsSync(exitFile) && fs.readFileSync(exitFile, "utf8").trim() !== "");
  expect(fs.readFileSync(exitFile, "utf8").trim()).toBe("3");
  const after = screen();
  expect(after).toMatch(/upgrade failed in .* \(exit 3\)/);
  expect(after).toMatch(/declined at the confirmation/);
  expect(after).toMatch(/nothing was changed: no computation was cancelled, no instance unprotected, no alarm touched; the project is checked out at 2\.0\.0 \(it was at 1\.0\.0/);
  // each row of the task list is one line: the refusal's hint stays on its row, the next row starts on its own
  // (the last drawing of each row: the scrollback holds the earlier ones)
  const rows = after.split("\n").reverse();
  if (process.env.UO_SHOW_SCREEN) process.stderr.write(after);
  const confirmRow = rows.find((l) => l.includes("Confirm the plan"))!;
  expect(confirmRow).toMatch(/^✖ Confirm the plan \(\d+:\d\d\) — could not start the upgrade: the operator declined at the confirmation · hint: nothing was changed/);
  expect(rows.find((l) => l.includes("Restore alarm actions"))).toMatch(/^✔ Restore alarm actions \(\d+:\d\d\) — no suspended alarm to restore/);

  // the deployment as it was: computations running, no cancel request, protection and alarms untouched, still 1.0.0
  expect(scenario.services.requests()).toEqual([]);
  expect(scenario.services.cancelledAt()).toBeUndefined();
  expect(Object.values(scenario.services.running()).every((n) => n > 0)).toBe(true);
  expect(await awsSnapshot(bed.env)).toEqual(before);
  expect(bed.aws!.calls().filter((c) => !/^(Describe|Get|List)/.test(c.action))).toEqual([]);
  expect((await scenario.deployment.stack.outputs()).deployedRelease?.value).toBe("1.0.0");
}, 400_000);
