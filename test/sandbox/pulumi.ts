import * as fs from "node:fs";
import * as path from "node:path";
import { findPulumi, type PulumiInstall } from "../../lib/toolchain";

/** The real Pulumi engine with a file backend of its own: nothing outside `dir` is touched. */
export interface PulumiBed {
  readonly install: PulumiInstall;
  readonly backendUrl: string;
  /** The test passphrase of the passphrase secrets provider. */
  readonly passphrase: string;
  /** What a Pulumi command of this bed needs in its environment. */
  readonly env: Record<string, string>;
}

export const SANDBOX_PASSPHRASE = "sandbox-passphrase-not-a-secret";

export function pulumiBed(dir: string): PulumiBed {
  const install = findPulumi();
  const state = path.join(dir, "state");
  const home = path.join(dir, "home");
  fs.mkdirSync(state, { recursive: true });
  fs.mkdirSync(home, { recursive: true });
  const backendUrl = `file://${state}`;
  return {
    install,
    backendUrl,
    passphrase: SANDBOX_PASSPHRASE,
    env: {
      PULUMI_BACKEND_URL: backendUrl,
      PULUMI_CONFIG_PASSPHRASE: SANDBOX_PASSPHRASE,
      PULUMI_HOME: home,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      PATH: `${install.binDir}${path.delimiter}${process.env.PATH ?? ""}`,
    },
  };
}
