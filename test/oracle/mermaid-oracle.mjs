// The oracle for the report's timeline: Mermaid's own parser (the `mermaid` package, ESM only, so
// it runs in a Node process of its own, not under jest's module system). Reads Markdown on stdin,
// parses every ```mermaid block, and prints per block either {error} or the tasks as Mermaid's
// gantt database computed them: {diagramType, tasks: [{id, task, section, startMs, endMs, crit, done, active}]}.
// Mermaid sanitizes titles with DOMPurify, which needs a DOM: the report's gantt has no title.
import mermaid from "mermaid";

let text = "";
for await (const chunk of process.stdin) text += chunk;
const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
const out = [];
for (const block of blocks) {
  try {
    const { diagramType } = await mermaid.parse(block);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(block);
    const tasks = diagram.db.getTasks().map((t) => ({
      id: t.id,
      task: t.task.trim(),
      section: t.section,
      startMs: t.startTime.getTime(),
      endMs: t.endTime.getTime(),
      crit: t.crit === true,
      done: t.done === true,
      active: t.active === true,
    }));
    out.push({ diagramType, tasks });
  } catch (err) {
    out.push({ error: String(err?.message ?? err) });
  }
}
process.stdout.write(JSON.stringify(out));
