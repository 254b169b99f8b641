import type { ResolvedOptions } from "../../stacks/context";
import { parseRun } from "../../stacks/journal";
import { renderReport } from "../../stacks/report";
import { codeOcean, runEvents, T0, type Spec } from "../unit/runEvents";
import { parseMermaidBlocks, type MermaidTask } from "./mermaidGantt";

// The report's timeline as Mermaid itself reads it: the parser from the `mermaid` package, and
// the start and end its gantt database computes for each bar.
const options = { stack: "prod", cwd: "/p", dryRun: false } as ResolvedOptions;
const reportOf = (specs: Spec[]) => renderReport({ runId: "r", options, status: "succeeded", exitCode: 0, steps: [], events: runEvents(specs), durationMs: 1 });
const journalOf = (specs: Spec[]) => parseRun(runEvents(specs).map((e) => JSON.stringify({ ...e, at: "x" }) + "\n").join(""), "r", "/j/r.jsonl");

async function ganttOf(markdown: string): Promise<MermaidTask[]> {
  const blocks = await parseMermaidBlocks(markdown);
  expect(blocks).toHaveLength(1);
  const block = blocks[0]!;
  if ("error" in block) throw new Error(`Mermaid rejected the gantt: ${block.error}`);
  expect(block.diagramType).toBe("gantt");
  return block.tasks;
}

test("the gantt of a Code Ocean run is accepted; every step a bar at its instants; the disruption bar as long as the journal says", async () => {
  const tasks = await ganttOf(reportOf(codeOcean));
  const steps = tasks.filter((t) => t.section === "Steps");
  expect(steps.map((t) => t.task.split(" ")[0])).toEqual(codeOcean.map((c) => c[0]));
  expect(steps.map((t) => [(t.startMs - T0) / 1000, (t.endMs - t.startMs) / 1000])).toEqual(codeOcean.map((c) => [c[2], c[3]]));
  expect(steps.find((t) => t.task.startsWith("wait-idle-workers"))).toMatchObject({ active: true, done: false });
  const disruption = tasks.find((t) => t.id === "disruption")!;
  expect(disruption).toMatchObject({ section: "Disruption", crit: true });
  expect(disruption.endMs - disruption.startMs).toBe(journalOf(codeOcean).disruption!.durationMs);
  expect(disruption.endMs - disruption.startMs).toBe(493_000);
});

test("a drain that failed at the window's end, skipped and zero-length steps, an hours-long up: accepted", async () => {
  const specs: Spec[] = [...codeOcean.slice(0, 5), ["wait-idle-workers", "failed", 17, 40, true], ["restore-point", "skipped", 57, 0], ["restore-alarms", "done", 57, 0.004]];
  const tasks = await ganttOf(reportOf(specs));
  expect(tasks.find((t) => t.task.startsWith("wait-idle-workers"))).toMatchObject({ crit: true, active: true });
  const d = tasks.find((t) => t.id === "disruption")!;
  expect(d.endMs - d.startMs).toBe(journalOf(specs).disruption!.durationMs);
  const long = await ganttOf(reportOf(codeOcean.map((s): Spec => (s[0] === "up" ? [s[0], s[1], s[2], 3 * 3600] : s))));
  expect(long.length).toBe(codeOcean.length + 1);
});

test("a run with nothing disruptive has no disruption bar", async () => {
  const tasks = await ganttOf(reportOf([["check-window", "failed", 0, 0.01]]));
  expect(tasks.map((t) => t.id)).toEqual(["s0"]);
});

test("the oracle rejects what Mermaid rejects (a task without data, a colon too many)", async () => {
  const blocks = await parseMermaidBlocks(["```mermaid", "gantt", "  dateFormat x", "  section A", "  bar", "```", "", "```mermaid", "gantt", "  dateFormat x", "  section A", "  wait 1:05 : colon ; : x", "  bar", "```", ""].join("\n"));
  expect(blocks).toHaveLength(2);
  for (const b of blocks) expect(b).toMatchObject({ error: expect.stringMatching(/Parse error/) });
});
