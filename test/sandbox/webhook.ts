import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** A webhook receiver on loopback: answers every POST with `status`, or never answers ("hang"). */
export interface Webhook {
  readonly url: string;
  /** Parsed JSON bodies received, oldest first. */
  readonly received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startWebhook(behaviour: { status: number } | "hang", pathWithToken = "/services/T000/B000/secret-token-abc"): Promise<Webhook> {
  const received: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        received.push(JSON.parse(Buffer.concat(chunks).toString()));
      } catch {
        received.push({ unparseable: Buffer.concat(chunks).toString() });
      }
      if (behaviour === "hang") return; // never answers; the client's deadline must end it
      res.writeHead(behaviour.status, { "content-type": "text/plain" }).end(behaviour.status < 300 ? "ok" : "error");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${pathWithToken}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
