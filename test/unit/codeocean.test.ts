import type { OutputMap } from "@pulumi/pulumi/automation";
import { codeOceanTargets } from "../../stacks/runbooks/codeocean/targets";
import { assessAsg, describeObservations } from "../../stacks/runbooks/codeocean/waitForIdleWorkers";
import { chunk, MAX_IDS_PER_CALL } from "../../stacks/runbooks/codeocean/scaleInProtection";
import { UpgradeError } from "../../lib/errors";

const out = (values: Record<string, unknown>): OutputMap =>
  Object.fromEntries(Object.entries(values).map(([k, value]) => [k, { value, secret: false }]));

describe("codeOceanTargets", () => {
  test("services instance and worker ASGs, GPU and any other *AsgId/*AsgName", () => {
    const { targets, notes } = codeOceanTargets(out({
      ec2ServicesInstanceId: "i-1", workersAsgId: "w-1-asg", workersGpuAsgId: "g-asg", batchAsgName: "b-asg", albDnsName: "x", vpcId: "v",
    }));
    expect(targets).toEqual({
      servicesInstanceId: "i-1",
      workerAsgs: [{ name: "w-1-asg", output: "workersAsgId" }, { name: "g-asg", output: "workersGpuAsgId" }, { name: "b-asg", output: "batchAsgName" }],
    });
    expect(notes).toEqual([]);
  });
  test("a null or absent GPU ASG is a note, not an error", () => {
    expect(codeOceanTargets(out({ ec2ServicesInstanceId: "i-1", workersAsgId: "w", workersGpuAsgId: null })).notes)
      .toEqual(["workersGpuAsgId is null: no such worker fleet, skipped"]);
    expect(codeOceanTargets(out({ ec2ServicesInstanceId: "i-1", workersAsgId: "w" })).notes)
      .toEqual(["workersGpuAsgId is absent: no such worker fleet, skipped"]);
  });
  test("the same ASG named twice is drained once", () => {
    expect(codeOceanTargets(out({ ec2ServicesInstanceId: "i", workersAsgId: "w", otherAsgId: "w" })).targets.workerAsgs).toHaveLength(1);
  });
  test("no services instance is bad input; a non-string ASG output too", () => {
    expect(() => codeOceanTargets(out({ workersAsgId: "w" }))).toThrow(/no ec2ServicesInstanceId output/);
    try {
      codeOceanTargets(out({ ec2ServicesInstanceId: "i", workersAsgId: 42 }));
      throw new Error("not reached");
    } catch (err) {
      expect(err).toBeInstanceOf(UpgradeError);
      expect((err as UpgradeError).exitCode).toBe(2);
      expect((err as UpgradeError).message).toMatch(/workersAsgId is 42/);
    }
  });
});

describe("assessAsg: missing data is not zero", () => {
  const cancel = new Date("2026-11-24T10:00:30Z");
  test("zero after the cancel is idle", () => {
    expect(assessAsg("a", 3, { value: 0, at: new Date("2026-11-24T10:01:00Z") }, cancel).state).toBe("idle");
  });
  test("a datapoint whose period began before the cancel is stale, even at zero", () => {
    expect(assessAsg("a", 3, { value: 0, at: new Date("2026-11-24T10:00:00Z") }, cancel)).toMatchObject({ state: "stale" });
  });
  test("no datapoints is unknown", () => {
    expect(assessAsg("a", 3, undefined, cancel)).toMatchObject({ state: "unknown", reason: "no datapoints" });
  });
  test("non-zero after the cancel is busy; no InService instance is idle whatever the metric says", () => {
    expect(assessAsg("a", 3, { value: 12.5, at: new Date("2026-11-24T10:02:00Z") }, cancel)).toMatchObject({ state: "busy", reason: "12.5%" });
    expect(assessAsg("a", 0, { value: 80, at: new Date("2026-11-24T10:02:00Z") }, cancel).state).toBe("idle");
    expect(assessAsg("a", 0, undefined, cancel).state).toBe("idle");
  });
  test("progress text names every ASG", () => {
    const text = describeObservations([assessAsg("w", 2, undefined, cancel), assessAsg("g", 2, { value: 5, at: new Date("2026-11-24T10:05:00Z") }, cancel)]);
    expect(text).toBe("w: unknown (no datapoints), g: 5%");
  });
});

test("batches of at most 50 instance ids", () => {
  const ids = Array.from({ length: 123 }, (_, i) => `i-${i}`);
  const batches = chunk(ids, MAX_IDS_PER_CALL);
  expect(batches.map((b) => b.length)).toEqual([50, 50, 23]);
  expect(batches.flat()).toEqual(ids);
  expect(chunk([], 50)).toEqual([]);
});
