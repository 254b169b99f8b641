import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { CloudFrontClient, CreateDistributionCommand } from "@aws-sdk/client-cloudfront";
import { CreateLaunchTemplateCommand, CreateSecurityGroupCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, RegisterImageCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  ConfigureHealthCheckCommand,
  CreateLBCookieStickinessPolicyCommand,
  CreateLoadBalancerCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand,
  RegisterInstancesWithLoadBalancerCommand,
  SetLoadBalancerPoliciesOfListenerCommand,
} from "@aws-sdk/client-elastic-load-balancing";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand as CreateAlbCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from "@aws-sdk/client-route-53";
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SANDBOX_REGION } from "./index";

/**
 * The AWS side of the Open edX fleet (test/sandbox/openedx.ts) in moto, laid out as the Salt era
 * left it: the fleet's names and tags, the AMIs, the instances, the classic ELBs, the hosted zone's
 * CNAMEs and the maintenance bucket with its CloudFront distribution; and the bed's reads of them.
 */
export const RELEASES = ["redwood.3", "sumac.3"] as const;
export type Release = (typeof RELEASES)[number];
export const FLEET = "mitx-residential";
export const ZONE = "mitx.example.edu";
export const ENVIRONMENT = "mitx-production";
export const PURPOSE = "current-residential-live";
export const SITES = {
  lms: { lb: `edx-${PURPOSE}-${ENVIRONMENT}`, record: `lms.${ZONE}`, service: "lms" as const },
  studio: { lb: `edx-studio-${ENVIRONMENT}`, record: `studio.${ZONE}`, service: "cms" as const },
};
export type SiteName = keyof typeof SITES;
export const RECORDS = Object.values(SITES).map((s) => s.record);
export const BUCKET = "mitx-maintenance";
export const SALT_ROLE = { web: "edx", worker: "edx-worker" } as const;

type Role = "web" | "worker";
export type Amis = Record<Release, { web: string; worker: string }>;

export const saltTags = (release: string, role: Role, n: number) => {
  const [codename, number] = release.split(".") as [string, string];
  return [
    { Key: "Name", Value: `edx-${ENVIRONMENT}-${PURPOSE}${role === "worker" ? "-worker" : ""}-${n}-v${number}` },
    { Key: "environment", Value: ENVIRONMENT },
    { Key: "purpose", Value: PURPOSE },
    { Key: "role", Value: SALT_ROLE[role] },
    { Key: "edx_codename", Value: codename },
    { Key: "release-version", Value: number },
  ];
};

export interface FleetAws {
  readonly ec2: EC2Client;
  readonly elb: ElasticLoadBalancingClient;
  readonly elbv2: ElasticLoadBalancingV2Client;
  readonly autoScaling: AutoScalingClient;
  readonly route53: Route53Client;
  readonly cloudFront: CloudFrontClient;
  readonly s3: S3Client;
  destroy(): void;
}

/** Clients straight to moto (not through the fault proxy): the bed's own view of AWS. */
export function fleetAws(motoUrl: string): FleetAws {
  const config = { region: SANDBOX_REGION, endpoint: motoUrl, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  const clients = { ec2: new EC2Client(config), elb: new ElasticLoadBalancingClient(config), elbv2: new ElasticLoadBalancingV2Client(config), autoScaling: new AutoScalingClient(config), route53: new Route53Client(config), cloudFront: new CloudFrontClient(config), s3: new S3Client({ ...config, forcePathStyle: true }) };
  return { ...clients, destroy: () => Object.values(clients).forEach((c) => c.destroy()) };
}

/** One AMI per release and role; `byImage` tells which release and role an instance's AMI is. */
export async function registerAmis(ec2: EC2Client, byImage: Map<string, { release: string; role: Role }>): Promise<Amis> {
  const amis = {} as Amis;
  for (const release of RELEASES) {
    amis[release] = { web: "", worker: "" };
    for (const role of ["web", "worker"] as const) {
      const image = await ec2.send(new RegisterImageCommand({ Name: `edxapp-${release}-${role}`, Description: `Open edX ${release} ${role}` }));
      amis[release][role] = image.ImageId!;
      byImage.set(image.ImageId!, { release, role });
    }
  }
  return amis;
}

/** Where the fleet's instances run: the bed's subnet, the app servers' security group, edxapp's instance profile. */
export interface Placement {
  readonly subnetId: string;
  readonly securityGroupId: string;
  readonly profileArn: string;
}

export async function createPlacement(ec2: EC2Client, motoUrl: string): Promise<Placement> {
  const subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets![0]!;
  const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: `edx-${ENVIRONMENT}`, Description: "Open edX app servers", VpcId: subnet.VpcId }));
  // The instance profile the Salt era gave edxapp (orchestrate.edx: edx-instance-role). The repo
  // has no IAM client (nothing else needs one): one query-protocol call, straight to moto.
  const iam = await fetch(motoUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0" },
    body: "Action=CreateInstanceProfile&Version=2010-05-08&InstanceProfileName=edx-instance-role",
  });
  if (!iam.ok) throw new Error(`moto IAM CreateInstanceProfile: ${iam.status} ${await iam.text()}`);
  const profileArn = /<Arn>([^<]+)<\/Arn>/.exec(await iam.text())?.[1] ?? "";
  return { subnetId: subnet.SubnetId!, securityGroupId: sg.GroupId!, profileArn };
}

