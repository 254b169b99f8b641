import { UpgradeError } from "../lib/errors";

// Automation API calls, and their failures for people: the engine's own error lines without the
// CLI's framing, a wrong passphrase as bad input, a workflow provider's refusal as a refusal.

/**
 * Runs one Automation API call and turns its failure into an error for people. A wrong or missing
 * passphrase is bad input (exit 2), with the hint the operator needs.
 */
export async function pulumiCall<T>(what: string, call: () => Promise<T>, hint?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const why = pulumiErrors(err);
    if (/passphrase/i.test(why)) {
      throw new UpgradeError({ what, why, hint: "check PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) for this stack", exitCode: 2, permanent: true, cause: err });
    }
    // A workflow provider's safety refusal (its message starts with "refused:") keeps exit code 3.
    const refusedByProvider = /(^|; )refused: /.test(why);
    throw new UpgradeError({ what, why, hint, cause: err, ...(refusedByProvider ? { exitCode: 3, permanent: true } : {}) });
  }
}

export function firstErrorLine(message: string): string {
  return message.split("\n").map((l) => l.trim()).find((l) => /^error:/i.test(l))?.replace(/^error:\s*/i, "") ?? message.split("\n")[0] ?? message;
}

/**
 * The engine's own error lines from a failed preview/up, without the CLI's framing. A program
 * that threw ("failed with an unhandled exception:") is followed by its exception's message,
 * indented on the next lines: that message is what the operator needs (not its stack trace).
 */
export function pulumiErrors(err: unknown): string {
  const text = String((err as { stderr?: string }).stderr ?? "") + "\n" + String((err as Error).message ?? err);
  const all = text.split("\n");
  const found: string[] = [];
  all.forEach((raw, i) => {
    const line = raw.trim();
    if (!/^error:/.test(line) || /^error:\s*(update|preview) failed$/.test(line)) return;
    let message = line.replace(/^error:\s*/, "");
    // The detail a framing line announces, on the lines after it: a thrown exception's message,
    // or a provider's errors ("1 error occurred:" then "* updating urn:…: <message>").
    if (/(unhandled exception|errors? occurred):?$/.test(message)) {
      const detail: string[] = [];
      for (const next of all.slice(i + 1)) {
        const t = next.trim();
        if (!t || /^at /.test(t) || /^error:/.test(t)) break;
        const cleaned = t
          .replace(/^\*\s*/, "")
          .replace(/^(creating|updating|deleting|reading) urn:\S+:\s+/, "")
          .replace(/^\d+ errors? occurred:?\s*/, "")
          .replace(/^(Error|ConfigError):\s*/, "");
        if (cleaned) detail.push(cleaned);
      }
      if (detail.length > 0) message = /unhandled/.test(message) ? `the program failed: ${detail.join(" ")}` : detail.join(" ");
    }
    if (!found.includes(message)) found.push(message);
  });
  return found.join("; ") || firstErrorLine(text);
}
