import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { providerLoadedFrom, type SshArgs } from "../../lib/dynamicProvider";

/**
 * A Backend.AI cluster's version as a Pulumi resource (runbook 3 of RUNBOOKS.md). Changing
 * `version` plans the upgrade path at preview (`plannedPath`; a forbidden path fails the preview)
 * and `up` performs it hop by hop over SSH: manager (pip, Alembic, apply-missing-revisions), then
 * every other component, then a check that every host reports the target.
 */
export interface BackendAiHostArgs {
  /** manager, agent, storage-proxy, webserver, … (exactly one manager). */
  component: pulumi.Input<string>;
  ssh: pulumi.Input<SshArgs>;
  /** The Python interpreter of the component's virtualenv. */
  python: pulumi.Input<string>;
  /** The interpreters the host has by version, e.g. { "3.12": "/usr/bin/python3.12" }: used when a release needs another Python. */
  pythons?: pulumi.Input<Record<string, string>>;
  /** The manager's alembic.ini. */
  alembicIni?: pulumi.Input<string>;
  /** Default: `sudo systemctl start|stop` and `systemctl is-active --quiet backendai-<component>`. */
  service?: pulumi.Input<{ start: pulumi.Input<string>; stop: pulumi.Input<string>; status: pulumi.Input<string> }>;
}

export interface BackendAiClusterArgs {
  /** The version every component should run, e.g. "24.03.2". */
  version: pulumi.Input<string>;
  hosts: pulumi.Input<Array<pulumi.Input<BackendAiHostArgs>>>;
  /** For air-gapped hosts: a local index or wheel directories. */
  packageIndex?: pulumi.Input<{ indexUrl?: string; findLinks?: string[]; noIndex?: boolean; trustedHost?: string }>;
  /**
   * Where the release catalog comes from: a package index URL, "bundled" (releases.json), or the
   * releases themselves. Default: the index pip uses (packageIndex.indexUrl, else PyPI); with
   * packageIndex.noIndex, the bundled catalog. A failed index read falls back to the bundled one.
   */
  catalog?: pulumi.Input<
    | string
    | { releases: Array<{ version: string; date: string; requiresPython?: string }>; skipped?: Array<{ version: string; why: string; date?: string }>; source?: string }
  >;
  /** Deadline of each remote command in seconds (default 300). */
  commandTimeoutSeconds?: pulumi.Input<number>;
}

const provider = providerLoadedFrom(path.join(__dirname, "provider"));

export class BackendAiCluster extends pulumi.dynamic.Resource {
  /** The version the whole cluster last completed (after a failed hop: the hop before it). */
  declare public readonly version: pulumi.Output<string>;
  /** The hops of the last planned version change, e.g. ["23.09.10", "24.03.0", "24.03.2"]. */
  declare public readonly plannedPath: pulumi.Output<string[]>;
  declare public readonly components: pulumi.Output<string[]>;

  constructor(name: string, args: BackendAiClusterArgs, opts?: pulumi.CustomResourceOptions) {
    const hosts = pulumi.output(args.hosts).apply((list) =>
      list.map((host) => ({ ...host, ssh: { ...host.ssh, privateKey: pulumi.secret(host.ssh.privateKey) } })),
    );
    super(provider, name, { ...args, hosts, plannedPath: undefined, components: undefined, fingerprint: undefined }, opts, "backendai", "BackendAiCluster");
  }
}
