import { pythonReprToJson } from "../sandbox/cloudformationCompensation";
import { compareVersions, destructiveChanges, judgeVersions, planParameters, statusHint, templateUrlFor, updatableStatus, updateRunning, versionOfMetadata } from "../../workflows/codeocean-vpc/plan";
import { fingerprintOf, stacksInOrder } from "../../workflows/codeocean-vpc/provider";
import { untouchedNote, vpcRunbook } from "../../workflows/codeocean-vpc/runbook";
import { parseVpcConfig, parseVpcSettings } from "../../workflows/codeocean-vpc/settings";

describe("Code Ocean VPC: pure decisions", () => {
  test("template URL pattern and version metadata", () => {
    expect(templateUrlFor("3.8.2")).toBe("https://codeocean-vpc.s3.amazonaws.com/templates/3.8.2/codeocean.template.yaml");
    expect(versionOfMetadata(JSON.stringify({ "CodeOcean::VersionInfo": { Version: "3.8.2" } }))).toBe("3.8.2");
    expect(versionOfMetadata(JSON.stringify({ "CodeOcean::VersionInfo": { Version: 3.1 } }))).toBe("3.1");
    expect(versionOfMetadata(undefined)).toBeUndefined();
    expect(versionOfMetadata("{'not': 'json'}")).toBeUndefined();
    expect(compareVersions("3.10.0", "3.9.9")).toBeGreaterThan(0);
  });

  test.each([
    ["3.7.0", "3.8.2", true, undefined],
    ["3.8.2", "3.8.2", true, undefined],
    ["3.7.0", "3.6.0", false, /3\.7\.0 → 3\.6\.0 is a downgrade/],
    ["3.0.5", "3.8.2", false, /3\.0\.5 has no maintenance mode/],
    ["3.1.0", "3.2.0", true, undefined],
  ])("%s → %s allowed: %s", (from, to, ok, why) => {
    const verdict = judgeVersions(from, to);
    expect(verdict.ok).toBe(ok);
    if (!verdict.ok) expect(verdict.why).toMatch(why!);
  });

  test("stack states", () => {
    expect(["UPDATE_COMPLETE", "CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"].every(updatableStatus)).toBe(true);
    expect(["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_IN_PROGRESS", "DELETE_COMPLETE", "REVIEW_IN_PROGRESS"].some(updatableStatus)).toBe(false);
    expect(updateRunning("UPDATE_IN_PROGRESS") && updateRunning("UPDATE_ROLLBACK_IN_PROGRESS") && !updateRunning("CREATE_IN_PROGRESS")).toBe(true);
    expect(statusHint("UPDATE_ROLLBACK_FAILED", "co")).toMatch(/continue-update-rollback --stack-name co/);
  });

  test("parameters: previous values, new ones default, the live storage never lowered", () => {
    const plan = planParameters({
      templateParameters: ["pRdsAllocatedStorage", "pRdsInstanceType", "pNew"],
      stackParameters: { pRdsAllocatedStorage: "20", pRdsInstanceType: "db.t4g.small", pGone: "x" },
      liveAllocatedStorage: 64,
    });
    expect(plan.parameters).toEqual([
      { ParameterKey: "pRdsAllocatedStorage", ParameterValue: "64" },
      { ParameterKey: "pRdsInstanceType", UsePreviousValue: true },
    ]);
    expect(plan.notes.join("\n")).toMatch(/auto-scaled to 64 GiB, above the stack's 20; passing 64/);
    expect(plan.notes.join("\n")).toMatch(/new parameters take their defaults: pNew/);
    // an override above the live size wins; one below it does not
    expect(planParameters({ templateParameters: ["pRdsAllocatedStorage"], stackParameters: { pRdsAllocatedStorage: "20" }, overrides: { pRdsAllocatedStorage: "100" }, liveAllocatedStorage: 64 }).parameters).toEqual([{ ParameterKey: "pRdsAllocatedStorage", ParameterValue: "100" }]);
    expect(planParameters({ templateParameters: ["pRdsAllocatedStorage"], stackParameters: { pRdsAllocatedStorage: "20" }, overrides: { pRdsAllocatedStorage: "30" }, liveAllocatedStorage: 64 }).parameters).toEqual([{ ParameterKey: "pRdsAllocatedStorage", ParameterValue: "64" }]);
  });

  test("destructive changes: data-bearing resources replaced or removed", () => {
    const changes = [
      { action: "Modify", logicalId: "AnalyticsDBInstance", type: "AWS::RDS::DBInstance", replacement: "False" },
      { action: "Modify", logicalId: "DataBucket", type: "AWS::S3::Bucket", replacement: "Conditional" },
      { action: "Remove", logicalId: "Key", type: "AWS::KMS::Key" },
      { action: "Remove", logicalId: "Lt", type: "AWS::EC2::LaunchTemplate" },
      { action: "Modify", logicalId: "Asg", type: "AWS::AutoScaling::AutoScalingGroup", replacement: "True" },
    ];
    expect(destructiveChanges(changes).map((c) => c.logicalId)).toEqual(["DataBucket", "Key"]);
  });
});

describe("Code Ocean VPC: the runbook's order", () => {
  test("reading and reviewing first, then maintenance mode, then the updates role → backup → primary, then maintenance off", () => {
    const ids = vpcRunbook.map((s) => s.id);
    expect(ids).toEqual([
      "check-rds-storage",
      "review-primary-stack",
      "review-role-stack",
      "review-backup-stack",
      "enable-maintenance",
      "update-role-stack",
      "update-backup-stack",
      "update-primary-stack",
      "disable-maintenance",
    ]);
    // no step that updates a stack comes before maintenance mode is verified
    const maintenance = ids.indexOf("enable-maintenance");
    expect(ids.filter((id) => id.startsWith("update-")).every((id) => ids.indexOf(id) > maintenance)).toBe(true);
    // after a failure nothing more runs: maintenance mode is left as it is, and the error says so
    expect(vpcRunbook.some((s) => s.always)).toBe(false);
  });

  test("the maintenance deadline's refusal names the stacks already at their target (an earlier run's update)", () => {
    expect(untouchedNote({ companions: {} })).toBeUndefined();
    expect(untouchedNote({ companions: { role: { stackName: "co-role", templateUrl: "u", plan: { changeSet: "c", token: "t", changes: [], empty: false } } } })).toBeUndefined();
    expect(untouchedNote({ companions: { role: { stackName: "co-role", templateUrl: "u", atTarget: "co-role: already at 3.8.2" }, backup: { stackName: "co-backup", templateUrl: "v", atTarget: "no changes" } } })).toBe(
      "already at their target template before this run: role co-role, backup co-backup",
    );
  });
});

describe("Code Ocean VPC: settings", () => {
  const base = { stackName: "co-vpc", version: "3.8.2" };
  test("valid settings, and the stacks in order", () => {
    const parsed = parseVpcSettings({ ...base, roleStack: { stackName: "co-role" }, backupStack: { stackName: "co-backup", version: "3.8.2" } });
    expect("settings" in parsed && stacksInOrder(parsed.settings)).toEqual(["role co-role", "backup co-backup", "primary co-vpc"]);
  });
  test("errors name the key", () => {
    const parsed = parseVpcConfig({ kind: "codeocean-vpc", ...base, version: "3.8", region: "mars", backupStack: { stackName: "b", version: "3.8.2", templateUrl: "https://x/y" } }, "upgrade-orchestrator:systems.vpc");
    expect("issues" in parsed && parsed.issues.map((i) => i.key)).toEqual([
      "upgrade-orchestrator:systems.vpc.region",
      "upgrade-orchestrator:systems.vpc.version",
      "upgrade-orchestrator:systems.vpc.backupStack",
    ]);
  });
  test("the fingerprint ignores the maintenance hooks (tokens), not the stack", () => {
    const a = fingerprintOf({ ...base, maintenance: { enable: { http: { url: "http://a/x", headers: { authorization: "one" } } } } });
    const b = fingerprintOf({ ...base, maintenance: { enable: { http: { url: "http://a/x", headers: { authorization: "two" } } } } });
    expect(a).toBe(b);
    expect(fingerprintOf({ ...base, stackName: "other" })).not.toBe(a);
  });
});

test("the bed turns moto's Python repr of template Metadata into JSON", () => {
  expect(JSON.parse(pythonReprToJson("{'CodeOcean::VersionInfo': {'Version': '3.8.2', 'x': True, 'y': None}}"))).toEqual({ "CodeOcean::VersionInfo": { Version: "3.8.2", x: true, y: null } });
  expect(pythonReprToJson('{"a": 1}')).toBe('{"a": 1}');
});
