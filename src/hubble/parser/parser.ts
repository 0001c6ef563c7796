/**
 * Turns datapath event records into flows in two steps. ingest(), on every event, does only
 * what cannot wait: it checks the record and resolves both endpoints from the agent's caches
 * now (a pod deleted a moment later must keep its name). The Flow message is built from the kept
 * record when someone reads it: most stored flows are overwritten unread, and a 176-byte record
 * plus two shared references is far smaller than a Flow's object tree.
 */
import { FlowType, MonitorEventType, TraceObservationPoint, Verdict, type Flow } from "../flow/types.ts";
import type { KtimeToWall } from "./clock.ts";
import type { EndpointResolver } from "./endpoints.ts";
import { dropReasonOf, endpoint, isReplyOf, RecordFacts, TRACE_REASON_UNKNOWN, TRACE_TO_NETWORK, type Enrichment } from "./facts.ts";
import { decodePacket, ipv4Text, readU32 } from "./packet.ts";
import { decodeEventRecord, EVENT_HEADER_LEN, EVENT_VERSION, EventRecordError, type EventRecord } from "./record.ts";
import { summarize } from "./summary.ts";

/** Datapath trace point 0 (to a local endpoint) is TO_ENDPOINT on the wire. */
const TRACE_TO_LXC = 0;

/** Offsets in the record: the packet's Ethernet type and IPv4 header. */
const ETHERTYPE_AT = EVENT_HEADER_LEN + 12;
const IPV4_AT = EVENT_HEADER_LEN + 14;
const IPV4_MIN_CAPTURE = 14 + 20;

export interface FlowParserOptions {
  nodeName: string;
  resolver: EndpointResolver;
  clock: KtimeToWall;
  /** Flow ids from the ingest sequence number; by default a UUID unique to this parser and number. */
  uuid?: (sequence: number) => string;
}

/**
 * Records are copied into large shared buffers (header and capture only), so a stored record
 * costs its bytes and not an ArrayBuffer of its own. Flows leave the ring in the order they came,
 * so a buffer is freed soon after its last flow is overwritten.
 */
const SLAB_BYTES = 256 * 1024;

/** A stored flow: the record and the endpoints as resolved at ingest; `flow` builds the message. */
export class FlowEvent {
  constructor(
    private readonly slab: Uint8Array,
    private readonly offset: number,
    private readonly length: number,
    readonly source: Enrichment | undefined,
    readonly destination: Enrichment | undefined,
    readonly sequence: number,
    private readonly parser: FlowParser,
  ) {}

  /** The record as the datapath wrote it (header and captured bytes). */
  get record(): Uint8Array {
    return this.slab.subarray(this.offset, this.offset + this.length);
  }

  /** A new Flow message on every read (callers may keep it). */
  get flow(): Flow {
    return this.parser.build(this);
  }

  /** The fields flow listeners read, decoded from the record on demand (see RecordFacts). */
  facts(): RecordFacts {
    return new RecordFacts(this.record, this.source, this.destination);
  }

  /** The endpoints' namespaces, without building the flow. */
  namespaces(): [string | undefined, string | undefined] {
    return [this.source?.namespace || undefined, this.destination?.namespace || undefined];
  }
}

export class FlowParser {
  private readonly uuid: (sequence: number) => string;
  private sequence = 0;
  private slab = new Uint8Array(SLAB_BYTES);
  private slabUsed = 0;
  /** One enrichment per identity-labels list the resolver hands out, so ingest allocates none. */
  private readonly byLabels = new WeakMap<readonly string[], Enrichment>();

  constructor(private readonly options: FlowParserOptions) {
    this.uuid = options.uuid ?? sequentialUuids();
  }

  /** Parses one ring-buffer record; throws EventRecordError for records that are not flows. */
  parse(bytes: Uint8Array): Flow {
    return this.ingest(bytes).flow;
  }

  /** Checks a record and resolves its endpoints; throws EventRecordError for records that are not flows. */
  ingest(bytes: Uint8Array): FlowEvent {
    if (bytes.length < EVENT_HEADER_LEN) throw new EventRecordError(`record of ${bytes.length} bytes is shorter than its ${EVENT_HEADER_LEN}-byte header`);
    const version = bytes[14]! | (bytes[15]! << 8);
    if (version !== EVENT_VERSION) throw new EventRecordError(`record version ${version}, expected ${EVENT_VERSION}`);
    const type = bytes[0]!;
    if (type !== MonitorEventType.DROP && type !== MonitorEventType.TRACE && type !== MonitorEventType.POLICY_VERDICT) throw new EventRecordError(`event type ${type} is not a flow event`);
    const capture = Math.min(bytes[12]! | (bytes[13]! << 8), bytes.length - EVENT_HEADER_LEN);
    let sourceIp: string | undefined;
    let destinationIp: string | undefined;
    if (capture >= IPV4_MIN_CAPTURE && bytes[ETHERTYPE_AT] === 0x08 && bytes[ETHERTYPE_AT + 1] === 0x00 && bytes[IPV4_AT]! >> 4 === 4) {
      const masqueradedFrom = type === MonitorEventType.TRACE && bytes[1] === TRACE_TO_NETWORK ? readU32(bytes, 40) : 0;
      sourceIp = ipv4Text(masqueradedFrom || readU32(bytes, IPV4_AT + 12));
      destinationIp = ipv4Text(readU32(bytes, IPV4_AT + 16));
    } else if (capture >= 14) {
      const ip = decodePacket(bytes.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + capture)).ip;
      sourceIp = ip?.source;
      destinationIp = ip?.destination;
    }
    const source = this.enrich(sourceIp, readU32le(bytes, 16));
    const destination = this.enrich(destinationIp, readU32le(bytes, 20));
    const length = EVENT_HEADER_LEN + capture;
    if (this.slabUsed + length > SLAB_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const offset = this.slabUsed;
    this.slab.set(length === bytes.length ? bytes : bytes.subarray(0, length), offset);
    // Keep every record 8-byte aligned, as the header's 64-bit field expects.
    this.slabUsed = (offset + length + 7) & ~7;
    return new FlowEvent(this.slab, offset, length, source, destination, this.sequence++, this);
  }

