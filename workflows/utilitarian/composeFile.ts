import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type Scalar, type YAMLMap } from "yaml";
import { UpgradeError } from "../../lib/errors";

/**
 * The compose file as an operator keeps it: read the image each service runs (through `<<: *anchor`
 * merges too) and rewrite the tags of chosen services, and nothing else. Where the image is a
 * scalar in the file (in the service or in an anchor only the chosen services merge) its text is
 * replaced in place, so comments, anchors, quoting and order stay byte for byte; where an anchor
 * is shared with a service that must keep its image, the chosen services get their own `image:`.
 * Pure: text in, text out.
 */
export interface ImageRef {
  repository: string;
  tag: string;
}

/** "quay.io/pwit/utilitarian:1.0.0" → { repository: "quay.io/pwit/utilitarian", tag: "1.0.0" } (a digest or no tag: tag ""). */
export function parseImage(image: string): ImageRef {
  const at = image.indexOf("@");
  const name = at >= 0 ? image.slice(0, at) : image;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) return { repository: name.slice(0, colon), tag: at >= 0 ? "" : name.slice(colon + 1) };
  return { repository: name, tag: "" };
}

interface ImageSource {
  /** The scalar holding the image reference. */
  scalar: Scalar;
  /** Whether it sits in a merged (anchored) map rather than in the service itself. */
  merged: boolean;
  /** The map holding the `image` key. */
  holder: YAMLMap;
}

export interface ComposeFile {
  readonly label: string;
  readonly text: string;
  readonly doc: Document;
  /** Service names in file order. */
  readonly services: string[];
  /** The effective image of a service (undefined: none in this file). */
  image(service: string): string | undefined;
}

const isMergeKey = (key: unknown) => isScalar(key) && (key.value === "<<" || typeof key.value === "symbol");

export function readComposeFile(text: string, label: string): ComposeFile {
  const doc = parseDocument(text, { merge: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UpgradeError({
      what: `read the compose file ${label}`,
      why: `it is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`,
      hint: "fix the file (it was left untouched), then run again",
      permanent: true,
    });
  }
  const services = doc.get("services");
  if (!isMap(services)) {
    throw new UpgradeError({ what: `read the compose file ${label}`, why: "it has no `services:` map", hint: "check compose.files", permanent: true });
  }
  const names = services.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key));
  const file: ComposeFile = {
    label,
    text,
    doc,
    services: names,
    image: (service) => {
      const source = imageSource(doc, serviceMap(doc, service));
      return source ? String(source.scalar.value) : undefined;
    },
  };
  return file;
}

function serviceMap(doc: Document, service: string): YAMLMap | undefined {
  const node = (doc.get("services") as YAMLMap).get(service, true);
  return isMap(node) ? node : undefined;
}

