import { ChangeResourceRecordSetsCommand, GetChangeCommand, ListResourceRecordSetsCommand } from "@aws-sdk/client-route-53";
import { GetDistributionCommand } from "@aws-sdk/client-cloudfront";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { awsCall, type AwsClients } from "../../lib/aws";
import { UpgradeError } from "../../lib/errors";
import type { Progress } from "../../lib/progress";
import { pollUntil } from "../../lib/wait";
import type { FleetSettings } from "./settings";

/**
 * The AWS side of the cut-over besides instances (instances.ts) and load balancers
 * (loadBalancers.ts): the Route 53 records of each site, the maintenance page.
 */
export interface Cloud {
  aws: AwsClients;
  settings: FleetSettings;
  info: Progress;
  pollMs: number;
}


export interface RecordState {
  name: string;
  value?: string;
  ttl?: number;
}

const fqdn = (name: string) => (name.endsWith(".") ? name : `${name}.`);
const sameName = (a: string, b: string) => fqdn(a).toLowerCase() === fqdn(b).toLowerCase();

/** What each configured record points at now. */
export async function readRecords(cloud: Cloud, records: string[]): Promise<RecordState[]> {
  const { hostedZoneId } = cloud.settings.dns;
  const states: RecordState[] = [];
  for (const name of records) {
    const out = await awsCall(`read the DNS record ${name}`, () =>
      cloud.aws.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId, StartRecordName: fqdn(name), StartRecordType: "CNAME", MaxItems: 1 })),
    );
    const set = out.ResourceRecordSets?.find((s) => sameName(s.Name ?? "", name) && s.Type === "CNAME");
    states.push({ name, value: set?.ResourceRecords?.[0]?.Value?.replace(/\.$/, ""), ttl: set?.TTL });
  }
  return states;
}

export const pointsAt = (records: RecordState[], target: string) => records.every((r) => r.value?.toLowerCase() === target.toLowerCase().replace(/\.$/, ""));

/** UPSERTs every record to `target` (keeping each one's TTL) and waits until Route 53 reports INSYNC. */
export async function pointRecords(cloud: Cloud, records: string[], target: string, ttl: number): Promise<void> {
  const { hostedZoneId } = cloud.settings.dns;
  const out = await awsCall(`point ${records.join(", ")} at ${target}`, () =>
    cloud.aws.route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: hostedZoneId,
        ChangeBatch: {
          Comment: `openedx ${cloud.settings.fleet} cut-over to ${cloud.settings.release}`,
          Changes: records.map((name) => ({ Action: "UPSERT", ResourceRecordSet: { Name: fqdn(name), Type: "CNAME", TTL: ttl, ResourceRecords: [{ Value: target }] } })),
        },
      }),
    ),
  );
  const changeId = out.ChangeInfo!.Id!;
  await pollUntil({
    intervalMs: cloud.pollMs,
    timeoutMs: cloud.settings.timing.dnsSyncSeconds * 1000,
    poll: async () => {
      const change = await awsCall(`read the status of DNS change ${changeId}`, () => cloud.aws.route53.send(new GetChangeCommand({ Id: changeId })));
      return { done: change.ChangeInfo?.Status === "INSYNC", seen: change.ChangeInfo?.Status };
    },
    onProgress: ({ seen, attempt }) => void (attempt === 1 || seen === "INSYNC" ? cloud.info(`DNS change ${changeId}: ${seen}`) : undefined),
    onTimeout: (seen) =>
      new UpgradeError({
        what: `wait until DNS change ${changeId} (${records.join(", ")} → ${target}) is INSYNC`,
        why: `Route 53 still reports ${seen ?? "nothing"} after ${cloud.settings.timing.dnsSyncSeconds}s`,
        hint: "check the change in Route 53; run the update again once it is INSYNC",
      }),
  });
}

/** The maintenance distribution's domain name (what the records point at during the window). */
export async function maintenanceDomain(cloud: Cloud): Promise<string> {
  const id = cloud.settings.maintenance.distributionId;
  const out = await awsCall(`read CloudFront distribution ${id}`, () => cloud.aws.cloudFront.send(new GetDistributionCommand({ Id: id })));
  const domain = out.Distribution?.DomainName;
  if (!domain) throw new UpgradeError({ what: `read CloudFront distribution ${id}`, why: "it has no domain name", permanent: true });
  return domain;
}

export async function putMaintenancePage(cloud: Cloud, html: string): Promise<void> {
  const { bucket, key } = cloud.settings.maintenance;
  await awsCall(`write the maintenance page s3://${bucket}/${key}`, () =>
    cloud.aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: html, ContentType: "text/html; charset=utf-8", CacheControl: "max-age=60" })),
  );
}

