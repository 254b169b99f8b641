/**
 * The workflow's own bookkeeping tags on what it launches (never required on the operator's
 * instances: blue is found by the operator's selectors), and EC2's tag on an ASG's instances.
 */
export const TAG = { fleet: "openedx:fleet", release: "openedx:release", role: "openedx:role" } as const;
/** EC2's own tag on an instance an Auto Scaling group launched. */
export const ASG_TAG = "aws:autoscaling:groupName";