  /** The Flow message of a stored event. */
  build(event: FlowEvent): Flow {
    return this.toFlow(decodeEventRecord(event.record), event);
  }

  /**
   * A local endpoint (live or just deleted) is named by the agent's record of it, whatever the
   * identity; the flow's identity stays the datapath's, which is what policy saw (as upstream).
   * Other addresses get the labels of the datapath's identity.
   */
  private enrich(ip: string | undefined, identity: number): Enrichment | undefined {
    const { resolver } = this.options;
    const info = ip === undefined ? undefined : resolver.endpointByIp(ip);
    if (info !== undefined) return info;
    const labels = resolver.identityLabels(identity);
    if (labels === undefined) return undefined;
    const id = identity;
    const known = this.byLabels.get(labels);
    if (known !== undefined && known.identity === id) return known;
    const enrichment = { id: 0, identity: id, labels };
    this.byLabels.set(labels, enrichment);
    return enrichment;
  }

  private toFlow(r: EventRecord, event: FlowEvent): Flow {
    // A denying policy verdict is a drop as Hubble shows it (upstream: verdict < 0 -> DROPPED).
    const isDrop = r.type === MonitorEventType.DROP || dropReasonOf(r.type, r.subtype, r.reason) !== 0;
    const packet = decodePacket(r.packet);
    const ip = packet.ip;
    if (ip && r.type === MonitorEventType.TRACE && r.subtype === TRACE_TO_NETWORK && r.origIp4 !== 0) {
      // Masqueraded on the way out: the flow is the pod's, the packet shows the node address.
      ip.source_xlated = ip.source;
      ip.source = ipv4Text(r.origIp4);
    }
    const egress = r.direction === 2;
    const flow: Flow = {
      time: this.options.clock(r.ktime),
      uuid: this.uuid(event.sequence),
      verdict: isDrop ? Verdict.DROPPED : Verdict.FORWARDED,
    };
    if (packet.ethernet) flow.ethernet = packet.ethernet;
    if (ip) flow.IP = ip;
    if (packet.l4) flow.l4 = packet.l4;
    // The program acted for `sourceEndpoint`: the sender on egress, the receiver on ingress.
    flow.source = endpoint(event.source, r.srcIdentity, egress ? r.sourceEndpoint : 0);
    flow.destination = endpoint(event.destination, r.dstIdentity, r.dstEndpoint || (egress ? 0 : r.sourceEndpoint));
    flow.Type = FlowType.L3_L4;
    flow.node_name = this.options.nodeName;
    flow.event_type = { type: r.type, sub_type: r.subtype };
    flow.traffic_direction = r.direction;
    flow.interface = { index: r.ifindex };
    flow.Summary = summarize(packet.l4, ip !== undefined);
    if (r.policy) {
      flow.policy_match_type = r.policy.matchType;
      if (r.policy.dropReason !== 0) {
        flow.drop_reason = r.policy.dropReason;
        flow.drop_reason_desc = r.policy.dropReason;
      }
    } else if (isDrop) {
      flow.drop_reason = r.subtype;
      flow.drop_reason_desc = r.subtype;
      if (r.file) flow.file = r.file;
    } else {
      flow.trace_observation_point = r.subtype === TRACE_TO_LXC ? TraceObservationPoint.TO_ENDPOINT : r.subtype;
      // flow.TraceReason is the datapath's reason plus one (0 is "unknown" on the wire).
      if (r.reason !== TRACE_REASON_UNKNOWN) flow.trace_reason = r.reason + 1;
    }
    // As the record's flow facts have it (facts.ts).
    const reply = isReplyOf(r.type, r.subtype, r.reason, r.reply ? 0x04 : 0);
    if (reply !== undefined) flow.is_reply = { value: reply.value };
    return flow;
  }
}

function readU32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** The record's bpf_ktime_get_ns() in seconds (a double: exact enough to bucket by second). */
export function recordSeconds(record: Uint8Array): number {
  return Math.floor((readU32le(record, 36) * 2 ** 32 + readU32le(record, 32)) / 1e9);
}

/** Version-4-shaped UUIDs: random per parser, the sequence number in the last 48 bits. */
function sequentialUuids(): (sequence: number) => string {
  const random = crypto.getRandomValues(new Uint8Array(10));
  random[6] = (random[6]! & 0x0f) | 0x40;
  random[8] = (random[8]! & 0x3f) | 0x80;
  const hex = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  const prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-`;
  return (sequence) => prefix + sequence.toString(16).padStart(12, "0");
}
