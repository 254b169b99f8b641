import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./fixtures";
import { dockerPingProbe, freePort, httpProbe, startGuarded, waitUntilReady } from "./processes";
import { bedRegistryStorage, type Layout, type TagForm } from "./utilitarianLayouts";

const FIXTURES = path.join(REPO_ROOT, "test", "fixtures", "utilitarian");

/**
 * Where the bed's Utilitarian deployment (test/sandbox/utilitarian.ts) gets its containers from:
 * the fixture images, served by their literal `quay.io/pwit/...` names from a local registry
 * (Debian's docker-registry on loopback, a registries.conf mirror), and a real engine (rootful
 * podman with runc, reached through `podman system service` on a unix socket: DOCKER_HOST).
 */
export interface UtilitarianEngine {
  /** The registry's host:port. */
  readonly registry: string;
  /** DOCKER_HOST of the podman service. */
  readonly dockerHost: string;
  /** The bed's own copy of the registry storage (vendor layout), whose Utilitarian tags can change form. */
  readonly bedStorage?: ReturnType<typeof bedRegistryStorage>;
}

/** Starts the registry and the podman service; their stops are pushed onto `stops` (run in reverse). */
export async function startUtilitarianEngine(options: { root: string; layout: Layout; tagForm?: TagForm; stops: Array<() => Promise<void>> }): Promise<UtilitarianEngine> {
  const { root, stops } = options;
  // Fixture images, cached by their inputs (cold: debootstrap, PyPI, podman build).
  const built = spawnSync("bash", [path.join(FIXTURES, "build-images.sh")], { encoding: "utf8", timeout: 20 * 60_000 });
  if (built.status !== 0) throw new Error(`building the fixture images failed:\n${built.stderr}`);
  const cachedStorage = built.stdout.trim().split("\n").at(-1)!;
  fs.rmSync(path.join(root, "registry"), { recursive: true, force: true });
  const bedStorage = options.layout === "vendor" ? bedRegistryStorage(cachedStorage, path.join(root, "registry")) : undefined;
  bedStorage?.setTagForm(options.tagForm ?? "");
  const registryStorage = bedStorage?.storage ?? cachedStorage;

  const registryPort = await freePort();
  const registry = `127.0.0.1:${registryPort}`;
  const registryProc = startGuarded({ name: "docker-registry", command: "bash", args: [path.join(FIXTURES, "registry.sh"), registryStorage, String(registryPort)] });
  stops.push(() => registryProc.stop());
  // The distribution API's base endpoint answers 200 once the registry serves.
  await waitUntilReady(registryProc, httpProbe(`http://${registry}/v2/`));

  const podmanDir = path.join(root, "podman");
  const confEnv = Object.fromEntries(
    execFileSync("bash", [path.join(FIXTURES, "podman-conf.sh"), podmanDir, registry], { encoding: "utf8" })
      .trim().split("\n").map((line) => line.split("=", 2) as [string, string]),
  );
  const podmanEnv = { ...process.env, ...confEnv };
  const socket = path.join(podmanDir, "podman.sock");
  const dockerHost = `unix://${socket}`;
  const service = startGuarded({ name: "podman", command: "podman", args: ["system", "service", "--time=0", dockerHost], env: podmanEnv });
  stops.push(async () => {
    await service.stop();
    // Containers live under conmon, outside the service: remove them, then the bed's storage.
    spawnSync("podman", ["rm", "--all", "--force", "--time", "2"], { env: podmanEnv, stdio: "ignore", timeout: 60_000 });
    spawnSync("podman", ["system", "reset", "--force"], { env: podmanEnv, stdio: "ignore", timeout: 60_000 });
  });
  await waitUntilReady(service, dockerPingProbe(socket));
  return { registry, dockerHost, bedStorage };
}