/** Launches `count` instances of `role` at `release` as Salt did; their ids. */
export async function launchSalt(ec2: EC2Client, placement: Placement, amis: Amis, release: Release, role: Role, count: number, type: "t3.large" | "t3.medium"): Promise<string[]> {
  const ids: string[] = [];
  // One call per instance: each has its own Salt-era name (…-<n>-v<N>).
  for (let n = 0; n < count; n++) {
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: amis[release][role],
        InstanceType: type,
        MinCount: 1,
        MaxCount: 1,
        SubnetId: placement.subnetId,
        SecurityGroupIds: [placement.securityGroupId],
        IamInstanceProfile: { Arn: placement.profileArn },
        UserData: Buffer.from("#cloud-config\nsalt_minion:\n  conf:\n    master: salt.mitx.example.edu\n").toString("base64"),
        BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 25, VolumeType: "gp3", Encrypted: true, DeleteOnTermination: true } }],
        TagSpecifications: [{ ResourceType: "instance", Tags: saltTags(release, role, n) }],
      }),
    );
    ids.push(out.Instances![0]!.InstanceId!);
  }
  return ids;
}

/** A web instance of another environment (tagged so), for refusal tests. */
export async function launchForeign(ec2: EC2Client, placement: Placement, amis: Amis, release: Release): Promise<string> {
  const tags = saltTags(release, "web", 0).map((t) => (t.Key === "environment" ? { ...t, Value: "mitx-online-production" } : t.Key === "Name" ? { ...t, Value: "edx-mitx-online-production-0-v3" } : t));
  const out = await ec2.send(new RunInstancesCommand({ ImageId: amis[release].web, InstanceType: "t3.large", MinCount: 1, MaxCount: 1, SubnetId: placement.subnetId, TagSpecifications: [{ ResourceType: "instance", Tags: tags }] }));
  return out.Instances![0]!.InstanceId!;
}

/** One classic ELB per site with `web` registered; each site's ELB DNS name. */
export async function createSiteLbs(elb: ElasticLoadBalancingClient, placement: Placement, web: string[]): Promise<Record<SiteName, string>> {
  const lbDnsNames = {} as Record<SiteName, string>;
  for (const [site, { lb, service }] of Object.entries(SITES) as Array<[SiteName, (typeof SITES)[SiteName]]>) {
    const created = await elb.send(
      new CreateLoadBalancerCommand({
        LoadBalancerName: lb,
        Listeners: [{ Protocol: "HTTP", LoadBalancerPort: 80, InstanceProtocol: "HTTP", InstancePort: service === "lms" ? 8000 : 8010 }],
        Subnets: [placement.subnetId],
        SecurityGroups: [placement.securityGroupId],
      }),
    );
    lbDnsNames[site] = created.DNSName!;
    // Salt's ELBs checked HTTPS:443/heartbeat; the bed's hosts serve HTTP on their own ports.
    await elb.send(new ConfigureHealthCheckCommand({ LoadBalancerName: lb, HealthCheck: { Target: `HTTP:${service === "lms" ? 8000 : 8010}/heartbeat`, Interval: 30, Timeout: 5, HealthyThreshold: 3, UnhealthyThreshold: 2 } }));
    await elb.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerName: lb, LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 1 } } }));
    if (site === "studio") {
      await elb.send(new CreateLBCookieStickinessPolicyCommand({ LoadBalancerName: lb, PolicyName: "studio-sticky", CookieExpirationPeriod: 3600 }));
      await elb.send(new SetLoadBalancerPoliciesOfListenerCommand({ LoadBalancerName: lb, LoadBalancerPort: 80, PolicyNames: ["studio-sticky"] }));
    }
    await elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: lb, Instances: web.map((InstanceId) => ({ InstanceId })) }));
  }
  return lbDnsNames;
}

