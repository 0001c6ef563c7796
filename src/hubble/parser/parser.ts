/**
 * Turns one datapath event record into a Flow: verdict, drop reason, event type, observation
 * point, direction, reply, addresses, L4, and both endpoints enriched through the resolver.
 */
import { formatIpv4 } from "../../net/ipv4.ts";
import { FlowType, MonitorEventType, TraceObservationPoint, Verdict, type Endpoint, type Flow } from "../flow/types.ts";
import type { KtimeToWall } from "./clock.ts";
import type { EndpointResolver } from "./endpoints.ts";
import { decodePacket } from "./packet.ts";
import { decodeEventRecord, EventRecordError, type EventRecord } from "./record.ts";
import { summarize } from "./summary.ts";

/** Datapath trace reasons (bpf/lib/trace.h), i.e. conntrack states. */
const TRACE_REASON_REPLY = 2;
const TRACE_REASON_UNKNOWN = 5;
/** Datapath trace point 0 (to a local endpoint) is TO_ENDPOINT on the wire. */
const TRACE_TO_LXC = 0;
const TRACE_TO_NETWORK = 11;
/** Policy drops: the datapath judges only packets that are not replies (bpf/README.md, Policy). */
const POLICY_DROPS = new Set([133, 181]);

export interface FlowParserOptions {
  nodeName: string;
  resolver: EndpointResolver;
  clock: KtimeToWall;
  /** Flow ids; randomUUID unless a test wants stable ones. */
  uuid?: () => string;
}

export class FlowParser {
  private readonly uuid: () => string;

  constructor(private readonly options: FlowParserOptions) {
    this.uuid = options.uuid ?? (() => crypto.randomUUID());
  }

  /** Parses one ring-buffer record; throws EventRecordError for records that are not flows. */
  parse(bytes: Uint8Array): Flow {
    const record = decodeEventRecord(bytes);
    if (record.type !== MonitorEventType.DROP && record.type !== MonitorEventType.TRACE && record.type !== MonitorEventType.POLICY_VERDICT) {
      throw new EventRecordError(`event type ${record.type} is not a flow event`);
    }
    return this.toFlow(record);
  }

  private toFlow(r: EventRecord): Flow {
    // A denying policy verdict is a drop as Hubble shows it (upstream: verdict < 0 -> DROPPED).
    const isDrop = r.type === MonitorEventType.DROP || (r.policy !== undefined && r.policy.dropReason !== 0);
    const packet = decodePacket(r.packet);
    const ip = packet.ip;
    if (ip && r.type === MonitorEventType.TRACE && r.subtype === TRACE_TO_NETWORK && r.origIp4 !== 0) {
      // Masqueraded on the way out: the flow is the pod's, the packet shows the node address.
      ip.source_xlated = ip.source;
      ip.source = formatIpv4(r.origIp4);
    }
    const egress = r.direction === 2;
    const flow: Flow = {
      time: this.options.clock(r.ktime),
      uuid: this.uuid(),
      verdict: isDrop ? Verdict.DROPPED : Verdict.FORWARDED,
      ...(packet.ethernet ? { ethernet: packet.ethernet } : {}),
      ...(ip ? { IP: ip } : {}),
      ...(packet.l4 ? { l4: packet.l4 } : {}),
      // The program acted for `sourceEndpoint`: the sender on egress, the receiver on ingress.
      source: this.endpoint(ip?.source, r.srcIdentity, egress ? r.sourceEndpoint : 0),
      destination: this.endpoint(ip?.destination, r.dstIdentity, r.dstEndpoint || (egress ? 0 : r.sourceEndpoint)),
      Type: FlowType.L3_L4,
      node_name: this.options.nodeName,
      event_type: { type: r.type, sub_type: r.subtype },
      traffic_direction: r.direction,
      interface: { index: r.ifindex },
      Summary: summarize(packet.l4, ip !== undefined),
    };
    if (r.policy) {
      flow.policy_match_type = r.policy.matchType;
      if (r.policy.dropReason !== 0) {
        flow.drop_reason = r.policy.dropReason;
        flow.drop_reason_desc = r.policy.dropReason;
      } else {
        // Allows are reported for the first packet of a connection, never for replies (upstream).
        flow.is_reply = { value: false };
      }
    } else if (isDrop) {
      flow.drop_reason = r.subtype;
      flow.drop_reason_desc = r.subtype;
      if (r.file) flow.file = r.file;
      if (POLICY_DROPS.has(r.subtype)) flow.is_reply = { value: false };
    } else {
      flow.trace_observation_point = r.subtype === TRACE_TO_LXC ? TraceObservationPoint.TO_ENDPOINT : r.subtype;
      if (r.reason !== TRACE_REASON_UNKNOWN) {
        // flow.TraceReason is the datapath's reason plus one (0 is "unknown" on the wire).
        flow.trace_reason = r.reason + 1;
        flow.is_reply = { value: r.reason === TRACE_REASON_REPLY || r.reply };
      }
    }
    return flow;
  }

  private endpoint(ip: string | undefined, identity: number, endpointId: number): Endpoint {
    const { resolver } = this.options;
    const info = ip === undefined ? undefined : resolver.endpointByIp(ip);
    // The datapath's identity is what policy saw; the resolver only fills what it lacks.
    const id = identity || info?.identity || 0;
    const ep: Endpoint = { ID: endpointId || info?.id || 0, identity: id };
    if (info && (info.identity === id || identity === 0)) {
      if (info.namespace) ep.namespace = info.namespace;
      if (info.podName) ep.pod_name = info.podName;
      ep.labels = [...info.labels];
    } else {
      const labels = resolver.identityLabels(id);
      if (labels) ep.labels = [...labels];
    }
    return ep;
  }
}
