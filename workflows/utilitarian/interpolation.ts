import { UpgradeError } from "../../lib/errors";

/**
 * Compose's variable interpolation (the compose-spec's `${VAR}`, `$VAR`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$`), kept with
 * source positions so that the workflow can tell where a piece of the resolved text comes from:
 * the text itself (an offset to edit) or a variable (a value to change where it is set).
 * And `.env` files as Compose reads them, with the position of each value.
 * Pure: text in, positions and values out. `docker compose config` stays the authority: the
 * caller compares what this resolves with what Compose resolves before it edits anything.
 */
export type Operator = "" | ":-" | "-" | ":?" | "?" | ":+" | "+";

export type Part =
  /** Literal text; `value` differs from the raw text only where `$$` stands for `$`. */
  | { kind: "text"; start: number; end: number; value: string }
  | { kind: "var"; start: number; end: number; name: string; op: Operator; arg: Part[] };

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

const invalid = (text: string, why: string) =>
  new UpgradeError({ what: `read the interpolation in ${JSON.stringify(text)}`, why, hint: "fix the compose file (docker compose config rejects it too); nothing was changed", exitCode: 2, permanent: true });

/** The parts of a template, positions relative to `text` plus `offset`. */
export function parseTemplate(text: string, offset = 0): Part[] {
  return parseRange(text, 0, text.length, offset);
}

function parseRange(text: string, from: number, to: number, offset: number): Part[] {
  const parts: Part[] = [];
  let literal = "";
  let literalStart = from;
  const flush = (end: number) => {
    if (end > literalStart) parts.push({ kind: "text", start: literalStart + offset, end: end + offset, value: literal });
    literal = "";
  };
  let i = from;
  while (i < to) {
    if (text[i] !== "$") {
      literal += text[i];
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      literal += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      flush(i);
      const nameMatch = NAME.exec(text.slice(i + 2, to));
      if (!nameMatch) throw invalid(text, `\`\${\` at ${i} is not followed by a variable name`);
      const name = nameMatch[0];
      let j = i + 2 + name.length;
      const op = (["}", ":-", ":?", ":+", "-", "?", "+"].find((o) => text.startsWith(o, j)) ?? undefined) as Operator | "}" | undefined;
      if (op === undefined) throw invalid(text, `\`\${${name}\` is followed by ${JSON.stringify(text[j] ?? "the end")}`);
      if (op === "}") {
        parts.push({ kind: "var", start: i + offset, end: j + 1 + offset, name, op: "", arg: [] });
        i = j + 1;
      } else {
        j += op.length;
        const close = closingBrace(text, j, to);
        if (close < 0) throw invalid(text, `\`\${${name}${op}\` has no closing \`}\``);
        parts.push({ kind: "var", start: i + offset, end: close + 1 + offset, name, op, arg: parseRange(text, j, close, offset) });
        i = close + 1;
      }
      literalStart = i;
      continue;
    }
    const bare = NAME.exec(text.slice(i + 1, to));
    if (!bare) throw invalid(text, `a \`$\` at ${i} starts no variable (write \`$$\` for a literal \`$\`)`);
    flush(i);
    parts.push({ kind: "var", start: i + offset, end: i + 1 + bare[0].length + offset, name: bare[0], op: "", arg: [] });
    i += 1 + bare[0].length;
    literalStart = i;
  }
  flush(to);
  return parts;
}