/**
 * The current deployment's layout instead of Salt's (mitodl/ol-infrastructure: edxapp web and
 * worker nodes in Auto Scaling groups from launch templates, the web group in an ALB's lms and
 * studio target groups, studio by host name): a launch template per role at `release`'s AMI (with
 * the instance profile and an encrypted volume), the ALB with a target group per site (1 s
 * deregistration delay here, 300 s there), the web group (`web` instances) attached to both, the
 * worker group (`worker`) to none. moto's groups launch their instances at once.
 */
export interface AsgLayout {
  readonly groups: { web: string; worker: string };
  readonly targetGroupArns: Record<SiteName, string>;
  readonly albDnsName: string;
}

export async function createAsgFleet(aws: FleetAws, placement: Placement, amis: Amis, release: Release, size: { web: number; worker: number }): Promise<AsgLayout> {
  const subnets = (await aws.ec2.send(new DescribeSubnetsCommand({}))).Subnets!;
  const vpcId = subnets.find((s) => s.SubnetId === placement.subnetId)!.VpcId!;
  const twoAzs = [...new Map(subnets.filter((s) => s.VpcId === vpcId).map((s) => [s.AvailabilityZone, s.SubnetId!])).values()].slice(0, 2);
  const alb = (await aws.elbv2.send(new CreateAlbCommand({ Name: `edxapp-${ENVIRONMENT}`, Subnets: twoAzs, SecurityGroups: [placement.securityGroupId] }))).LoadBalancers![0]!;
  const targetGroupArns = {} as Record<SiteName, string>;
  for (const site of Object.keys(SITES) as SiteName[]) {
    const port = SITES[site].service === "lms" ? 8000 : 8010;
    const tg = (await aws.elbv2.send(new CreateTargetGroupCommand({ Name: `edxapp-${site}-${ENVIRONMENT}`.slice(0, 32), Protocol: "HTTP", Port: port, VpcId: vpcId, TargetType: "instance", HealthCheckPath: "/heartbeat" }))).TargetGroups![0]!;
    targetGroupArns[site] = tg.TargetGroupArn!;
    await aws.elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tg.TargetGroupArn, Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "1" }] }));
  }
  const listener = (await aws.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: alb.LoadBalancerArn, Protocol: "HTTP", Port: 80, DefaultActions: [{ Type: "forward", TargetGroupArn: targetGroupArns.lms }] }))).Listeners![0]!;
  await aws.elbv2.send(new CreateRuleCommand({ ListenerArn: listener.ListenerArn, Priority: 10, Conditions: [{ Field: "host-header", Values: [SITES.studio.record] }], Actions: [{ Type: "forward", TargetGroupArn: targetGroupArns.studio }] }));
  const groups = { web: `edxapp-web-${ENVIRONMENT}`, worker: `edxapp-worker-${ENVIRONMENT}` };
  for (const role of ["web", "worker"] as const) {
    const template = await aws.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: groups[role],
        LaunchTemplateData: {
          ImageId: amis[release][role],
          InstanceType: role === "web" ? "t3.large" : "t3.medium",
          IamInstanceProfile: { Arn: placement.profileArn },
          SecurityGroupIds: [placement.securityGroupId],
          BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 50, Encrypted: true } }],
        },
      }),
    );
    await aws.autoScaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: groups[role],
        LaunchTemplate: { LaunchTemplateId: template.LaunchTemplate!.LaunchTemplateId!, Version: "1" },
        MinSize: size[role],
        MaxSize: size[role] + 2,
        DesiredCapacity: size[role],
        VPCZoneIdentifier: placement.subnetId,
        TargetGroupARNs: role === "web" ? Object.values(targetGroupArns) : [],
        Tags: [{ Key: "edxapp_node_type", Value: role, PropagateAtLaunch: true, ResourceId: groups[role], ResourceType: "auto-scaling-group" }],
      }),
    );
  }
  return { groups, targetGroupArns, albDnsName: alb.DNSName! };
}

