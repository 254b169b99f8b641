import { badInput, ExitCode } from "../../lib/errors";

export interface BackendAiPathFlags {
  from: string;
  to: string;
  direct?: boolean;
  catalog?: string;
  json?: boolean;
}

/** `backendai path`: the upgrade path between two Backend.AI releases over the release catalog. */
export async function runBackendAiPath(flags: BackendAiPathFlags): Promise<void> {
  const { checkHop, parseVersion, planPath } = await import("../../workflows/backendai/versions");
  const { catalogForCli } = await import("../../workflows/backendai/catalog");
  for (const [flag, value] of [["--from", flags.from], ["--to", flags.to]] as const) {
    const parsed = parseVersion(value);
    if ("error" in parsed && !/pre-release/.test(parsed.error)) {
      const error = badInput(`read ${flag}`, parsed.error, "use a release number such as 24.03.2");
      if (!flags.json) throw error;
      process.stdout.write(JSON.stringify({ allowed: false, reason: error.message, from: flags.from, to: flags.to }) + "\n");
      process.exitCode = ExitCode.BadInput;
      return;
    }
  }
  let catalog;
  try {
    catalog = await catalogForCli(flags.catalog, (warning) => process.stderr.write(`warning: ${warning}\n`));
  } catch (err) {
    throw badInput("read --catalog", (err as Error).message, "pass a package index URL, \"bundled\", or a JSON file {\"releases\": [{\"version\": \"24.03.2\", \"date\": \"2024-04-17\"}]}");
  }
  if (flags.direct) {
    const hop = checkHop(catalog, flags.from, flags.to);
    process.stdout.write(flags.json ? JSON.stringify(hop) + "\n" : `${flags.from} → ${flags.to}: ${hop.allowed ? "allowed" : "refused"}: ${hop.reason}\n`);
    if (!hop.allowed) process.exitCode = ExitCode.Refused;
    return;
  }
  const result = planPath(catalog, flags.from, flags.to);
  if (flags.json) {
    process.stdout.write(JSON.stringify(result) + "\n");
  } else if (result.allowed) {
    process.stdout.write(`${[result.from, ...result.path].join(" → ")}\n${result.notes.map((n) => `  note: ${n}\n`).join("")}`);
  } else {
    process.stdout.write(`refused: ${result.reason}\n${result.nearest ? `  nearest allowed: ${[result.from, ...result.nearest.path].join(" → ")}\n` : ""}`);
  }
  if (!result.allowed) process.exitCode = ExitCode.Refused;
}
