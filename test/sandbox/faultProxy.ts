import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { delay } from "./processes";

/**
 * A small HTTP proxy in front of moto that injects faults into chosen AWS actions, so the SDK's
 * own retry logic and our error handling meet the failures real AWS produces. Errors are
 * protocol-correct: the query protocol (Auto Scaling), EC2's variant of it, and JSON 1.0 with
 * query compatibility (CloudWatch), so the SDK parses the error code it would get from AWS.
 */
export type FaultKind = "throttle" | "server-error" | "delay" | "drop";

export interface Fault {
  /** The API action, e.g. "SetInstanceProtection" or "GetMetricData". */
  action: string;
  kind: FaultKind;
  /** How many of the next matching calls get the fault (default 1). */
  times?: number;
  /** For "delay": milliseconds before the call is forwarded. */
  delayMs?: number;
}

export interface ProxiedCall {
  service: string;
  action: string;
  status: number | "dropped";
  fault?: FaultKind;
  /** Form parameters of query-protocol calls (empty for JSON protocols). */
  params: Record<string, string>;
}

/** A call as an interceptor sees it (the body already read). */
export interface InterceptedCall {
  service: string;
  action: string;
  params: Record<string, string>;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface UpstreamReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A compensation for a place where moto is not AWS: it may answer instead of moto, or forward and
 * rewrite moto's answer; `undefined` lets the next one (or plain forwarding) handle the call.
 * Compensations may delay or fail a call, never report a success moto did not record.
 */
export type Interceptor = (call: InterceptedCall, forward: () => Promise<UpstreamReply>) => Promise<UpstreamReply | undefined>;

export interface FaultProxy {
  readonly url: string;
  /**
   * moto reports every Route 53 change INSYNC at once; AWS takes a while. With n > 0 the first n
   * GetChange polls of each change answer PENDING (never INSYNC before moto has recorded it).
   */
  route53PendingPolls(n: number): void;
  inject(fault: Fault): void;
  /** Adds a compensation (see Interceptor); returns its removal. */
  intercept(interceptor: Interceptor): () => void;
  clearFaults(): void;
  /** Every call seen since the last clearCalls(), oldest first. */
  calls(): ProxiedCall[];
  clearCalls(): void;
  close(): Promise<void>;
}

/** The control endpoint, for processes that share the proxy (sandbox daemon, CLI under test). */
export const CONTROL_PATH = "/__fault-proxy";

interface PendingFault extends Fault {
  remaining: number;
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const pending: PendingFault[] = [];
  const interceptors: Interceptor[] = [];
  let seen: ProxiedCall[] = [];
  const conditionalWrites = new Map<string, Promise<void>>();

  const inject = (fault: Fault) => pending.push({ ...fault, remaining: fault.times ?? 1 });
  let pendingPolls = 0;
  const pollsSeen = new Map<string, number>();

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.url?.startsWith(CONTROL_PATH)) return control(req, res, body);

