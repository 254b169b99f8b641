import * as fs from "node:fs";
import { startSandbox, type Sandbox } from "../sandbox";
import { runCli } from "../sandbox/cli";
import { createFleetStacks } from "../sandbox/fleetStacks";
import { startWebhook, type Webhook } from "../sandbox/webhook";

// --notify against real HTTP servers on loopback: one that takes the POSTs, one that answers 500,
// one that never answers. Webhooks never fail the upgrade, and every payload is redacted.
let bed: Sandbox;
let workDir: string;
let ok: Webhook;
let broken: Webhook;
let hanging: Webhook;
jest.setTimeout(600_000); // real CLI runs; minutes on a busy 2-core machine

beforeAll(async () => {
  bed = await startSandbox({ aws: false, ssh: false });
  workDir = await createFleetStacks(bed, ["notified"]);
  [ok, broken, hanging] = await Promise.all([startWebhook({ status: 200 }), startWebhook({ status: 500 }), startWebhook("hang")]);
});
afterAll(async () => {
  for (const h of [ok, broken, hanging]) await h?.close();
  await bed?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

const notifyArgs = () => ["--notify", ok.url, "--notify", broken.url, "--notify", hanging.url, "--notify-timeout", "4s", "--notify-backoff", "200ms"];

test("a run tells the webhook it started and succeeded; a webhook answering 500 or hanging is retried, then noted, and the run still succeeds", async () => {
  const run = await runCli(["upgrade", "--stack", "notified", "--cwd", workDir, "--yes", "--json", ...notifyArgs()], bed.env);
  expect(run.code).toBe(0);
  // the hanging webhook is cut off by its deadline and retried: up to 4 attempts of 4 s per message
  // (an attempt cut off before its body arrived is not seen by the server)
  const hangingStarts = hanging.received.filter((b) => b.event === "run-started").length;
  expect(hangingStarts).toBeGreaterThanOrEqual(2);
  expect(hangingStarts).toBeLessThanOrEqual(4);
  const events = run.events();
  expect(events.at(-1)).toMatchObject({ type: "summary", status: "succeeded", exitCode: 0 });
  // Slack-compatible text plus the structured summary (delivery is at least once: a retry after a
  // reply slower than the deadline may repeat a message)
  const unique = ok.received.filter((b, i) => ok.received.findIndex((x) => JSON.stringify(x) === JSON.stringify(b)) === i);
  expect(unique).toEqual([
    { event: "run-started", text: expect.stringMatching(/^upgrade of stack notified started \(run \S+\)$/), summary: expect.objectContaining({ stack: "notified" }) },
    { event: "run-succeeded", text: expect.stringMatching(/^upgrade of stack notified succeeded \(exit 0, run \S+\)$/), summary: expect.objectContaining({ stack: "notified", status: "succeeded", exitCode: 0, changes: { create: 1 } }) },
  ]);
  // 500 and hang: the first try and 3 retries for each message, then a note (by host only: the URL's token stays out)
  for (const event of ["run-started", "run-succeeded"]) {
    expect(broken.received.filter((b) => b.event === event).length).toBeGreaterThanOrEqual(2);
    expect(broken.received.filter((b) => b.event === event).length).toBeLessThanOrEqual(4);
  }
  const notes = events.filter((e) => e.type === "note").map((e) => e.message as string);
  const brokenHost = new URL(broken.url).host;
  expect(notes).toContainEqual(expect.stringMatching(new RegExp(`outcome notification to http://${brokenHost} was not delivered after 4 attempt\\(s\\): .*HTTP 500.*the upgrade is not affected`)));
  expect(notes).toContainEqual(expect.stringMatching(new RegExp(`outcome notification to http://${new URL(hanging.url).host} was not delivered after 4 attempt\\(s\\)`)));
  expect(run.stdout + run.stderr).not.toContain("secret-token-abc");
});

test("a failed run is announced once, after its end, with the error redacted", async () => {
  // a run that fails with a secret in its error: a stack named like the Pulumi passphrase (no such stack)
  const secretName = bed.pulumi!.passphrase;
  const run = await runCli(["upgrade", "--stack", secretName, "--cwd", workDir, "--yes", "--json", "--notify", ok.url, "--notify-timeout", "4s"], bed.env);
  expect(run.code).toBe(2);
  const mine = ok.received.filter((b) => (b.summary as { stack?: string }).stack === "[secret]");
  expect([...new Set(mine.map((b) => b.event))]).toEqual(["run-started", "run-failed"]);
  expect(mine.at(-1)!.event).toBe("run-failed"); // sent once the run had ended
  expect(mine.at(-1)).toMatchObject({ text: expect.stringMatching(/^upgrade of stack \[secret\] failed \(exit 2, run \S+\): could not select the stack \[secret\]/), summary: { status: "failed", exitCode: 2 } });
  expect(JSON.stringify(ok.received)).not.toContain(secretName);
});
