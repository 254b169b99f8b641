/**
 * The one redaction layer: every line and event that leaves the process passes through a
 * Redactor, which replaces the secrets it was told about (passphrases, passwords, key material)
 * with "[secret]". Short values are ignored: redacting "a" would mangle every line.
 */
export interface Redactor {
  add(secret: string | undefined): void;
  text(value: string): string;
  /** Deep copy of a JSON-able value with every string redacted. */
  value<T>(value: T): T;
}

const MIN_SECRET_LENGTH = 4;

export function createRedactor(initial: Array<string | undefined> = []): Redactor {
  const secrets = new Set<string>();
  const add = (secret: string | undefined) => {
    if (!secret || secret.length < MIN_SECRET_LENGTH) return;
    secrets.add(secret);
    // multi-line secrets (PEM keys) also leak line by line
    for (const line of secret.split(/\r?\n/)) if (line.trim().length >= 16) secrets.add(line.trim());
  };
  initial.forEach(add);
  const text = (value: string) => {
    let out = value;
    for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join("[secret]");
    return out;
  };
  const value = <T>(v: T): T => {
    if (typeof v === "string") return text(v) as T;
    if (Array.isArray(v)) return v.map(value) as T;
    if (v && typeof v === "object" && !(v instanceof Date)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(x)])) as T;
    }
    return v;
  };
  return { add, text, value };
}
