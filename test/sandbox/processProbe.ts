/**
 * A `node --require` hook for tests and bench: when the process exits, writes to the file named
 * by $UO_PROBE_FILE what the process loaded (every module file in require.cache, every module
 * name passed to require) and its own resource usage (process.resourceUsage(): CPU time, peak RSS).
 * It loads nothing but node:fs and node:module itself.
 */
import * as fs from "node:fs";
import Module = require("node:module");

const file = process.env.UO_PROBE_FILE;
/**
 * Linux: VmHWM of this process image. getrusage's maxRSS is kept across execve, so a child forked
 * from a big parent reports the parent's size; VmHWM starts afresh with the new image.
 */
function peakRssKb(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

if (file) {
  const requested = new Set<string>();
  const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = loader._load;
  loader._load = function (request: string, ...rest: unknown[]) {
    requested.add(request);
    return original.call(this, request, ...rest);
  };
  process.on("exit", () => {
    const usage = process.resourceUsage();
    const probe = {
      modules: Object.keys(require.cache),
      requested: [...requested],
      cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
      maxRssKb: peakRssKb() ?? usage.maxRSS,
    };
    fs.writeFileSync(file, JSON.stringify(probe));
  });
}
