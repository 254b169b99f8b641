import { randomUUID } from "node:crypto";
import { GetTemplateCommand } from "@aws-sdk/client-cloudformation";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { AwsClients } from "../../lib/aws";
import { templateResources, type TemplateResource } from "../../workflows/codeocean-vpc/dataLoss";
import type { FaultProxy, InterceptedCall, UpstreamReply } from "./faultProxy";

/**
 * Where moto's change sets are not CloudFormation's, the bed's fault proxy compensates (read in
 * moto 5.2's cloudformation/models.py and parsing.py; listed in the README):
 *
 * - moto's `Change` records Action, LogicalResourceId and ResourceType only: no Replacement, Scope
 *   or Details. For a Modify, the proxy adds `Replacement` as CloudFormation decides it: True when
 *   a property whose update behaviour AWS documents as "Update requires: Replacement" differs
 *   between the stack's template and the change set's (the table below, the properties the bed's
 *   templates vary), else False; `Scope: Properties` when the properties differ.
 * - moto's GetTemplate ignores ChangeSetName and returns the stack's current template. moto keeps
 *   the change set's template but does not serve it; the proxy serves it from what moto was given:
 *   the TemplateURL of that CreateChangeSet call, read from moto's own S3.
 *
 * Nothing is reported that moto did not record: the changes listed are moto's, the template is
 * the one moto's change set was made from.
 */

/** Properties whose change replaces the resource (AWS CloudFormation resource reference, "Update requires: Replacement"). */
export const REPLACING_PROPERTIES: Readonly<Record<string, string[]>> = {
  "AWS::RDS::DBInstance": ["DBInstanceIdentifier", "DBName", "KmsKeyId", "MasterUsername", "StorageEncrypted", "CharacterSetName"],
  "AWS::SecretsManager::Secret": ["Name"],
  "AWS::OpenSearchService::Domain": ["DomainName"],
  "AWS::ElastiCache::ReplicationGroup": ["ReplicationGroupId", "AtRestEncryptionEnabled", "CacheSubnetGroupName", "KmsKeyId", "Port"],
  "AWS::Logs::LogGroup": ["LogGroupName", "LogGroupClass"],
  "AWS::S3::Bucket": ["BucketName"],
  "AWS::EFS::FileSystem": ["Encrypted", "KmsKeyId", "PerformanceMode", "AvailabilityZoneName"],
  "AWS::SSM::Parameter": ["Name"],
};

export interface ChangeSetCompensation {
  remove(): void;
}

export function compensateChangeSets(proxy: FaultProxy, moto: AwsClients): ChangeSetCompensation {
  /** stack name → change set name → the TemplateURL it was made from. */
  const made = new Map<string, string>();
  const key = (stack: string, changeSet: string) => `${stackNameOf(stack)}\n${changeSet}`;

  const remove = proxy.intercept(async (call, forward) => {
    if (call.service !== "cloudformation") return undefined;
    if (call.action === "CreateChangeSet" && call.params.TemplateURL) {
      const reply = await forward();
      if (reply.status === 200) made.set(key(call.params.StackName!, call.params.ChangeSetName!), call.params.TemplateURL);
      return reply;
    }
    if (call.action === "GetTemplate" && call.params.ChangeSetName) return changeSetTemplate(call);
    if (call.action === "DescribeChangeSet") return describeChangeSet(call, forward);
    return undefined;
  });

  async function templateOf(call: InterceptedCall): Promise<string | undefined> {
    const url = made.get(key(call.params.StackName ?? "", call.params.ChangeSetName ?? ""));
    if (!url) return undefined;
    // As moto reads a TemplateURL from its own S3: `https://<bucket>.s3.amazonaws.com/<key>`, or path-style (`http://localhost/<bucket>/<key>`).
    const parsed = new URL(url);
    const parts = parsed.pathname.replace(/^\//, "").split("/").map(decodeURIComponent);
    const virtual = /^([^.]+)\.s3[.-]/.exec(parsed.hostname)?.[1];
    const [bucket, objectKey] = virtual ? [virtual, parts.join("/")] : [parts[0]!, parts.slice(1).join("/")];
    const object = await moto.s3.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }));
    return object.Body!.transformToString();
  }

  async function changeSetTemplate(call: InterceptedCall): Promise<UpstreamReply> {
    const body = await templateOf(call);
    if (body === undefined) return queryError(400, "ChangeSetNotFound", `ChangeSet [${call.params.ChangeSetName}] does not exist`);
    return xmlReply(
      `<GetTemplateResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><GetTemplateResult><TemplateBody>${escapeXml(body)}</TemplateBody><StagesAvailable><member>Original</member><member>Processed</member></StagesAvailable></GetTemplateResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetTemplateResponse>`,
    );
  }

  async function describeChangeSet(call: InterceptedCall, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const reply = await forward();
    const body = await templateOf(call);
    if (reply.status !== 200 || body === undefined) return reply;
    const stack = (await moto.cloudFormation.send(new GetTemplateCommand({ StackName: call.params.StackName }))).TemplateBody ?? "";
    const before = templateResources(stack);
    const after = templateResources(body);
    const text = reply.body.toString().replace(/<ResourceChange>([\s\S]*?)<\/ResourceChange>/g, (all, inner: string) => {
      if (!/<Action>Modify<\/Action>/.test(inner) || /<Replacement>/.test(inner)) return all;
      const id = /<LogicalResourceId>([^<]*)<\/LogicalResourceId>/.exec(inner)?.[1] ?? "";
      const { replacement, changed } = judge(before[id], after[id]);
      const scope = changed ? "<Scope><member>Properties</member></Scope>" : "<Scope/>";
      return `<ResourceChange>${inner}<Replacement>${replacement}</Replacement>${scope}</ResourceChange>`;
    });
    return { ...reply, body: Buffer.from(text) };
  }

  return { remove };
}

function judge(before: TemplateResource | undefined, after: TemplateResource | undefined): { replacement: "True" | "False"; changed: boolean } {
  if (!before || !after) return { replacement: "False", changed: false };
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const changed = !same(before.properties, after.properties);
  const replacing = (REPLACING_PROPERTIES[after.type] ?? []).some((p) => !same(before.properties[p], after.properties[p]));
  return { replacement: before.type !== after.type || replacing ? "True" : "False", changed };
}

const stackNameOf = (nameOrId: string) => (nameOrId.includes(":stack/") ? nameOrId.split("/")[1]! : nameOrId);

function xmlReply(body: string): UpstreamReply {
  return { status: 200, headers: { "content-type": "text/xml" }, body: Buffer.from(body) };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function queryError(status: number, code: string, message: string): UpstreamReply {
  return {
    status,
    headers: { "content-type": "text/xml" },
    body: Buffer.from(`<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`),
  };
}
