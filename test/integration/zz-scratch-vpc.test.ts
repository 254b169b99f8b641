import { startSandbox, type Sandbox } from "../sandbox";
import { startVpcFixture, type VpcFixture } from "../sandbox/codeoceanVpc";

let bed: Sandbox;
let vpc: VpcFixture;
beforeAll(async () => {
  bed = await startSandbox({ ssh: false, pulumi: false });
  vpc = await startVpcFixture(bed);
  Object.assign(process.env, bed.env);
});
afterAll(async () => {
  await vpc?.stop();
  await bed?.stop();
});

test("provider create runs the runbook", async () => {
  const d = await vpc.deploy("acc");
  const before = await vpc.snapshot(d);
  expect(await vpc.workerInstances(d)).toBe(2);
  const provider = require("../../workflows/codeocean-vpc/provider");
  const cfg = vpc.systemConfig(d, "3.8.2");
  delete (cfg as any).kind;
  const checked = await provider.check({}, cfg);
  console.log(JSON.stringify(checked));
  const out = await provider.create(checked.inputs);
  console.log(JSON.stringify(out));
  const after = await vpc.status(d.primary);
  console.log(after.status, after.parameters, vpc.hook.requests);
  const { GetTemplateSummaryCommand } = require("@aws-sdk/client-cloudformation");
  const sum = await vpc.moto.cloudFormation.send(new GetTemplateSummaryCommand({ StackName: d.primary }));
  console.log("SUMMARY", JSON.stringify({ ...sum, Parameters: undefined }).slice(0, 900));
  expect(before).not.toEqual(await vpc.snapshot(d));
});
