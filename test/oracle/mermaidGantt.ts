import { execFile } from "node:child_process";
import * as path from "node:path";

export interface MermaidTask {
  id: string;
  task: string;
  section: string;
  startMs: number;
  endMs: number;
  crit: boolean;
  done: boolean;
  active: boolean;
}
export type MermaidBlock = { diagramType: string; tasks: MermaidTask[] } | { error: string };

/**
 * Every ```mermaid block of a Markdown text as Mermaid's own parser and gantt database read it
 * (test/oracle/mermaid-oracle.mjs, in a Node process of its own: the package is ESM only).
 */
export function parseMermaidBlocks(markdown: string): Promise<MermaidBlock[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [path.join(__dirname, "mermaid-oracle.mjs")], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`the Mermaid oracle failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as MermaidBlock[]);
    });
    child.stdin!.end(markdown);
  });
}
