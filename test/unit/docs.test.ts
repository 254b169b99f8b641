import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { Command } from "commander";
import { buildProgram } from "../../stacks/cli";
import { markdownFiles, splitMarkdown } from "../docsMarkdown";

// The docs are for operators who copy what they read: every link must lead somewhere, and every
// `npm run …` command must name a real script and only flags its command really has (issue 21).
// Running the documented commands on the bed is the integration suite's job; this one reads.

const root = resolve(__dirname, "../..");

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of text.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const heading = fence ? undefined : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = heading
      .replace(/`/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Relative links of a Markdown file (in prose, not in code) that lead nowhere. */
function brokenLinks(file: string, text: string, read: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const m of splitMarkdown(text).prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [path, anchor] = target.split("#", 2) as [string, string | undefined];
    const to = path === "" ? file : resolve(dirname(file), decodeURI(path));
    const content = path === "" ? text : read(to);
    if (content === undefined) {
      problems.push(`${target}: no such file (${relative(root, to)})`);
      continue;
    }
    if (anchor && to.endsWith(".md") && !anchorsOf(content).has(anchor.toLowerCase())) problems.push(`${target}: no heading #${anchor} in ${relative(root, to)}`);
  }
  return problems;
}

function readIfExists(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return statSync(path).isDirectory() ? "" : readFileSync(path, "utf8");
}

/** The command a documented `npm run <script> -- <args>` (or a bare `upgrade …`) line reaches. */
function commandFor(program: Command, script: string | undefined, args: string[]): { command?: Command; rest: string[] } {
  const sub = (parent: Command, name: string) => parent.commands.find((c) => c.name() === name);
  if (script === undefined || script === "upgrade") return { command: sub(program, "upgrade"), rest: args };
  if (script === "status") return { command: sub(program, "status"), rest: args };
  if (script === "cli") {
    let command: Command = program;
    const rest = [...args];
    while (rest.length && !rest[0]!.startsWith("-")) {
      const next = sub(command, rest[0]!);
      if (!next) break;
      command = next;
      rest.shift();
    }
    return { command: command === program ? undefined : command, rest };
  }
  return { rest: args }; // sandbox, bench, test:leg…: scripts of their own, not commander's program
}

const tokensOf = (line: string) =>
  line
    .replace(/\s#\s.*$/, "") // a shell comment
    .split(/\s+/)
    .map((t) => t.replace(/^[[(]+|[\])]+$/g, "").replace(/^['"]|['"]$/g, ""))
    .filter(Boolean);

/** Documented commands that name a missing npm script or a flag their command does not have. */
function badCommands(text: string, scripts: Record<string, string>, program: Command): string[] {
  const problems: string[] = [];
  for (const snippet of splitMarkdown(text).code) {
    const starts = [...snippet.matchAll(/(?:^|[\s;&|(])(?:npm run ([\w:.-]+)|(upgrade)(?=\s+--))/g)];
    starts.forEach((m, i) => {
      const script = m[1];
      if (script !== undefined && !(script in scripts)) problems.push(`npm run ${script}: no such script in package.json`);
      const end = starts[i + 1]?.index ?? snippet.length;
      let args = tokensOf(snippet.slice(m.index! + m[0].length, end));
      if (script !== undefined) {
        if (args[0] !== "--") return; // `npm run upgrade` alone, or with npm's own flags
        args = args.slice(1);
      }
      const { command, rest } = commandFor(program, script, args);
      if (!command) return;
      const known = new Set(["--help", ...command.options.map((o) => o.long)]);
      for (const token of rest) {
        const flag = /^--[a-z][\w-]*/.exec(token)?.[0];
        if (flag && !known.has(flag)) problems.push(`${command.name()} ${flag}: not an option of \`${command.name()}\` (in: ${snippet.trim()})`);
      }
    });
  }
  return problems;
}

const files = markdownFiles();
const scripts: Record<string, string> = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts;

test("the README and docs/ exist", () => {
  expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(["README.md", "docs/upgrading.md", "docs/safe-runs.md", "docs/api.md", "docs/fleets-and-pipelines.md"]));
});

test.each(files.map((f) => [relative(root, f), f]))("every relative link of %s leads to a file (and heading) that exists", (_name, file) => {
  expect(brokenLinks(file, readFileSync(file, "utf8"), readIfExists)).toEqual([]);
});

test.each(files.map((f) => [relative(root, f), f]))("every npm script and upgrade flag shown in %s is real", (_name, file) => {
  expect(badCommands(readFileSync(file, "utf8"), scripts, buildProgram())).toEqual([]);
});

test("the README is a two-minute read: fewer than 150 lines, with the two commands", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  expect(readme.trimEnd().split("\n").length).toBeLessThan(150);
  expect(readme).toContain("npm ci && npm run demo");
  expect(readme).toContain("npm ci && npm test");
});

test("the checks fail on a broken link, a missing heading, an unknown script and an unknown flag", () => {
  const doc = [
    "See [the lock](safe-runs.md#the-lock) and [gone](no-such-page.md), [web](https://example.com/x.md).",
    "```sh",
    "npm run upgrade -- --stack prod --no-such-flag   # --not-checked-in-a-comment",
    "npm run nonexistent-script",
    "npm run cli -- backendai path --from 1 --to 2 --sideways",
    "```",
    "Inline: `upgrade --stack a --yes --colour` and `npm run status -- --stack a [--json]`.",
  ].join("\n");
  const links = brokenLinks(join(root, "docs", "x.md"), doc, readIfExists);
  expect(links).toEqual([expect.stringContaining("#the-lock: no heading"), expect.stringContaining("no-such-page.md: no such file")]);
  const commands = badCommands(doc, scripts, buildProgram());
  expect(commands).toEqual([
    expect.stringContaining("upgrade --no-such-flag"),
    expect.stringContaining("npm run nonexistent-script: no such script"),
    expect.stringContaining("path --sideways"),
    expect.stringContaining("upgrade --colour"),
  ]);
});
