import * as path from "node:path";


/**
 * What every workflow's dynamic provider shares: progress lines through the engine, errors on
 * one line with their hint, partial failures that keep the last completed state, canonical JSON.
 *
 * Progress of a dynamic provider's work, shown by the Pulumi engine as `info:` diagnostics (and so
 * in `pulumi up`, in the Automation API's event stream, and in our driver's output).
 *
 * Shared by every workflow provider. A dynamic provider runs in its own process, started by the
 * engine with the engine's address as
 * its argument; the SDK's `pulumi.log` does not know that address there, so we open the engine's
 * Log RPC ourselves. Without an engine (unit tests), lines go to stderr.
 */
export type Progress = (message: string) => Promise<void>;

interface EngineLog {
  log(message: string, severity: "info" | "warning"): Promise<void>;
}

let engineLog: EngineLog | null | undefined;

function connectEngine(): EngineLog | null {
  const address = process.argv[2];
  if (!address || !/^[\w.-]+:\d+$/.test(address)) return null;
  try {
    const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const grpc = require(require.resolve("@grpc/grpc-js", { paths: [sdkDir] }));
    const services = require(path.join(sdkDir, "proto", "engine_grpc_pb.js"));
    const messages = require(path.join(sdkDir, "proto", "engine_pb.js"));
    const client = new services.EngineClient(address, grpc.credentials.createInsecure());
    return {
      log: (message, severity) =>
        new Promise<void>((resolve) => {
          const request = new messages.LogRequest();
          request.setSeverity(severity === "info" ? messages.LogSeverity.INFO : messages.LogSeverity.WARNING);
          request.setMessage(message);
          client.log(request, () => resolve());
        }),
    };
  } catch {
    return null;
  }
}

/** Reports one line of progress; never throws (progress must not fail the work). */
export function createProgress(prefix: string): { info: Progress; warn: Progress } {
  // One line after the other, also when a caller does not wait for the previous one.
  let queue: Promise<void> = Promise.resolve();
  const send = (message: string, severity: "info" | "warning") =>
    (queue = queue.then(async () => {
      if (engineLog === undefined) engineLog = connectEngine();
      const line = `${prefix}: ${message}`;
      if (engineLog) await engineLog.log(line, severity).catch(() => undefined);
      else process.stderr.write(`${severity}: ${line}\n`);
    }));
  return { info: (m) => send(m, "info"), warn: (m) => send(m, "warning") };
}


