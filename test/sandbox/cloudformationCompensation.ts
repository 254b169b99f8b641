import { randomUUID } from "node:crypto";
import { UpdateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeChangeSetCommand } from "@aws-sdk/client-cloudformation";
import type { AwsClients } from "../../lib/aws";
import type { FaultProxy, InterceptedCall, UpstreamReply } from "./faultProxy";

/**
 * Where moto's CloudFormation and Batch are not AWS, the bed's fault proxy compensates (each place
 * is listed in the README). It may delay or fail a call, never report a success moto did not record:
 *
 * - moto completes a stack update synchronously inside ExecuteChangeSet. The proxy reports the
 *   stack as UPDATE_IN_PROGRESS for the next N DescribeStacks polls (holding back moto's
 *   UPDATE_COMPLETE event meanwhile) and adds per-resource events (moto lists only stack-level
 *   ones) for the resources moto's change set named, revealed one poll at a time. moto records no
 *   ClientRequestToken on events; the proxy adds the execution's token to this update's events.
 * - moto never fails or rolls back an update. On demand the proxy fails one: ExecuteChangeSet is
 *   not forwarded (the stack in moto stays at its old template, as after a rollback) and the stack
 *   reports UPDATE_IN_PROGRESS → AnalyticsDBInstance UPDATE_FAILED with RDS's message →
 *   UPDATE_ROLLBACK_IN_PROGRESS → UPDATE_ROLLBACK_COMPLETE (or UPDATE_ROLLBACK_FAILED), and keeps
 *   reporting that final status.
 * - For the crash test, a tracked update can be held: while held its clock stops (the stack keeps
 *   reporting the status of the poll it was at, UPDATE_IN_PROGRESS, and no further event), so a
 *   second run really finds the update running; released, it goes on to moto's UPDATE_COMPLETE.
 * - A stack's status can be pinned (UPDATE_ROLLBACK_FAILED, ROLLBACK_COMPLETE), states moto cannot
 *   reach; the proxy then refuses updates of it as CloudFormation does.
 * - Maintenance mode's effects: moto cannot hold a Batch job RUNNING without Docker, so the proxy
 *   adds the deployment's running jobs to ListJobs answers until maintenance mode has "stopped"
 *   them; the worker instances are terminated for real in moto (desired capacity 0) a few polls
 *   after maintenance mode is switched on (or never, for the deadline test).
 */
export const RDS_STORAGE_MESSAGE =
  "Resource handler returned message: \"Invalid storage size for engine name postgres and storage type gp3: 20 (Service: Rds, Status Code: 400, Request ID: 6c5e6f1e-8d8b-4b8e-9a53-2f0c4d7b1a10)\" (RequestToken: 3f1c0b7e-1d2a-4c55-b3de-0a9e8c6f2b11, HandlerErrorCode: InvalidRequest)";

export type UpdateOutcome = "complete" | "rollback" | "rollback-failed";

interface SyntheticEvent {
  logicalId: string;
  type: string;
  status: string;
  reason?: string;
  /** Revealed from this DescribeStacks poll on. */
  atPoll: number;
  time: Date;
  id: string;
}

interface TrackedUpdate {
  stackName: string;
  stackId?: string;
  token?: string;
  outcome: UpdateOutcome;
  polls: number;
  seenPolls: number;
  events: SyntheticEvent[];
  finalStatus: string;
}

export interface MaintenancePlay {
  /** Running jobs per job queue ARN until maintenance mode stops them. */
  jobs: Record<string, number>;
  workerGroups: string[];
  /** DescribeAutoScalingGroups polls after the switch until jobs stop and workers terminate; "never" for the deadline test. */
  pollsToIdle: number | "never";
}

export interface CloudFormationCompensation {
  /** Every update executed from now on stays UPDATE_IN_PROGRESS for `polls` DescribeStacks polls (default 3). */
  setUpdatePolls(polls: number): void;
  /** The next update of `stackName` ends with this outcome instead of moto's synchronous success. */
  armUpdate(stackName: string, outcome: Exclude<UpdateOutcome, "complete">, polls?: number): void;
  /**
   * Stops the clock of `stackName`'s update (the one running or the next one executed): it keeps
   * reporting UPDATE_IN_PROGRESS, however often it is polled, until released. A delay only: moto
   * has already recorded the update, and after the release the stack reports moto's own status.
   */
  holdUpdate(stackName: string): void;
  releaseUpdate(stackName: string): void;
  /** Reports `status` for the stack until unpinned (undefined). */
  pinStatus(stackName: string, status: string | undefined): void;
  /** The deployment's activity before maintenance mode; `switchOn` is what the admin's click (or the hook) does. */
  playMaintenance(play: MaintenancePlay): void;
  switchMaintenanceOn(): void;
  readonly maintenanceOn: boolean;
  /** ExecuteChangeSet calls seen, per stack (forwarded or failed on purpose). */
  executions(stackName: string): number;
  reset(): void;
  remove(): void;
}

