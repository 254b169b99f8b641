import { pythonReprToJson } from "../sandbox/cloudformationCompensation";
import * as fs from "node:fs";
import * as path from "node:path";
import { DATA_BEARING_TYPES, destructiveChanges, describeDestructive, shrinkingChanges, templateResources, templateSize } from "../../workflows/codeocean-vpc/dataLoss";
import {
  backupTemplateUrlFor,
  compareVersions,
  judgeVersions,
  minimumCeiling,
  planParameters,
  roleTemplateUrlFor,
  sameVersion,
  statusHint,
  templateUrlFor,
  updatableStatus,
  updateRunning,
  versionOfMetadata,
} from "../../workflows/codeocean-vpc/plan";
import { fingerprintOf, stacksInOrder } from "../../workflows/codeocean-vpc/provider";
import { companionTemplateUrl, untouchedNote, vpcRunbook } from "../../workflows/codeocean-vpc/runbook";
import { parseVpcConfig, parseVpcSettings } from "../../workflows/codeocean-vpc/settings";

describe("Code Ocean VPC: pure decisions", () => {
  test("template URLs as Code Ocean publishes them, with or without the v in the setting", () => {
    // docs.codeocean.com: templates/v2.21.5/codeocean-least-privileged-role.template.yaml; templates/codeocean-backup/v1.2.1/codeocean-backup.template.yaml
    expect(templateUrlFor("3.8.2")).toBe("https://codeocean-vpc.s3.amazonaws.com/templates/v3.8.2/codeocean.template.yaml");
    expect(templateUrlFor("v3.8.2")).toBe(templateUrlFor("3.8.2"));
    expect(roleTemplateUrlFor("2.21.5")).toBe("https://codeocean-vpc.s3.amazonaws.com/templates/v2.21.5/codeocean-least-privileged-role.template.yaml");
    expect(backupTemplateUrlFor("1.2.1")).toBe("https://codeocean-vpc.s3.amazonaws.com/templates/codeocean-backup/v1.2.1/codeocean-backup.template.yaml");
    expect(companionTemplateUrl({ stackName: "r" }, "codeocean-least-privileged-role.template.yaml", "3.8.2")).toBe(roleTemplateUrlFor("v3.8.2"));
    expect(companionTemplateUrl({ stackName: "b", version: "v1.2.1" }, "codeocean-backup.template.yaml", "3.8.2")).toBe(backupTemplateUrlFor("v1.2.1"));
  });

  test("versions with or without the v compare as one", () => {
    expect(sameVersion("v3.8.2", "3.8.2")).toBe(true);
    expect(sameVersion("V3.8.2", "v3.8.2")).toBe(true);
    expect(sameVersion("v3.8.2", "3.8.1")).toBe(false);
    expect(sameVersion(undefined, "3.8.2")).toBe(false);
    expect(compareVersions("v3.8.2", "3.7.0")).toBeGreaterThan(0);
    expect(judgeVersions("v3.7.0", "3.8.2")).toEqual({ ok: true });
    expect(judgeVersions("v3.8.2", "3.8.2")).toMatchObject({ ok: true, note: "already at v3.8.2" });
    expect(judgeVersions("v3.8.2", "v3.7.0")).toMatchObject({ ok: false, why: "v3.8.2 → v3.7.0 is a downgrade" });
  });

  test("version metadata", () => {
    expect(versionOfMetadata(JSON.stringify({ "CodeOcean::VersionInfo": { Version: "v3.8.2", Commit: "c29f4c0" } }))).toBe("v3.8.2");
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
    ["v3.7.0", "3.8.2", true, undefined],
    ["v3.0.5", "v3.8.2", false, /v3\.0\.5 has no maintenance mode/],
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
      live: { allocated: 64 },
    });
    expect(plan.parameters).toEqual([
      { ParameterKey: "pRdsAllocatedStorage", ParameterValue: "64" },
      { ParameterKey: "pRdsInstanceType", UsePreviousValue: true },
    ]);
    expect(plan.notes.join("\n")).toMatch(/auto-scaled to 64 GiB, above the stack's 20; passing 64/);
    expect(plan.notes.join("\n")).toMatch(/new parameters take their defaults: pNew/);
    // an override above the live size wins; one below it does not
    expect(planParameters({ templateParameters: ["pRdsAllocatedStorage"], stackParameters: { pRdsAllocatedStorage: "20" }, overrides: { pRdsAllocatedStorage: "100" }, live: { allocated: 64 } }).parameters).toEqual([{ ParameterKey: "pRdsAllocatedStorage", ParameterValue: "100" }]);
    expect(planParameters({ templateParameters: ["pRdsAllocatedStorage"], stackParameters: { pRdsAllocatedStorage: "20" }, overrides: { pRdsAllocatedStorage: "30" }, live: { allocated: 64 } }).parameters).toEqual([{ ParameterKey: "pRdsAllocatedStorage", ParameterValue: "64" }]);
  });

  test.each([
    // [stack's max, live allocated, live max, → passed]
    ["100", 64, undefined, undefined], // 100 ≥ 71: kept as it is
    ["100", 150, undefined, "165"], // auto-scaled past the stack's ceiling: at least 10 % above the storage
    ["100", 150, 400, "400"], // the operator raised it live: never lower than that
    ["500", 150, 400, undefined], // the stack's is higher still: kept
    ["100", 95, 100, "105"], // the live ceiling itself too tight for the storage passed
  ])("the auto-scaling ceiling: stack %s, live %s GiB, live ceiling %s → %s", (stackMax, allocated, maxAllocated, passed) => {
    const plan = planParameters({
      templateParameters: ["pRdsAllocatedStorage", "pRdsMaxAllocatedStorage"],
      stackParameters: { pRdsAllocatedStorage: "20", pRdsMaxAllocatedStorage: stackMax },
      live: { allocated, maxAllocated },
    });
    const ceiling = plan.parameters.find((p) => p.ParameterKey === "pRdsMaxAllocatedStorage")!;
    expect(ceiling.ParameterValue).toBe(passed);
    if (passed === undefined) expect(ceiling.UsePreviousValue).toBe(true);
    const effective = Number(passed ?? stackMax);
    expect(effective).toBeGreaterThanOrEqual(minimumCeiling(allocated));
    expect(effective).toBeGreaterThanOrEqual(maxAllocated ?? 0);
  });

  test("an override of the ceiling below the live one is raised to it, and says so", () => {
    const plan = planParameters({ templateParameters: ["pRdsAllocatedStorage", "pRdsMaxAllocatedStorage"], stackParameters: {}, overrides: { pRdsMaxAllocatedStorage: "200" }, live: { allocated: 150, maxAllocated: 400 } });
    expect(plan.parameters).toContainEqual({ ParameterKey: "pRdsMaxAllocatedStorage", ParameterValue: "400" });
    expect(plan.notes.join("\n")).toMatch(/pRdsMaxAllocatedStorage: the database's live ceiling is 400 GiB .*passing 400/);
  });
});

