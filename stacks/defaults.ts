/**
 * The defaults of `UpgradeOptions`, in a module of their own: the CLI needs them to build its
 * help text, and must not load the driver (Pulumi's Automation API, the AWS SDK) to do so.
 */
export const DEFAULTS = {
  drainTimeoutMs: 30 * 60_000,
  pollIntervalMs: 15_000,
  metricPeriodSeconds: 60,
  sshUser: "ec2-user",
  sshPort: 22,
  servicesPort: 8300,
  /** Deadline of one cancel request to the services API (retried when it hangs). */
  servicesTimeoutMs: 20_000,
  /** How long the deployment must stay healthy after `up` (verify-deployment). */
  bakeTimeMs: 5 * 60_000,
  /** How long verify-deployment waits for the deployment to become healthy before the bake. */
  verifyTimeoutMs: 10 * 60_000,
};