export function compensateCloudFormation(proxy: FaultProxy, moto: AwsClients): CloudFormationCompensation {
  let defaultPolls = 3;
  const armed = new Map<string, { outcome: UpdateOutcome; polls?: number }>();
  const tracked = new Map<string, TrackedUpdate>();
  const pinned = new Map<string, string>();
  const executed = new Map<string, number>();
  const held = new Set<string>();
  let play: MaintenancePlay | undefined;
  let switchedOn = false;
  let pollsSinceSwitch = 0;
  let idleReached = false;

  const remove = proxy.intercept(async (call, forward) => {
    if (call.service === "cloudformation") return cloudFormation(call, forward);
    if (call.service === "batch" && /\/v1\/listjobs/i.test(call.path)) return listJobs(call, forward);
    if (call.service === "autoscaling" && call.action === "DescribeAutoScalingGroups" && play && switchedOn && !idleReached) await advanceMaintenance();
    return undefined;
  });

  async function advanceMaintenance(): Promise<void> {
    pollsSinceSwitch += 1;
    if (play!.pollsToIdle === "never" || pollsSinceSwitch < play!.pollsToIdle) return;
    idleReached = true;
    // Real effects in moto: the worker instances are terminated.
    for (const group of play!.workerGroups) {
      await moto.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: group, MinSize: 0, DesiredCapacity: 0 }));
    }
  }

  async function listJobs(call: InterceptedCall, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const reply = await forward();
    const request = JSON.parse(call.body.toString() || "{}") as { jobQueue?: string; jobStatus?: string };
    const running = play && !idleReached && request.jobStatus === "RUNNING" ? (play.jobs[request.jobQueue ?? ""] ?? 0) : 0;
    if (running === 0 || reply.status !== 200) return reply;
    const parsed = JSON.parse(reply.body.toString() || "{}") as { jobSummaryList?: unknown[] };
    const jobs = Array.from({ length: running }, (_, i) => ({ jobId: `bed-job-${i}`, jobName: `computation-${i}`, status: "RUNNING", createdAt: Date.now() - 60_000 }));
    parsed.jobSummaryList = [...(parsed.jobSummaryList ?? []), ...jobs];
    return { ...reply, body: Buffer.from(JSON.stringify(parsed)) };
  }

  async function cloudFormation(call: InterceptedCall, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply | undefined> {
    if (call.action === "GetTemplateSummary") return templateSummary(forward);
    const stackName = call.params.StackName;
    if (!stackName) return undefined;
    const name = stackName.includes(":stack/") ? stackName.split("/")[1]! : stackName;
    switch (call.action) {
      case "ExecuteChangeSet":
        return execute(name, call, forward);
      case "CreateChangeSet":
      case "UpdateStack": {
        const status = pinned.get(name);
        if (status && !/_COMPLETE$/.test(status) || status === "ROLLBACK_COMPLETE") {
          return queryError(400, "ValidationError", `Stack:${name} is in ${status} state and can not be updated.`);
        }
        return undefined;
      }
      case "DescribeStacks":
        return describeStacks(name, forward);
      case "DescribeStackEvents":
        return describeEvents(name, forward);
      default:
        return undefined;
    }
  }

  /** moto serializes the template's Metadata as a Python repr; AWS returns it as JSON text. */
  async function templateSummary(forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const reply = await forward();
    if (reply.status !== 200) return reply;
    const text = reply.body.toString().replace(/<Metadata>([^<]*)<\/Metadata>/, (_all, repr: string) => `<Metadata>${escapeXml(pythonReprToJson(unescapeXml(repr)))}</Metadata>`);
    return { ...reply, body: Buffer.from(text) };
  }

  async function execute(name: string, call: InterceptedCall, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    executed.set(name, (executed.get(name) ?? 0) + 1);
    const arm = armed.get(name) ?? { outcome: "complete" as const };
    armed.delete(name);
    const polls = arm.polls ?? defaultPolls;
    const now = Date.now();
    const token = call.params.ClientRequestToken;
    const described = await moto.cloudFormation.send(new DescribeChangeSetCommand({ StackName: name, ChangeSetName: call.params.ChangeSetName }));
    const update: TrackedUpdate = { stackName: name, stackId: described.StackId, token, outcome: arm.outcome, polls, seenPolls: 0, events: [], finalStatus: "UPDATE_COMPLETE" };
    const at = (i: number) => new Date(now + i * 10);
    const event = (logicalId: string, type: string, status: string, atPoll: number, i: number, reason?: string): SyntheticEvent => ({ logicalId, type, status, atPoll, reason, time: at(i), id: randomUUID() });
    if (arm.outcome === "complete") {
      const reply = await forward();
      if (reply.status !== 200) return reply;
      const changes = (described.Changes ?? []).map((c) => c.ResourceChange!).filter(Boolean);
      changes.forEach((c, i) => {
        const step = Math.min(polls, i + 1);
        update.events.push(event(c.LogicalResourceId!, c.ResourceType!, "UPDATE_IN_PROGRESS", step - 1, 2 * i + 1));
        update.events.push(event(c.LogicalResourceId!, c.ResourceType!, "UPDATE_COMPLETE", step, 2 * i + 2));
      });
      tracked.set(name, update);
      return reply;
    }
    // A failed update: not forwarded; moto's stack keeps its template, as after a rollback.
    const stack = "AWS::CloudFormation::Stack";
    const db = { id: "AnalyticsDBInstance", type: "AWS::RDS::DBInstance" };
    update.events.push(event(name, stack, "UPDATE_IN_PROGRESS", 0, 0, "User Initiated"));
    update.events.push(event(db.id, db.type, "UPDATE_IN_PROGRESS", 0, 1));
    update.events.push(event(db.id, db.type, "UPDATE_FAILED", polls, 2, RDS_STORAGE_MESSAGE));
    update.events.push(event(name, stack, "UPDATE_ROLLBACK_IN_PROGRESS", polls, 3, `The following resource(s) failed to update: [${db.id}].`));
    if (arm.outcome === "rollback") {
      update.events.push(event(db.id, db.type, "UPDATE_COMPLETE", polls + 1, 4));
      update.events.push(event(name, stack, "UPDATE_ROLLBACK_COMPLETE", polls + 1, 5));
      update.finalStatus = "UPDATE_ROLLBACK_COMPLETE";
    } else {
      update.events.push(event(db.id, db.type, "UPDATE_FAILED", polls + 1, 4, "Resource handler returned message: \"DB instance analytics is in the storage-optimization state; cannot modify\" (HandlerErrorCode: NotStabilized)"));
      update.events.push(event(name, stack, "UPDATE_ROLLBACK_FAILED", polls + 1, 5, `The following resource(s) failed to update: [${db.id}].`));
      update.finalStatus = "UPDATE_ROLLBACK_FAILED";
    }
    tracked.set(name, update);
    return { status: 200, headers: { "content-type": "text/xml" }, body: Buffer.from(`<ExecuteChangeSetResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><ExecuteChangeSetResult/><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></ExecuteChangeSetResponse>`) };
  }

  /** The status the stack reports at poll `n` of a tracked update (undefined: moto's own). */
  function statusAt(update: TrackedUpdate, n: number): string | undefined {
    if (update.outcome === "complete") return n < update.polls ? "UPDATE_IN_PROGRESS" : undefined;
    if (n < update.polls) return "UPDATE_IN_PROGRESS";
    if (n === update.polls) return "UPDATE_ROLLBACK_IN_PROGRESS";
    return update.finalStatus;
  }

  async function describeStacks(name: string, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const reply = await forward();
    if (reply.status !== 200) return reply;
    const update = tracked.get(name);
    let status = pinned.get(name);
    if (update) {
      status = statusAt(update, update.seenPolls) ?? status;
      if (!held.has(name)) update.seenPolls += 1;
      if (update.outcome !== "complete" && update.seenPolls > update.polls + 1) pinned.set(name, update.finalStatus);
    }
    if (!status) return reply;
    return { ...reply, body: Buffer.from(reply.body.toString().replace(/<StackStatus>[^<]*<\/StackStatus>/, `<StackStatus>${status}</StackStatus>`)) };
  }

  async function describeEvents(name: string, forward: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const reply = await forward();
    const update = tracked.get(name);
    if (reply.status !== 200 || !update) return reply;
    const text = reply.body.toString();
    const open = text.indexOf("<StackEvents>") + "<StackEvents>".length;
    let members = text.slice(open, text.indexOf("</StackEvents>")).split(/(?=<member>)/).filter((m) => m.startsWith("<member>"));
    const visiblePoll = Math.max(0, update.seenPolls - 1);
    const inProgress = statusAt(update, visiblePoll) === "UPDATE_IN_PROGRESS" && update.outcome === "complete";
    if (update.outcome === "complete") {
      // moto's two newest events are this update's UPDATE_COMPLETE and UPDATE_IN_PROGRESS.
      const mine = members.slice(0, 2).map((m) => (update.token && !m.includes("<ClientRequestToken>") ? m.replace("</ResourceStatus>", `</ResourceStatus><ClientRequestToken>${update.token}</ClientRequestToken>`) : m));
      members = [...(inProgress ? mine.slice(1) : mine), ...members.slice(2)];
    }
    const synthetic = update.events
      .filter((e) => e.atPoll <= visiblePoll)
      .sort((a, b) => b.time.getTime() - a.time.getTime())
      .map((e) => memberXml(update, e));
    // Newest first: the stack's final event (if shown) stays on top.
    const [top, ...rest] = members;
    const ordered = update.outcome === "complete" && !inProgress && top ? [top, ...synthetic, ...rest] : [...synthetic, ...members];
    const body = text.slice(0, open) + ordered.join("") + text.slice(text.indexOf("</StackEvents>"));
    return { ...reply, body: Buffer.from(body) };
  }

  function memberXml(update: TrackedUpdate, e: SyntheticEvent): string {
    const stackId = update.stackId ?? update.stackName;
    const physical = e.logicalId === update.stackName ? stackId : e.logicalId;
    return `<member><StackId>${stackId}</StackId><EventId>${e.id}</EventId><StackName>${update.stackName}</StackName><LogicalResourceId>${e.logicalId}</LogicalResourceId><PhysicalResourceId>${escapeXml(physical)}</PhysicalResourceId><ResourceType>${e.type}</ResourceType><Timestamp>${e.time.toISOString()}</Timestamp><ResourceStatus>${e.status}</ResourceStatus>${e.reason ? `<ResourceStatusReason>${escapeXml(e.reason)}</ResourceStatusReason>` : ""}${update.token ? `<ClientRequestToken>${update.token}</ClientRequestToken>` : ""}</member>`;
  }

  return {
    setUpdatePolls: (polls) => void (defaultPolls = polls),
    armUpdate: (stackName, outcome, polls) => void armed.set(stackName, { outcome, polls }),
    holdUpdate: (stackName) => void held.add(stackName),
    releaseUpdate: (stackName) => void held.delete(stackName),
    pinStatus: (stackName, status) => void (status === undefined ? pinned.delete(stackName) : pinned.set(stackName, status)),
    playMaintenance(p) {
      play = p;
      switchedOn = false;
      pollsSinceSwitch = 0;
      idleReached = false;
    },
    switchMaintenanceOn: () => void (switchedOn = true),
    get maintenanceOn() {
      return switchedOn;
    },
    executions: (stackName) => executed.get(stackName) ?? 0,
    reset() {
      armed.clear();
      tracked.clear();
      pinned.clear();
      executed.clear();
      held.clear();
      play = undefined;
      switchedOn = false;
      defaultPolls = 3;
    },
    remove,
  };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function unescapeXml(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

/** A Python literal of dicts, lists, strings, numbers, booleans and None as JSON (already JSON stays as it is). */
export function pythonReprToJson(repr: string): string {
  try {
    JSON.parse(repr);
    return repr;
  } catch {
    /* a repr */
  }
  let out = "";
  for (let i = 0; i < repr.length; i++) {
    const c = repr[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      let value = "";
      while (j < repr.length && repr[j] !== c) {
        if (repr[j] === "\\" && j + 1 < repr.length) {
          value += repr[j + 1];
          j += 2;
        } else value += repr[j++];
      }
      out += JSON.stringify(value);
      i = j;
    } else if (repr.startsWith("True", i)) {
      out += "true";
      i += 3;
    } else if (repr.startsWith("False", i)) {
      out += "false";
      i += 4;
    } else if (repr.startsWith("None", i)) {
      out += "null";
      i += 3;
    } else out += c;
  }
  return out;
}

function queryError(status: number, code: string, message: string): UpstreamReply {
  return {
    status,
    headers: { "content-type": "text/xml" },
    body: Buffer.from(`<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`),
  };
}