function closingBrace(text: string, from: number, to: number): number {
  let depth = 0;
  for (let i = from; i < to; i++) {
    if (text[i] === "$" && text[i + 1] === "$") i++;
    else if (text[i] === "$" && text[i + 1] === "{") {
      depth++;
      i++;
    } else if (text[i] === "}") {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/** Where a stretch of the resolved text comes from. */
export type Origin =
  /** Literal template text at `start` (raw offsets; `exact`: the raw text is the value, no `$$`). */
  | { kind: "text"; start: number; exact: boolean }
  /** The value of a variable (from the environment or an env file). */
  | { kind: "variable"; name: string };

export interface Piece {
  /** Offsets in the resolved text. */
  start: number;
  end: number;
  origin: Origin;
}

export interface Resolved {
  value: string;
  pieces: Piece[];
  /** Variables the value depends on, set or not. */
  variables: string[];
}

/** Resolves a template as Compose does against `env` (unset and empty differ for `-`, `?`, `+`). */
export function resolveTemplate(parts: Part[], env: ReadonlyMap<string, string>, template = ""): Resolved {
  let value = "";
  const pieces: Piece[] = [];
  const variables: string[] = [];
  const add = (text: string, origin: Origin) => {
    if (text.length === 0) return;
    pieces.push({ start: value.length, end: value.length + text.length, origin });
    value += text;
  };
  const addAll = (inner: Resolved) => {
    for (const p of inner.pieces) pieces.push({ ...p, start: p.start + value.length, end: p.end + value.length });
    value += inner.value;
    variables.push(...inner.variables);
  };
  for (const part of parts) {
    if (part.kind === "text") {
      add(part.value, { kind: "text", start: part.start, exact: part.value.length === part.end - part.start });
      continue;
    }
    variables.push(part.name);
    const set = env.has(part.name);
    const current = env.get(part.name) ?? "";
    const empty = current === "";
    switch (part.op) {
      case "":
        add(current, { kind: "variable", name: part.name });
        break;
      case ":-":
      case "-":
        if (set && !(part.op === ":-" && empty)) add(current, { kind: "variable", name: part.name });
        else addAll(resolveTemplate(part.arg, env, template));
        break;
      case ":?":
      case "?":
        if (!set || (part.op === ":?" && empty)) {
          const message = resolveTemplate(part.arg, env, template).value;
          throw new UpgradeError({
            what: `resolve ${template || `\${${part.name}${part.op}…}`}`,
            why: `required variable ${part.name} is missing a value${message ? `: ${message}` : ""}`,
            hint: `set ${part.name} in the .env file (or compose.env); nothing was changed`,
            exitCode: 2,
            permanent: true,
          });
        }
        add(current, { kind: "variable", name: part.name });
        break;
      case ":+":
      case "+":
        if (set && !(part.op === ":+" && empty)) addAll(resolveTemplate(part.arg, env, template));
        break;
    }
  }
  return { value, pieces, variables: [...new Set(variables)] };
}

/** The piece the whole of [start, end) of the resolved text comes from, if one does. */
export function originOf(resolved: Resolved, start: number, end: number): { origin: Origin; offset: number } | undefined {
  const piece = resolved.pieces.find((p) => p.start <= start && end <= p.end);
  return piece ? { origin: piece.origin, offset: start - piece.start } : undefined;
}

// ---- .env files ------------------------------------------------------------------------------

export interface EnvAssignment {
  name: string;
  value: string;
  /** Offsets of the raw value in the file (inside the quotes, if quoted). */
  start: number;
  end: number;
  quote: "" | "'" | '"';
  /** The raw text is the value as is (no escapes, no interpolation): it can be edited in place. */
  editable: boolean;
}

/**
 * The assignments of a `.env` file as Compose's dotenv reads them: `NAME=value`, `export NAME=value`,
 * `#` comments (a `#` after whitespace ends an unquoted value), single quotes literal, double quotes
 * with escapes. Later assignments win. Values spanning lines are read, never edited.
 */
export function parseEnvFile(text: string): Map<string, EnvAssignment> {
  const out = new Map<string, EnvAssignment>();
  const line = /^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*[=:][ \t]*/gm;
  for (let m = line.exec(text); m; m = line.exec(text)) {
    const name = m[1]!;
    const at = m.index + m[0].length;
    const eol = (() => {
      const n = text.indexOf("\n", at);
      return n < 0 ? text.length : n;
    })();
    const first = text[at];
    if (first === "'" || first === '"') {
      const close = first === "'" ? text.indexOf("'", at + 1) : closingQuote(text, at + 1);
      if (close < 0) continue;
      const raw = text.slice(at + 1, close);
      const value = first === '"' ? unescapeDouble(raw) : raw;
      out.set(name, { name, value, start: at + 1, end: close, quote: first, editable: raw === value && !raw.includes("\n") && !(first === '"' && raw.includes("$")) });
      line.lastIndex = Math.max(line.lastIndex, close + 1);
      continue;
    }
    let raw = text.slice(at, eol);
    const comment = raw.search(/[ \t]#/);
    if (comment >= 0) raw = raw.slice(0, comment);
    raw = raw.replace(/[ \t\r]+$/, "");
    out.set(name, { name, value: raw, start: at, end: at + raw.length, quote: "", editable: !raw.includes("$") && !raw.includes("\\") });
  }
  return out;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

const unescapeDouble = (raw: string) => raw.replace(/\\([\\"nrt$])/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? c);