/** Where a service map's image comes from: its own key first, then its merges in order. */
function imageSource(doc: Document, map: YAMLMap | undefined, merged = false): ImageSource | undefined {
  if (!map) return undefined;
  const own = map.items.find((p) => isScalar(p.key) && p.key.value === "image");
  if (own && isScalar(own.value)) return { scalar: own.value, merged, holder: map };
  for (const pair of map.items.filter((p) => isMergeKey(p.key))) {
    const targets = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const target of targets) {
      const resolved = isAlias(target) ? (target.resolve(doc) as Node | undefined) : (target as Node | undefined);
      const found = isMap(resolved) ? imageSource(doc, resolved, true) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The file with the image tag of `services` set to `tag` (repository kept). Throws when a service
 * is missing or has no image in this file. Verified: every other service's image is unchanged.
 */
export function rewriteImageTags(file: ComposeFile, services: string[], tag: string): string {
  const sources = new Map<string, ImageSource>();
  for (const service of services) {
    const source = imageSource(file.doc, serviceMap(file.doc, service));
    if (!source) {
      throw new UpgradeError({
        what: `rewrite the image of ${service} in ${file.label}`,
        why: file.services.includes(service) ? `${service} has no image in it` : `there is no service ${service} in it (services: ${file.services.join(", ")})`,
        hint: "check the services settings (api, beat, workers) against the compose file",
        permanent: true,
      });
    }
    sources.set(service, source);
  }
  const newImage = (source: ImageSource) => `${parseImage(String(source.scalar.value)).repository}:${tag}`;
  // A scalar may be edited in place when every service whose image it is, is being rewritten.
  const users = new Map<Scalar, string[]>();
  for (const service of file.services) {
    const source = imageSource(file.doc, serviceMap(file.doc, service));
    if (source) users.set(source.scalar, [...(users.get(source.scalar) ?? []), service]);
  }
  const inPlace: ImageSource[] = [];
  const ownKey: Array<{ service: string; image: string }> = [];
  for (const [service, source] of sources) {
    const all = users.get(source.scalar) ?? [];
    if (all.every((s) => services.includes(s))) {
      if (!inPlace.includes(source)) inPlace.push(source);
    } else {
      ownKey.push({ service, image: newImage(source) });
    }
  }
  // Edits spliced into the original text, last first so earlier offsets hold.
  const edits: Array<{ at: number; end: number; text: string }> = [];
  for (const source of inPlace) {
    const [start, end] = source.scalar.range!;
    const original = file.text.slice(start, end);
    const quote = original.startsWith('"') ? '"' : original.startsWith("'") ? "'" : "";
    edits.push({ at: start, end, text: quote + newImage(source) + quote });
  }
  for (const { service, image } of ownKey) {
    // A line of its own right after the service's merge key, at the merge key's indentation.
    const merge = serviceMap(file.doc, service)!.items.find((p) => isMergeKey(p.key))!;
    const keyStart = (merge.key as Scalar).range![0];
    const indent = keyStart - (file.text.lastIndexOf("\n", keyStart - 1) + 1);
    const valueEnd = (merge.value as Node).range![1];
    const eol = file.text.indexOf("\n", valueEnd);
    const at = eol < 0 ? file.text.length : eol;
    edits.push({ at, end: at, text: `\n${" ".repeat(indent)}image: ${image}` });
  }
  let text = file.text;
  for (const edit of edits.sort((a, b) => b.at - a.at)) text = text.slice(0, edit.at) + edit.text + text.slice(edit.end);
  // Nothing else changed: every other service keeps its image, the chosen ones have the new tag.
  const after = readComposeFile(text, file.label);
  for (const service of file.services) {
    const expected = services.includes(service) ? `${parseImage(file.image(service)!).repository}:${tag}` : file.image(service);
    if (after.image(service) !== expected) {
      throw new UpgradeError({ what: `rewrite ${file.label}`, why: `${service} would run ${after.image(service)} instead of ${expected}`, hint: "report this; the file was left untouched", permanent: true });
    }
  }
  return text;
}

/** The image text of a service as written (inside its quotes), where it starts in the file, and the file. */
export interface ImageText {
  file: ComposeFile;
  raw: string;
  start: number;
  /** The raw text is the scalar's value (no escapes or folding), so offsets in it are offsets in the file. */
  exact: boolean;
}

/** The image text of a service in the last file that gives it one (later files override earlier ones, as in compose). */
export function imageScalarOf(files: ComposeFile[], service: string): ImageText | undefined {
  for (const file of [...files].reverse()) {
    const source = imageSource(file.doc, serviceMap(file.doc, service));
    if (!source) continue;
    const [start, end] = source.scalar.range!;
    const text = file.text.slice(start, end);
    const quoted = text.startsWith('"') || text.startsWith("'");
    const raw = quoted ? text.slice(1, -1) : text;
    return { file, raw, start: quoted ? start + 1 : start, exact: raw === String(source.scalar.value) };
  }
  return undefined;
}
