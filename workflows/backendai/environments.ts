import { UpgradeError } from "../../lib/errors";
import { matchingPython, pythonSatisfies } from "./python";
import { indexArgs, pythonVersion, shq, type Host } from "./remote";
import { packageOf, type PackageIndex } from "./settings";

/**
 * The Python environment a release runs in. Each Backend.AI line pins one Python (Requires-Python);
 * when a hop's release excludes the interpreter of a host's environment, the hop makes a new
 * environment beside it with a matching interpreter from the host's `pythons`, installs the release
 * there while the old one still runs, and switches the service to it by re-pointing the
 * environment's path (hosts[].python is `<env>/bin/python`, `<env>` a symlink to the real
 * directory; the service starts `<env>/bin/python`, so it runs the new environment from its next
 * start). The old environment is kept until the hop verified, then removed.
 */
export interface EnvironmentChange {
  host: Host;
  /** The Python the release needs and the interpreter chosen for it. */
  python: string;
  interpreter: string;
  /** `<env>`: the symlink the service runs through; its target before and after the switch. */
  link: string;
  previous: string;
  next: string;
}

const minorOf = (version: string) => version.split(".").slice(0, 2).join(".");

/** `/opt/bai/manager/venv/bin/python` → `/opt/bai/manager/venv`. */
export const envOf = (python: string) => python.replace(/\/bin\/python[0-9.]*$/, "");

/** The real directory the environment's symlink points at, or undefined when it is not a symlink. */
export async function envTarget(host: Host): Promise<string | undefined> {
  const link = envOf(host.settings.python);
  const out = await host.run(`read the environment ${link}`, `if [ -L ${shq(link)} ]; then readlink -f ${shq(link)}; fi`);
  return out.trim() || undefined;
}

/**
 * What a hop to `version` (Requires-Python `spec`) needs on `host`: nothing when the environment's
 * Python satisfies it, else an EnvironmentChange; a refusal (nothing touched) when the host has no
 * matching interpreter or the environment cannot be switched.
 */
export async function environmentFor(host: Host, hop: { from: string; to: string }, spec: string | undefined, current?: string): Promise<EnvironmentChange | undefined> {
  const running = current ?? (await pythonVersion(host));
  if (pythonSatisfies(spec, running)) return undefined;
  const pythons = host.settings.pythons ?? {};
  const python = matchingPython(spec, Object.keys(pythons));
  const what = `upgrade ${host.name} ${hop.from} → ${hop.to}`;
  if (python === undefined) throw noInterpreter(host, hop, spec!, running);
  const link = envOf(host.settings.python);
  const previous = await envTarget(host);
  if (previous === undefined) {
    throw new UpgradeError({
      what,
      why: `${packageOf(host.settings.component)} ${hop.to} needs Python ${spec} (the environment runs ${running}), and ${link} is not a symlink, so the service cannot be switched to a new environment`,
      hint: `make it one (mv ${link} ${link}-py${running.split(".").slice(0, 2).join(".")} && ln -s ${link}-py${running.split(".").slice(0, 2).join(".")} ${link}), then run the upgrade again`,
      exitCode: 3,
      permanent: true,
    });
  }
  const interpreter = pythons[python]!;
  const actual = await host
    .run(`run ${interpreter}`, `${shq(interpreter)} -c 'import platform, venv; print(platform.python_version())'`)
    .then((out) => out.trim(), (err: unknown) => (err instanceof UpgradeError ? err.why : String(err)));
  if (!/^\d+\.\d+/.test(actual) || minorOf(actual) !== python) {
    throw new UpgradeError({
      what,
      why: `hosts[].pythons names ${interpreter} for Python ${python}, but it ${/^\d+\.\d+/.test(actual) ? `is Python ${actual}` : `does not run (${actual})`}`,
      hint: `point pythons["${python}"] at a Python ${python} interpreter with the venv module`,
      exitCode: 3,
      permanent: true,
    });
  }
  return { host, python, interpreter, link, previous, next: `${link}-py${python}` };
}

export function noInterpreter(host: { name: string }, hop: { from: string; to: string }, spec: string, running?: string): UpgradeError {
  return new UpgradeError({
    what: `upgrade ${host.name} ${hop.from} → ${hop.to}`,
    why: `backend.ai ${hop.to} needs Python ${spec}${running ? `, its environment runs ${running}` : ""}, and the host's \`pythons\` setting names no interpreter that matches`,
    hint: `install a matching Python on the host and name it in hosts[].pythons, e.g. { "${spec.match(/>=\s*(3\.\d+)/)?.[1] ?? "3.12"}": "/usr/bin/python${spec.match(/>=\s*(3\.\d+)/)?.[1] ?? "3.12"}" }`,
    exitCode: 3,
    permanent: true,
  });
}

/** Makes the new environment (if it is not there yet) and installs the release into it; the service still runs the old one. */
export async function prepareEnvironment(change: EnvironmentChange, version: string, index: PackageIndex | undefined): Promise<void> {
  const { host, interpreter, next } = change;
  const python = `${next}/bin/python`;
  await host.run(`create the Python ${change.python} environment ${next}`, `[ -x ${shq(python)} ] || ${shq(interpreter)} -m venv ${shq(next)}`);
  const spec = `${packageOf(host.settings.component)}==${version}`;
  await host.run(`pip install ${spec} into ${next}`, [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", ...indexArgs(index), spec].map(shq).join(" "));
}

/** Points the service's environment at `target` (atomically: a new symlink renamed over the old). */
export async function switchEnvironment(host: Host, link: string, target: string): Promise<void> {
  await host.run(`switch ${link} to ${target}`, `ln -sfn ${shq(target)} ${shq(link)}.switch && mv -Tf ${shq(link)}.switch ${shq(link)}`);
}

export async function removeEnvironment(host: Host, dir: string): Promise<void> {
  const link = envOf(host.settings.python);
  // Never the environment the service runs.
  await host.run(`remove the old environment ${dir}`, `if [ "$(readlink -f ${shq(link)})" != "$(readlink -f ${shq(dir)})" ]; then rm -rf ${shq(dir)}; fi`);
}

/**
 * Whether `backend.ai-<component>==<version>` resolves from the index for Python `python`, before
 * anything stops: `pip download --no-deps --python-version`, which applies Requires-Python and
 * yanked status as an install would. The error carries pip's own words.
 */
export async function resolvesFor(host: Host, version: string, python: string, index: PackageIndex | undefined): Promise<void> {
  const spec = `${packageOf(host.settings.component)}==${version}`;
  const pip = [host.settings.python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps", "--python-version", python, ...indexArgs(index), "--dest", "$d", spec];
  const command = `d="$(mktemp -d)" && trap 'rm -rf "$d"' EXIT && ${pip.map((a) => (a === "$d" ? '"$d"' : shq(a))).join(" ")}`;
  try {
    await host.run(`resolve ${spec} for Python ${python}`, command);
  } catch (err) {
    throw new UpgradeError({
      what: `check that ${spec} installs on ${host.name} (Python ${python})`,
      why: err instanceof UpgradeError ? err.why : String(err),
      hint: "the path cannot be installed from this index: nothing was stopped; check the index (packageIndex) or choose another target",
      exitCode: 3,
      permanent: true,
      cause: err,
    });
  }
}
