import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

// How the docs tests read Markdown: test/unit/docs.test.ts (links, scripts, flags) and
// test/integration/documented-commands.test.ts (runs the commands of the fenced blocks).

/** The checkout's root. */
export const DOCS_ROOT = resolve(__dirname, "..");

/** README.md, CHANGELOG.md and every .md under docs/. */
export function markdownFiles(root = DOCS_ROOT): string[] {
  const found = ["README.md", "CHANGELOG.md"].map((f) => join(root, f)).filter((f) => existsSync(f));
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".md")) found.push(path);
    }
  };
  if (existsSync(join(root, "docs"))) walk(join(root, "docs"));
  return found;
}

export interface MarkdownParts {
  prose: string;
  /** Code: the lines of fenced blocks and the inline spans, in order. */
  code: string[];
  /** The fenced blocks, each with its info string's first word ("sh", "ts", "" when none). */
  fences: Array<{ lang: string; lines: string[] }>;
}

/** The text of a Markdown file split into prose and code (fenced blocks by line, inline spans). */
export function splitMarkdown(text: string): MarkdownParts {
  const code: string[] = [];
  const prose: string[] = [];
  const fences: MarkdownParts["fences"] = [];
  let fence: string | undefined;
  for (const line of text.split("\n")) {
    const open = /^\s*(```+|~~~+)\s*([^\s`{]*)/.exec(line);
    const marker = open?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      if (fence === undefined) fences.push({ lang: open[2]!.toLowerCase(), lines: [] });
      fence = fence === undefined ? marker : undefined;
      continue;
    }
    if (fence !== undefined) {
      code.push(line);
      fences.at(-1)!.lines.push(line);
      continue;
    }
    prose.push(
      line.replace(/(`+)(.+?)\1/g, (_, _ticks, span: string) => {
        code.push(span);
        return " ";
      }),
    );
  }
  return { prose: prose.join("\n"), code, fences };
}

const SHELL = new Set(["sh", "bash", "shell", "zsh", "console"]);
/** In a fence without a language, the lines that read as a command. */
const LOOKS_LIKE_COMMAND = /^(\$ )?(npm|npx|node|upgrade-orchestrator|source|bash|pulumi|git|curl|cd|export)\s/;

/**
 * The shell commands a reader copies from the fenced blocks: every line of a sh/bash/shell/zsh/console
 * block (and command-like lines of a block without a language), `\` continuations joined, a `$ `
 * prompt and a trailing `# comment` removed, whitespace collapsed.
 */
export function shellCommands(text: string): string[] {
  const commands: string[] = [];
  for (const { lang, lines } of splitMarkdown(text).fences) {
    if (lang !== "" && !SHELL.has(lang)) continue;
    const joined = lines.join("\n").replace(/\\\n\s*/g, " ").split("\n");
    for (const raw of joined) {
      const line = raw.trim().replace(/^\$ /, "").replace(/(^|\s)#\s.*$/, "").replace(/\s+/g, " ").trim();
      if (line === "" || line.startsWith("#")) continue;
      if (lang === "" && !LOOKS_LIKE_COMMAND.test(raw.trim())) continue;
      commands.push(line);
    }
  }
  return commands;
}

/** The commands of the fenced shell blocks of README.md and docs/ (CHANGELOG.md is history, not instructions). */
export function documentedCommands(root = DOCS_ROOT): Set<string> {
  const files = markdownFiles(root).filter((f) => !f.endsWith("CHANGELOG.md"));
  return new Set(files.flatMap((f) => shellCommands(readFileSync(f, "utf8"))));
}

/** Shell words of a command line, quotes removed. */
export function shellWords(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3] ?? m[0]);
  return out;
}

/**
 * The process a documented `npm run <script> -- <args>` starts, as [entry script, ...args]: the
 * script is `bash scripts/node.sh [--leg] <entry> [its own args]`, and node.sh only picks the Node.
 */
export function npmRunArgv(command: string, root = DOCS_ROOT): string[] {
  const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts as Record<string, string>;
  const [npm, run, script, dashes, ...args] = shellWords(command);
  const entry = /^bash scripts\/node\.sh (?:--leg )?(\S+)(.*)$/.exec(scripts[script ?? ""] ?? "");
  if (npm !== "npm" || run !== "run" || !entry || (dashes !== undefined && dashes !== "--")) throw new Error(`not an npm run of a Node script: ${command}`);
  return [join(root, entry[1]!), ...entry[2]!.split(" ").filter(Boolean), ...args];
}