    const { service, action, params } = identify(req, body);
    if (service === "s3" && (req.headers["if-none-match"] || req.headers["if-match"]) && (req.method === "PUT" || req.method === "DELETE")) {
      // moto checks S3's write preconditions (If-None-Match: *, If-Match) and then writes, in two
      // steps that concurrent requests can interleave; S3 makes them atomic. The proxy runs the
      // conditional writes to one key one at a time, so moto's own check decides each of them.
      const key = (req.url ?? "").split("?")[0]!;
      const previous = conditionalWrites.get(key) ?? Promise.resolve();
      let done!: () => void;
      const mine = new Promise<void>((resolve) => (done = resolve));
      conditionalWrites.set(key, previous.then(() => mine));
      await previous;
      res.on("close", done);
    }
    if (service === "s3" && deniedAccessKey(req.headers)) {
      // moto accepts any credentials; S3 refuses unknown ones. Requests signed with an access key
      // id starting with "denied" get S3's own refusal, for the bad-credentials tests.
      seen.push({ service, action, status: 403, params });
      res.writeHead(403, { "content-type": "application/xml" }).end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><RequestId>${randomUUID()}</RequestId></Error>`,
      );
      return;
    }
    const fault = takeFault(pending, action);
    const record = (status: number | "dropped") => seen.push({ service, action, status, fault: fault?.kind, params });

    if (fault?.kind === "drop") {
      record("dropped");
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "throttle" || fault?.kind === "server-error") {
      const reply = errorReply(service, fault.kind, req.headers);
      record(reply.status);
      res.writeHead(reply.status, reply.headers).end(reply.body);
      return;
    }
    if (fault?.kind === "delay") await delay(fault.delayMs ?? 1000);
    // moto answers every change with the same change id: a new change starts the count again.
    if (action === "ChangeResourceRecordSets") pollsSeen.clear();

    if (interceptors.length > 0) {
      const call: InterceptedCall = { service, action, params, method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body };
      const forward = () => forwardBuffered(target, req, body);
      try {
        for (const interceptor of interceptors) {
          const reply = await interceptor(call, forward);
          if (reply) {
            record(reply.status);
            const headers = { ...reply.headers, "content-length": String(reply.body.length) };
            delete (headers as Record<string, string>)["transfer-encoding"];
            res.writeHead(reply.status, headers).end(reply.body);
            return;
          }
        }
      } catch (err) {
        record(502);
        res.writeHead(502).end(String(err));
        return;
      }
    }

    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        record(upRes.statusCode ?? 0);
        if (action === "GetChange" && pendingPolls > 0 && upRes.statusCode === 200) {
          const key = req.url ?? "";
          const n = (pollsSeen.get(key) ?? 0) + 1;
          pollsSeen.set(key, n);
          if (n <= pendingPolls) {
            void readBody(upRes).then((b) => {
              const text = b.toString().replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>");
              const headers = { ...upRes.headers, "content-length": String(Buffer.byteLength(text)) };
              res.writeHead(200, headers).end(text);
            });
            return;
          }
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.on("error", (err) => {
      record(502);
      res.writeHead(502).end(String(err));
    });
    upstream.end(body);
  });

  function control(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const reply = (status: number, value: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
    };
    const sub = req.url!.slice(CONTROL_PATH.length);
    if (sub === "/faults" && req.method === "POST") {
      const faults = JSON.parse(body.toString() || "[]") as Fault | Fault[];
      (Array.isArray(faults) ? faults : [faults]).forEach(inject);
      return reply(200, { pending: pending.length });
    }
    if (sub === "/faults" && req.method === "DELETE") {
      pending.length = 0;
      return reply(200, { pending: 0 });
    }
    if (sub === "/calls" && req.method === "GET") return reply(200, seen);
    if (sub === "/calls" && req.method === "DELETE") {
      seen = [];
      return reply(200, {});
    }
    reply(404, { error: `unknown control path ${sub}` });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    inject,
    intercept(interceptor) {
      interceptors.push(interceptor);
      return () => void interceptors.splice(interceptors.indexOf(interceptor), 1);
    },
    route53PendingPolls: (n: number) => void (pendingPolls = n),
    clearFaults: () => void (pending.length = 0),
    calls: () => [...seen],
    clearCalls: () => void (seen = []),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function forwardBuffered(target: URL, req: http.IncomingMessage, body: Buffer): Promise<UpstreamReply> {
  return new Promise((resolve, reject) => {
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      const chunks: Buffer[] = [];
      upRes.on("data", (c: Buffer) => chunks.push(c));
      upRes.on("end", () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
        resolve({ status: upRes.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
      });
      upRes.on("error", reject);
    });
    upstream.on("error", reject);
    upstream.end(body);
  });
}

function takeFault(pending: PendingFault[], action: string): PendingFault | undefined {
  const index = pending.findIndex((f) => f.action === action);
  if (index < 0) return undefined;
  const fault = pending[index]!;
  fault.remaining -= 1;
  if (fault.remaining <= 0) pending.splice(index, 1);
  return fault;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Service from the SigV4 credential scope; action from X-Amz-Target (JSON) or the form's Action (query). */
export function identify(
  req: Pick<http.IncomingMessage, "headers"> & { method?: string; url?: string },
  body: Buffer,
): { service: string; action: string; params: Record<string, string> } {
  const auth = String(req.headers.authorization ?? "");
  const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(auth)?.[1] ?? "unknown";
  if (service === "s3") return { service, action: s3Action(req as http.IncomingMessage), params: {} };
  const target = req.headers["x-amz-target"];
  // Route 53 is REST-XML: the action is in the method and path.
  const route53 = service === "route53" ? route53Action(req.method ?? "GET", req.url ?? "") : undefined;
  if (route53) return { service, action: route53, params: {} };
  if (typeof target === "string") return { service, action: target.split(".").pop() ?? target, params: {} };
  const params = Object.fromEntries(new URLSearchParams(body.toString()));
  return { service, action: params.Action ?? "unknown", params };
}

function route53Action(method: string, url: string): string | undefined {
  const p = url.split("?")[0]!;
  if (method === "GET" && /\/change\/[^/]+$/.test(p)) return "GetChange";
  if (method === "POST" && /\/hostedzone\/[^/]+\/rrset\/?$/.test(p)) return "ChangeResourceRecordSets";
  if (method === "GET" && /\/hostedzone\/[^/]+\/rrset\/?$/.test(p)) return "ListResourceRecordSets";
  return undefined;
}

function errorReply(
  service: string,
  kind: "throttle" | "server-error",
  headers: http.IncomingHttpHeaders,
): { status: number; headers: Record<string, string>; body: string } {
  const requestId = randomUUID();
  const throttle = kind === "throttle";
  if (typeof headers["x-amz-target"] === "string") {
    const code = throttle ? "Throttling" : "InternalFailure";
    return {
      status: throttle ? 400 : 500,
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amzn-requestid": requestId,
        "x-amzn-query-error": `${code};${throttle ? "Sender" : "Receiver"}`,
      },
      body: JSON.stringify({ __type: code, message: throttle ? "Rate exceeded" : "Internal service error (injected)" }),
    };
  }
  if (service === "ec2") {
    const code = throttle ? "RequestLimitExceeded" : "InternalError";
    return {
      status: throttle ? 503 : 500,
      headers: { "content-type": "text/xml" },
      body: `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code><Message>${throttle ? "Request limit exceeded." : "An internal error has occurred (injected)."}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
    };
  }
  const code = throttle ? "Throttling" : "InternalFailure";
  return {
    status: throttle ? 400 : 500,
    headers: { "content-type": "text/xml" },
    body: `<ErrorResponse><Error><Type>${throttle ? "Sender" : "Receiver"}</Type><Code>${code}</Code><Message>${throttle ? "Rate exceeded" : "Internal failure (injected)"}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  };
}

/** S3's REST API names no action; the method and path (path-style: /bucket/key) say which. */
function s3Action(req: Pick<http.IncomingMessage, "method" | "url">): string {
  const [pathPart = "", query = ""] = (req.url ?? "").split("?");
  const hasKey = pathPart.replace(/^\//, "").includes("/") && !pathPart.endsWith("/");
  const q = new URLSearchParams(query);
  switch (req.method) {
    case "GET":
      return hasKey ? "GetObject" : q.has("list-type") ? "ListObjectsV2" : q.has("location") ? "GetBucketLocation" : "ListObjects";
    case "HEAD":
      return hasKey ? "HeadObject" : "HeadBucket";
    case "PUT":
      return hasKey ? "PutObject" : "CreateBucket";
    case "DELETE":
      return hasKey ? "DeleteObject" : "DeleteBucket";
    case "POST":
      return q.has("delete") ? "DeleteObjects" : "PostObject";
    default:
      return "unknown";
  }
}

function deniedAccessKey(headers: http.IncomingHttpHeaders): boolean {
  return /Credential=denied/.test(String(headers.authorization ?? ""));
}
