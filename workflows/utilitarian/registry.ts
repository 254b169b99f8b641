import { UpgradeError } from "../../lib/errors";
import { describeProbe, probeHttp } from "../../lib/http";
import { bareVersion } from "./settings";

/**
 * The image tag of a release as the registry has it: `2.0.0` or `v2.0.0` (the vendor's docs write
 * `vx.x.x`). The tags are listed with the distribution API (`GET /v2/<name>/tags/list`, an
 * anonymous bearer token where the registry asks for one, as quay.io does for public reads);
 * where both forms exist, the form the deployment already uses wins.
 */
export interface TagChoice {
  tag: string;
  /** How it was chosen, for the step's note. */
  how: string;
}

/** The tag for `version` (pure): `listed` undefined means the registry could not be asked. */
export function chooseTag(version: string, deploymentTag: string, listed: string[] | undefined, repository: string): TagChoice {
  const bare = bareVersion(version);
  const preferred = deploymentTag.startsWith("v") ? `v${bare}` : bare;
  const other = preferred === bare ? `v${bare}` : bare;
  if (listed === undefined) return { tag: preferred, how: `the form the deployment uses (${deploymentTag}); the registry's tags were not listed` };
  if (listed.includes(preferred)) return { tag: preferred, how: `the registry has ${preferred}${listed.includes(other) ? ` (and ${other}; the deployment uses ${deploymentTag})` : ""}` };
  if (listed.includes(other)) return { tag: other, how: `the registry has ${other}, not ${preferred}` };
  const releases = listed.filter((t) => /^v?\d+\.\d+\.\d+$/.test(t)).slice(-8);
  throw new UpgradeError({
    what: `find release ${bare} of ${repository}`,
    why: `the registry has no tag ${bare} or v${bare} (its releases: ${releases.join(", ") || "none"})`,
    hint: `check the version setting against the releases of ${repository}; nothing was stopped`,
    permanent: true,
  });
}

/** The registry API's base URL for a repository such as quay.io/pwit/utilitarian. */
export function registryOf(repository: string, configured: string | false | undefined): { url: string; name: string } | undefined {
  if (configured === false) return undefined;
  const [first, ...rest] = repository.split("/");
  const hasHost = rest.length > 0 && /[.:]/.test(first!);
  const name = hasHost ? rest.join("/") : repository;
  if (configured) return { url: configured.replace(/\/+$/, ""), name };
  return hasHost ? { url: `https://${first}`, name } : undefined;
}

/** The repository's tags, or why they could not be listed. */
export async function listTags(registry: { url: string; name: string }, timeoutMs = 10_000): Promise<{ tags: string[] } | { error: string }> {
  const url = `${registry.url}/v2/${registry.name}/tags/list?n=10000`;
  let answer = await probeHttp(url, { timeoutMs });
  const challenge = String(answer.headers?.["www-authenticate"] ?? "");
  if (answer.status === 401 && /^Bearer /i.test(challenge)) {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!params.realm) return { error: `${url}: 401 with no token realm` };
    const query = new URLSearchParams({ ...(params.service ? { service: params.service } : {}), scope: params.scope ?? `repository:${registry.name}:pull` });
    const tokenAnswer = await probeHttp(`${params.realm}?${query}`, { timeoutMs });
    const token = (() => {
      try {
        const body = JSON.parse(tokenAnswer.body) as { token?: string; access_token?: string };
        return body.token ?? body.access_token;
      } catch {
        return undefined;
      }
    })();
    if (!token) return { error: `no anonymous token from ${params.realm}: ${describeProbe(tokenAnswer)}` };
    answer = await probeHttp(url, { timeoutMs, headers: { authorization: `Bearer ${token}` } });
  }
  if (answer.error || answer.status !== 200) return { error: describeProbe(answer) };
  try {
    const body = JSON.parse(answer.body) as { tags?: string[] | null };
    return { tags: body.tags ?? [] };
  } catch {
    return { error: `${url}: not a tag list` };
  }
}
