import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli, SANDBOX_CLI } from "../sandbox/cli";

// `npm run sandbox -- up`, `source` the env file, `npm run sandbox -- down`: nothing it started survives.
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("sandbox up writes a sourceable env file; down stops every process it started", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-sandbox-cli-"));
  try {
    const up = await runCli(["up", "--dir", dir], {}, { script: SANDBOX_CLI });
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`source ${path.join(dir, "env")}`);
    const status = JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8")) as { processes: Array<{ name: string; pid: number }> };
    const pids = status.processes.map((p) => p.pid);
    expect(status.processes.map((p) => p.name)).toEqual(["moto server", "sshd", "fault proxy (in this daemon)"]);
    expect(pids.every(alive)).toBe(true);

    // a shell that sources the env file reaches every peer
    const probe = execFileSync("bash", ["-c", `
      source ${path.join(dir, "env")}
      curl -s -o /dev/null -w '%{http_code}\\n' "$AWS_ENDPOINT_URL/__fault-proxy/calls"
      ssh -i "$UO_SSH_KEY" -o UserKnownHostsFile="$UO_SSH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes -p "$UO_SSH_PORT" "$UO_SSH_USER@$UO_SSH_HOST" echo ssh-ok
      pulumi version
      echo "$PULUMI_BACKEND_URL"`], { encoding: "utf8" }).trim().split("\n");
    expect(probe.slice(0, 3)).toEqual(["200", "ssh-ok", expect.stringMatching(/^v3\./)]);
    expect(probe[3]).toMatch(/^file:\/\//);

    const st = await runCli(["status", "--dir", dir], {}, { script: SANDBOX_CLI });
    expect([st.code, st.stdout]).toEqual([0, expect.stringMatching(/sshd: pid \d+ running/)]);

    const down = await runCli(["down", "--dir", dir], {}, { script: SANDBOX_CLI });
    expect(down.code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    const leftovers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(dir));
    expect(leftovers).toEqual([]);
    expect((await runCli(["status", "--dir", dir], {}, { script: SANDBOX_CLI })).code).toBe(1);
  } finally {
    await runCli(["down", "--dir", dir], {}, { script: SANDBOX_CLI });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("sandbox up --with backendai: an adopted cluster to upgrade by hand, by editing the stack's config file", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "uo-sandbox-cli-"));
  try {
    const up = await runCli(["up", "--dir", dir, "--with", "backendai"], {}, { script: SANDBOX_CLI });
    expect([up.code, up.stderr]).toEqual([0, ""]);
    const configFile = /set its version in (\S+)/.exec(up.stdout)?.[1];
    const command = /^\s*(npm run upgrade -- --stack backendai --cwd \S+)$/m.exec(up.stdout)?.[1];
    expect(configFile && fs.existsSync(configFile)).toBe(true);
    expect(command).toBeDefined();
    const status = JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8")) as { processes: Array<{ name: string; pid: number }> };
    const pids = status.processes.map((p) => p.pid);
    expect(status.processes.map((p) => p.name)).toContain("postgres");

    // the operator's edit, then a dry run of the printed command shows the planned hops
    fs.writeFileSync(configFile!, fs.readFileSync(configFile!, "utf8").replace(/version: 23\.09\.8/, "version: 24.03.2"));
    const cwd = command!.split(" ").at(-1)!;
    const dry = execFileSync("bash", ["-c", `source ${path.join(dir, "env")} && node ${path.join(__dirname, "..", "..", "dist", "stacks", "cli.js")} upgrade --stack backendai --cwd ${cwd} --dry-run`], { encoding: "utf8" });
    expect(dry).toMatch(/\[confirm-plan\] ~ \S+BackendAiCluster cluster \(.*plannedPath: \(none\) → 23\.09\.10, 24\.03\.0, 24\.03\.2/);

    const down = await runCli(["down", "--dir", dir], {}, { script: SANDBOX_CLI });
    expect(down.code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    const leftovers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(dir));
    expect(leftovers).toEqual([]);
  } finally {
    await runCli(["down", "--dir", dir], {}, { script: SANDBOX_CLI });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
