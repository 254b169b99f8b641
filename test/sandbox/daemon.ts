import * as fs from "node:fs";
import * as path from "node:path";
import { startCodeOceanScenario, type CodeOceanScenario } from "./codeocean";
import { envFileText, startSandbox } from "./index";

/**
 * The background process behind `npm run sandbox -- up`: starts the bed, writes the env file and
 * status.json, and holds everything until SIGTERM/SIGINT (`sandbox down`), then stops it all.
 * Its servers watch this process: if it is killed outright, they stop by themselves.
 */
export interface SandboxStatus {
  state: "starting" | "ready" | "failed" | "stopped";
  pid: number;
  startedAt: string;
  envFile: string;
  processes: Array<{ name: string; pid: number }>;
  error?: string;
  /** With --with codeocean: how to run the upgrade by hand. */
  hint?: string;
}

async function main(dir: string, withCodeOcean: boolean): Promise<void> {
  const statusFile = path.join(dir, "status.json");
  const envFile = path.join(dir, "env");
  const status: SandboxStatus = { state: "starting", pid: process.pid, startedAt: new Date().toISOString(), envFile, processes: [] };
  const write = () => fs.writeFileSync(statusFile, JSON.stringify(status, null, 2));
  write();
  let bed;
  let scenario: CodeOceanScenario | undefined;
  const extraEnv: Record<string, string> = { UO_SANDBOX_DIR: dir };
  try {
    bed = await startSandbox({ dir: path.join(dir, "bed") });
  } catch (err) {
    Object.assign(status, { state: "failed", error: (err as Error).message });
    write();
    process.exit(1);
  }
  if (withCodeOcean) {
    try {
      const deploymentDir = path.join(dir, "codeocean-deployment");
      fs.rmSync(deploymentDir, { recursive: true, force: true });
      scenario = await startCodeOceanScenario(bed, { dir: deploymentDir });
      const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`);
      status.hint = [
        `The Code Ocean deployment is at release 1.0.0 in ${deploymentDir} (stack prod), with computations running.`,
        `Upgrade it to 2.0.0 by hand:`,
        `  source ${envFile}`,
        `  npm run upgrade -- ${[...scenario.upgradeArgs, "--release", "2.0.0"].map(quote).join(" ")}`,
      ].join("\n");
      Object.assign(extraEnv, { UO_SERVICES_PORT: String(scenario.services.port), UO_DEPLOYMENT_DIR: deploymentDir });
    } catch (err) {
      await bed.stop();
      Object.assign(status, { state: "failed", error: `deploying the Code Ocean fixture: ${(err as Error).message}` });
      write();
      process.exit(1);
    }
  }
  fs.writeFileSync(envFile, envFileText({ ...bed.env, ...extraEnv }), { mode: 0o600 });
  status.processes = [bed.moto?.process, bed.sshd?.process]
    .filter((p) => p !== undefined)
    .map((p) => ({ name: p.name, pid: p.pid }));
  status.processes.push({ name: "fault proxy (in this daemon)", pid: process.pid });
  status.state = "ready";
  write();
  const shutdown = async () => {
    await scenario?.stop();
    await bed.stop();
    status.state = "stopped";
    write();
    fs.rmSync(envFile, { force: true });
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  setInterval(() => undefined, 1 << 30); // keep the event loop alive
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: daemon <state dir> [--with-codeocean]");
    process.exit(2);
  }
  void main(dir, process.argv.includes("--with-codeocean"));
}