describe("Code Ocean VPC: the data-loss review", () => {
  const fixtures = path.join(__dirname, "..", "fixtures", "codeocean-vpc");
  const v370 = templateResources(fs.readFileSync(path.join(fixtures, "codeocean-v3.7.0.template.yaml"), "utf8"));
  const v382 = templateResources(fs.readFileSync(path.join(fixtures, "codeocean-v3.8.2.template.yaml"), "utf8"));

  test("every type of the fixture (the real template's data-bearing types) that holds data is on the list or marked by its policies", () => {
    const types = new Set(Object.values(v382).map((r) => r.type));
    for (const t of ["AWS::RDS::DBInstance", "AWS::OpenSearchService::Domain", "AWS::ElastiCache::ReplicationGroup", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup", "AWS::EC2::Volume", "AWS::EFS::FileSystem", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Backup::BackupVault"]) {
      expect([t, types.has(t)]).toEqual([t, true]);
      expect([t, DATA_BEARING_TYPES[t] !== undefined]).toEqual([t, true]);
    }
    for (const t of ["AWS::DynamoDB::Table", "AWS::DocDB::DBCluster", "AWS::Neptune::DBCluster", "AWS::Redshift::Cluster", "AWS::FSx::FileSystem", "AWS::ECR::Repository", "AWS::Elasticsearch::Domain", "AWS::ElastiCache::CacheCluster"]) {
      expect([t, DATA_BEARING_TYPES[t] !== undefined]).toEqual([t, true]);
    }
    expect(v382.AnalyticsDBInstance).toMatchObject({ type: "AWS::RDS::DBInstance", deletionPolicy: "Delete", updateReplacePolicy: "Delete" });
    expect(v382.LogGroupServices).toMatchObject({ deletionPolicy: "Retain", updateReplacePolicy: "Retain" });
  });

  test.each([
    ["OpenSearchDomain", "AWS::OpenSearchService::Domain", /indices/],
    ["RedisReplicationGroup", "AWS::ElastiCache::ReplicationGroup", /keys/],
    ["AnalyticsDBMasterPassword", "AWS::SecretsManager::Secret", /rotating the credential/],
    ["LogGroupServices", "AWS::Logs::LogGroup", /log events/],
  ])("replacing %s (%s) is destructive, named with its type and why", (logicalId, type, why) => {
    const [found] = destructiveChanges([{ action: "Modify", logicalId, type, replacement: "True" }], v370, v382);
    expect(describeDestructive(found!)).toMatch(new RegExp(`^Modify ${logicalId} ${type.replace(/:/g, ":")} \\(replacement: True\\): `));
    expect(found!.why).toMatch(why);
  });

  test("by the template author's word: a Retain- or Snapshot-marked resource of a type on no list", () => {
    const before = { Kept: { type: "AWS::SSM::Parameter", deletionPolicy: "Retain", properties: {} }, Snap: { type: "AWS::Custom::Thing", updateReplacePolicy: "Snapshot", properties: {} }, Plain: { type: "AWS::SSM::Parameter", properties: {} } };
    const changes = [
      { action: "Remove", logicalId: "Kept", type: "AWS::SSM::Parameter" },
      { action: "Modify", logicalId: "Snap", type: "AWS::Custom::Thing", replacement: "Conditional" },
      { action: "Remove", logicalId: "Plain", type: "AWS::SSM::Parameter" },
      { action: "Modify", logicalId: "AnalyticsDBInstance", type: "AWS::RDS::DBInstance", replacement: "False" },
      { action: "Remove", logicalId: "Lt", type: "AWS::EC2::LaunchTemplate" },
      { action: "Modify", logicalId: "Asg", type: "AWS::AutoScaling::AutoScalingGroup", replacement: "True" },
    ];
    const found = destructiveChanges(changes, before, {});
    expect(found.map((c) => c.logicalId)).toEqual(["Kept", "Snap"]);
    expect(found[0]!.why).toMatch(/the template marks it DeletionPolicy: Retain/);
    expect(found[1]!.why).toMatch(/UpdateReplacePolicy: Snapshot/);
  });

  test("a modified volume whose template size is below its live size shrinks it; an untouched one does not", () => {
    expect(templateSize(v382.DataVolume!)).toBe(500);
    expect(templateSize(v382.OpenSearchDomain!)).toBe(20);
    expect(templateSize({ type: "AWS::EC2::Volume", properties: { Size: "pDataSize" } }, { pDataSize: "900" })).toBe(900);
    const live = { DataVolume: { physicalId: "vol-1", size: 800 } };
    expect(shrinkingChanges([{ action: "Modify", logicalId: "DataVolume", type: "AWS::EC2::Volume" }], v382, live)).toEqual([
      { logicalId: "DataVolume", type: "AWS::EC2::Volume", physicalId: "vol-1", live: 800, template: 500, unit: "GiB" },
    ]);
    expect(shrinkingChanges([], v382, live)).toEqual([]);
    expect(shrinkingChanges([{ action: "Modify", logicalId: "DataVolume", type: "AWS::EC2::Volume" }], v382, { DataVolume: { physicalId: "vol-1", size: 500 } })).toEqual([]);
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
    const parsed = parseVpcSettings({ ...base, version: "v3.8.2", roleStack: { stackName: "co-role" }, backupStack: { stackName: "co-backup", version: "v1.2.1" } });
    expect("settings" in parsed && stacksInOrder(parsed.settings)).toEqual(["role co-role", "backup co-backup", "primary co-vpc"]);
  });
  test("errors name the key", () => {
    const parsed = parseVpcConfig({ kind: "codeocean-vpc", ...base, version: "3.8", region: "mars", backupStack: { stackName: "b", version: "1.2.1", templateUrl: "https://x/y" } }, "upgrade-orchestrator:systems.vpc");
    expect("issues" in parsed && parsed.issues.map((i) => i.key)).toEqual([
      "upgrade-orchestrator:systems.vpc.region",
      "upgrade-orchestrator:systems.vpc.version",
      "upgrade-orchestrator:systems.vpc.backupStack",
    ]);
  });
  test("the backup stack needs its own version or template URL", () => {
    const parsed = parseVpcSettings({ ...base, backupStack: { stackName: "co-backup" } });
    expect("issues" in parsed && parsed.issues.map((i) => `${i.key}: ${i.message}`).join("\n")).toMatch(/backupStack: give the backup stack's own template version \(e\.g\. v1\.2\.1/);
  });
  test("the fingerprint ignores the maintenance hooks (tokens) and the v of the version, not the stack", () => {
    expect(fingerprintOf({ ...base, version: "v3.8.2" })).toBe(fingerprintOf(base));
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