/** The instances of an Auto Scaling group, sorted. */
export async function groupInstances(autoScaling: AutoScalingClient, name: string): Promise<string[]> {
  const out = await autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
  return (out.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => i.InstanceId!).sort();
}

/** The maintenance bucket and the CloudFront distribution that serves it. */
export async function createMaintenance(aws: FleetAws): Promise<{ distributionId: string; distributionDomain: string }> {
  await aws.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const dist = await aws.cloudFront.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: `maintenance-${Date.now()}`,
        Comment: "MITx maintenance page",
        Enabled: true,
        DefaultRootObject: "index.html",
        Origins: { Quantity: 1, Items: [{ Id: "maintenance", DomainName: `${BUCKET}.s3.amazonaws.com`, S3OriginConfig: { OriginAccessIdentity: "" } }] },
        DefaultCacheBehavior: { TargetOriginId: "maintenance", ViewerProtocolPolicy: "redirect-to-https", MinTTL: 0, ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } }, TrustedSigners: { Enabled: false, Quantity: 0 } },
      },
    }),
  );
  return { distributionId: dist.Distribution!.Id!, distributionDomain: dist.Distribution!.DomainName! };
}

/** The hosted zone with each site's CNAME to its ELB; the zone's id. */
export async function createZone(route53: Route53Client, lbDnsNames: Record<SiteName, string>): Promise<string> {
  const zone = await route53.send(new CreateHostedZoneCommand({ Name: ZONE, CallerReference: `zone-${Date.now()}` }));
  const hostedZoneId = zone.HostedZone!.Id!.replace(/^\/hostedzone\//, "");
  await route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: hostedZoneId,
      ChangeBatch: { Changes: (Object.keys(SITES) as SiteName[]).map((site) => ({ Action: "UPSERT", ResourceRecordSet: { Name: `${SITES[site].record}.`, Type: "CNAME", TTL: 1, ResourceRecords: [{ Value: lbDnsNames[site] }] } })) },
    }),
  );
  return hostedZoneId;
}

/** The bed's reads of the fleet's AWS side (OpenEdxFixture's). */
export function fleetAwsReads(aws: FleetAws, hostedZoneId: string, asg?: AsgLayout) {
  return {
    /** What each record points at (CNAME value, no trailing dot). */
    async records(): Promise<Record<string, string | undefined>> {
      const out = await aws.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId }));
      return Object.fromEntries(RECORDS.map((name) => [name, out.ResourceRecordSets?.find((s) => s.Name === `${name}.` && s.Type === "CNAME")?.ResourceRecords?.[0]?.Value?.replace(/\.$/, "")]));
    },
    /** The instances registered with a site's load balancer (the ASG layout: its target group's, not draining). */
    async registered(site: SiteName): Promise<string[]> {
      if (asg) {
        const out = await aws.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: asg.targetGroupArns[site] }));
        return (out.TargetHealthDescriptions ?? []).filter((d) => !["draining", "unused"].includes(d.TargetHealth?.State ?? "")).map((d) => d.Target!.Id!).sort();
      }
      const out = await aws.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [SITES[site].lb] }));
      return (out.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!).sort();
    },
    async listenerPolicies(site: SiteName): Promise<string[]> {
      const out = await aws.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [SITES[site].lb] }));
      return (out.LoadBalancerDescriptions?.[0]?.ListenerDescriptions ?? []).flatMap((l) => l.PolicyNames ?? []);
    },
    async instanceStates(ids: string[]): Promise<Record<string, string>> {
      const out = await aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
      return Object.fromEntries((out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i.State!.Name!]));
    },
    async instanceTags(id: string): Promise<Record<string, string>> {
      const out = await aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      return Object.fromEntries((out.Reservations?.[0]?.Instances?.[0]?.Tags ?? []).map((t) => [t.Key!, t.Value!]));
    },
    async maintenancePage(): Promise<string | undefined> {
      try {
        const out = await aws.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "index.html" }));
        return await out.Body!.transformToString();
      } catch {
        return undefined;
      }
    },
  };
}
