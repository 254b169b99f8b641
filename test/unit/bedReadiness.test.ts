import * as net from "node:net";
import * as fs from "node:fs";
import { commandProbe, freePort, sshBannerProbe, startGuarded, waitUntilReady } from "../sandbox/processes";

// The bed waits for a server's own readiness, never for an open port alone (issue 20: PostgreSQL
// listens before it accepts connections). These cases hold the waiter itself to that.
describe("waitUntilReady", () => {
  const sleeper = () => startGuarded({ name: "sleeper", command: "sleep", args: ["30"] });

  it("returns once the probe says ready, not before", async () => {
    const proc = sleeper();
    let calls = 0;
    await waitUntilReady(proc, async () => (++calls >= 3 ? true : `not yet (${calls})`), { intervalMs: 10 });
    expect(calls).toBe(3);
    expect(proc.exited()).toBe(false);
    await proc.stop();
  });

  it("fails at its deadline with what the probe last saw, and stops the server", async () => {
    const proc = sleeper();
    await expect(waitUntilReady(proc, async () => "the database system is starting up", { timeoutMs: 300, intervalMs: 50 })).rejects.toThrow(
      /sleeper was not ready within 0.3s \(last seen: the database system is starting up\)/,
    );
    expect(proc.exited()).toBe(true);
  });

  it("fails at once when the server exits while starting, with its output", async () => {
    const proc = startGuarded({ name: "crasher", command: "bash", args: ["-c", "echo 'FATAL: bad config' >&2; exit 1"] });
    await expect(waitUntilReady(proc, async () => "not yet", { timeoutMs: 10_000, intervalMs: 20 })).rejects.toThrow(/crasher exited while starting:\n.*FATAL: bad config/s);
  });

  it("commandProbe is ready on exit 0 and otherwise reports the command's last line", async () => {
    expect(await commandProbe("true", [])()).toBe(true);
    expect(await commandProbe("bash", ["-c", "echo 'no response' >&2; exit 2"])()).toBe("bash: no response");
  });

  it("sshBannerProbe wants an SSH identification string, not just an open port", async () => {
    const server = net.createServer((socket) => socket.end("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"));
    const silent = net.createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      expect(await sshBannerProbe(port)()).toBe(true);
      expect(await sshBannerProbe(silentPort)()).toMatch(/sent "HTTP\/1.1 400/);
    } finally {
      server.close();
      silent.close();
    }
  });
});

test("freePort hands out bindable ports below the kernel's ephemeral range, never the same twice", async () => {
  const ephemeral = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  const ports = await Promise.all(Array.from({ length: 40 }, () => freePort()));
  expect(new Set(ports).size).toBe(40);
  for (const port of ports) {
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(ephemeral);
  }
});
