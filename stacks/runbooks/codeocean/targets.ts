import type { OutputMap } from "@pulumi/pulumi/automation";
import { UpgradeError } from "../../../lib/errors";
import type { CodeOceanTargets } from "../../context";

/**
 * What the runbook acts on, from the deployment's stack outputs: `ec2ServicesInstanceId` (required),
 * `workersAsgId`, `workersGpuAsgId` and any other output ending in AsgId/AsgName. A null or
 * absent worker ASG (a deployment without GPU workers) is skipped with a note, not an error.
 */
export function codeOceanTargets(outputs: OutputMap): { targets: CodeOceanTargets; notes: string[] } {
  const services = outputs.ec2ServicesInstanceId?.value;
  if (typeof services !== "string" || services === "") {
    throw new UpgradeError({
      what: "read the deployment's outputs",
      why: "the stack has no ec2ServicesInstanceId output",
      hint: "is this a Code Ocean private-cloud stack that has been deployed? Pass --runbook none for other projects",
      exitCode: 2,
      permanent: true,
    });
  }
  const notes: string[] = [];
  const asgOutputs = new Set(["workersAsgId", "workersGpuAsgId"]);
  for (const key of Object.keys(outputs)) if (readByRunbook(key) && key !== "ec2ServicesInstanceId") asgOutputs.add(key);
  const workerAsgs: CodeOceanTargets["workerAsgs"] = [];
  for (const output of [...asgOutputs].sort(byKnownFirst)) {
    const value = outputs[output]?.value;
    if (value === undefined || value === null || value === "") {
      notes.push(`${output} is ${value === undefined ? "absent" : "null"}: no such worker fleet, skipped`);
      continue;
    }
    if (typeof value !== "string") {
      throw new UpgradeError({
        what: "read the deployment's outputs",
        why: `${output} is ${JSON.stringify(value)}, not an auto scaling group name`,
        exitCode: 2,
        permanent: true,
      });
    }
    if (!workerAsgs.some((a) => a.name === value)) workerAsgs.push({ name: value, output });
  }
  if (workerAsgs.length === 0) notes.push("no worker auto scaling group in the outputs");
  return { targets: { servicesInstanceId: services, workerAsgs }, notes };
}

/** The outputs this runbook reads: the services instance and the worker ASGs. */
const readByRunbook = (key: string) => key === "ec2ServicesInstanceId" || /(AsgId|AsgName)$/.test(key);

/** Whether one of the outputs the runbook reads is a secret (so its value must be decrypted first). */
export function readsSecretOutputs(outputs: OutputMap): boolean {
  return Object.entries(outputs).some(([key, o]) => o.secret && readByRunbook(key));
}

const KNOWN = ["workersAsgId", "workersGpuAsgId"];
function byKnownFirst(a: string, b: string): number {
  const ia = KNOWN.indexOf(a);
  const ib = KNOWN.indexOf(b);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  return a.localeCompare(b);
}
