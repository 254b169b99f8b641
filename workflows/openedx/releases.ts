/**
 * Open edX named releases and the rules of an upgrade between them. Pure.
 *
 * Order: the named releases as the Open edX project published them (the configuration repo's
 * Named-Releases page, then the release notes at docs.openedx.org: … quince (2023-12), redwood
 * (2024-06), sumac (2024-12), teak (2025-06), ulmo (2025-12), verawood (2026-06)). A name we do
 * not know yet is refused, not guessed at.
 *
 * Forms: `<name>.<N>` (the open-release/<name>.<N> tag), `<name>.rc<N>` (a release candidate, before
 * `.1`), `<name>.master` (the open-release/<name>.master branch, what MITx deployed between tags).
 */
export const RELEASE_ORDER = [
  "aspen", "birch", "cypress", "dogwood", "eucalyptus", "ficus", "ginkgo", "hawthorn", "ironwood",
  "juniper", "koa", "lilac", "maple", "nutmeg", "olive", "palm", "quince", "redwood", "sumac",
  "teak", "ulmo", "verawood",
] as const;

export interface Release {
  text: string;
  name: string;
  /** Position of `name` in RELEASE_ORDER. */
  index: number;
  form: "point" | "rc" | "master";
  /** N of `.N` / `.rcN`; undefined for `.master`. */
  number?: number;
}

export const RELEASE_PATTERN = /^([a-z]+)\.(master|rc(\d+)|(\d+))$/;

/** Parses a release; a string saying what is wrong when it is not one. */
export function parseRelease(text: string): Release | string {
  const m = RELEASE_PATTERN.exec(text);
  if (!m) return `"${text}" is not an Open edX release: use <name>.<N>, <name>.rc<N> or <name>.master (e.g. sumac.3, teak.rc1, sumac.master)`;
  const name = m[1]!;
  const index = (RELEASE_ORDER as readonly string[]).indexOf(name);
  if (index < 0) return `"${name}" is not a named Open edX release known here (known: ${RELEASE_ORDER.slice(-6).join(", ")} …)`;
  if (m[2] === "master") return { text, name, index, form: "master" };
  if (m[3] !== undefined) return { text, name, index, form: "rc", number: Number(m[3]) };
  const number = Number(m[4]);
  if (number < 1) return `"${text}": point releases start at .1`;
  return { text, name, index, form: "point", number };
}

const capitalised = (name: string) => name[0]!.toUpperCase() + name.slice(1);

/**
 * Whether `from` may be upgraded to `to` in one cut-over: the same named release (a later tag, or
 * to/from its .master branch, which has no order against the tags) or the next one in Open edX's
 * order. Returns why not, or undefined when allowed. Same release text: nothing to do (allowed).
 */
export function upgradeRefusal(fromText: string, toText: string): string | undefined {
  const from = parseRelease(fromText);
  const to = parseRelease(toText);
  if (typeof from === "string") return from;
  if (typeof to === "string") return to;
  if (from.text === to.text) return undefined;
  if (to.index < from.index) return `${to.text} is older than ${from.text}: a downgrade (${capitalised(from.name)} → ${capitalised(to.name)}) is not an upgrade; to go back, restore blue's database backup and AMIs by hand`;
  if (to.index > from.index + 1) {
    const next = RELEASE_ORDER[from.index + 1]!;
    const skipped = RELEASE_ORDER.slice(from.index + 1, to.index).join(", ");
    return `${from.text} → ${to.text} skips ${skipped}: Open edX is upgraded one named release at a time (its migrations and data steps assume it); upgrade to ${next} first (e.g. ${next}.1), then to ${to.name}`;
  }
  if (to.index === from.index) {
    if (from.form === "master" || to.form === "master") return undefined;
    const rank = (r: Release) => (r.form === "rc" ? r.number! : 1000 + r.number!);
    if (rank(to) < rank(from)) return `${to.text} is older than ${from.text}: a downgrade within ${from.name} is not an upgrade`;
  }
  return undefined;
}

/** The named releases entered by an upgrade from `from` to `to` (to's name when it is a new one). */
export function releasesEntered(fromText: string, toText: string): string[] {
  const from = parseRelease(fromText);
  const to = parseRelease(toText);
  if (typeof from === "string" || typeof to === "string" || to.index <= from.index) return [];
  return RELEASE_ORDER.slice(from.index + 1, to.index + 1) as unknown as string[];
}

/**
 * Steps a named release needs after its migrations, known from its release notes; the defaults of
 * `releaseSteps` (settings can replace or add to them). `{manage}` is the host's manage.py command
 * (commands.manage), `{service}` lms or cms.
 */
export const KNOWN_RELEASE_STEPS: Record<string, Array<{ id: string; service: "lms" | "cms"; args: string; why: string }>> = {
  sumac: [
    {
      id: "reindex-studio",
      service: "cms",
      args: "reindex_studio --experimental --incremental",
      why: "Sumac's Studio content search uses Meilisearch: its index is built from the courses once after the upgrade (Sumac release notes)",
    },
  ],
};
