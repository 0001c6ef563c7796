/**
 * What the parser decides from a record's header (verdict, drop reason, is_reply, the endpoints'
 * ids), shared by the full Flow (parser.ts) and RecordFacts, the on-demand view of a stored
 * record that flow listeners get. Header offsets: bpf/lib/events.h (record.ts decodes it whole).
 */
import type { FlowFacts } from "../flow/facts.ts";
import { MonitorEventType, Verdict, type Endpoint, type Flow } from "../flow/types.ts";
import type { EndpointInfo } from "./endpoints.ts";
import { decodePacket, decodePacketL4, ipv4Text } from "./packet.ts";
import { EVENT_HEADER_LEN } from "./record.ts";

/** What ingest learned about one side of a flow: a local endpoint, or just an identity's labels. */
export type Enrichment = Pick<EndpointInfo, "id" | "identity"> & Partial<Pick<EndpointInfo, "namespace" | "podName" | "labels">>;

/** Datapath trace reasons (bpf/lib/trace.h), i.e. conntrack states. */
const TRACE_REASON_REPLY = 2;
export const TRACE_REASON_UNKNOWN = 5;
export const TRACE_TO_NETWORK = 11;
/** Policy drops: the datapath judges only packets that are not replies (bpf/README.md, Policy). */
const POLICY_DROPS = new Set([133, 181]);
const FLAG_DIR_MASK = 0x03;
const FLAG_REPLY = 0x04;

const NOT_REPLY = Object.freeze({ value: false });
const REPLY = Object.freeze({ value: true });

/** The drop reason of a drop, or of a denying policy verdict; 0 for anything forwarded. */
export function dropReasonOf(type: number, subtype: number, reasonByte: number): number {
  if (type === MonitorEventType.DROP) return subtype;
  if (type === MonitorEventType.POLICY_VERDICT) return reasonByte;
  return 0;
}

/**
 * is_reply as upstream sets it: allowing policy verdicts and policy drops are never replies;
 * traces know when conntrack knew; anything else leaves it unset.
 */
export function isReplyOf(type: number, subtype: number, reasonByte: number, flags: number): { value: boolean } | undefined {
  if (type === MonitorEventType.POLICY_VERDICT) return reasonByte === 0 ? NOT_REPLY : undefined;
  if (type === MonitorEventType.DROP) return POLICY_DROPS.has(subtype) ? NOT_REPLY : undefined;
  if (reasonByte === TRACE_REASON_UNKNOWN) return undefined;
  return reasonByte === TRACE_REASON_REPLY || (flags & FLAG_REPLY) !== 0 ? REPLY : NOT_REPLY;
}

/** A flow side: the datapath's identity wins, then the enrichment's; names and labels from the enrichment. */
export function endpoint(enrichment: Enrichment | undefined, identity: number, endpointId: number): Endpoint {
  const ep: Endpoint = { ID: endpointId || enrichment?.id || 0, identity: identity || enrichment?.identity || 0 };
  if (enrichment === undefined) return ep;
  if (enrichment.namespace) ep.namespace = enrichment.namespace;
  if (enrichment.podName) ep.pod_name = enrichment.podName;
  // Shared with the resolver's cache: stored flows are read, never changed.
  if (enrichment.labels !== undefined) ep.labels = enrichment.labels as string[];
  return ep;
}

function u16le(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/**
 * A stored record seen as FlowFacts: header fields are read from the bytes on each access, the
 * packet's L4 header and addresses and the endpoints decoded once when first asked for. The
 * bytes are the stored record's (parser slabs are never reused), so a kept view stays valid.
 */
export class RecordFacts implements FlowFacts {
  private l4Decoded = false;
  private l4Value: Flow["l4"];
  private ipDecoded = false;
  private ipValue: Flow["IP"];
  private eventTypeValue: { type: number; sub_type: number } | undefined;
  private sourceValue: Endpoint | undefined;
  private destinationValue: Endpoint | undefined;
  readonly source_names = undefined;
  readonly destination_names = undefined;

  constructor(
    private readonly record: Uint8Array,
    private readonly sourceEnrichment: Enrichment | undefined,
    private readonly destinationEnrichment: Enrichment | undefined,
  ) {}

  get verdict(): number {
    const b = this.record;
    return dropReasonOf(b[0]!, b[1]!, b[26]!) !== 0 || b[0] === MonitorEventType.DROP ? Verdict.DROPPED : Verdict.FORWARDED;
  }

  get drop_reason_desc(): number | undefined {
    const b = this.record;
    return dropReasonOf(b[0]!, b[1]!, b[26]!) || undefined;
  }

  get event_type(): { type: number; sub_type: number } {
    return (this.eventTypeValue ??= { type: this.record[0]!, sub_type: this.record[1]! });
  }

  get traffic_direction(): number {
    return this.record[27]! & FLAG_DIR_MASK;
  }

  get is_reply(): { value: boolean } | undefined {
    const b = this.record;
    return isReplyOf(b[0]!, b[1]!, b[26]!, b[27]!);
  }

  get l4(): Flow["l4"] {
    if (!this.l4Decoded) {
      const b = this.record;
      this.l4Value = decodePacketL4(b, EVENT_HEADER_LEN, EVENT_HEADER_LEN + Math.min(u16le(b, 12), b.length - EVENT_HEADER_LEN));
      this.l4Decoded = true;
    }
    return this.l4Value;
  }

  get IP(): Flow["IP"] {
    if (!this.ipDecoded) {
      const ip = decodePacket(this.packet()).ip;
      const b = this.record;
      const origIp4 = ((b[40]! << 24) | (b[41]! << 16) | (b[42]! << 8) | b[43]!) >>> 0;
      // Masqueraded on the way out: the flow is the pod's (as the full Flow says).
      if (ip && b[0] === MonitorEventType.TRACE && b[1] === TRACE_TO_NETWORK && origIp4 !== 0) {
        ip.source_xlated = ip.source;
        ip.source = ipv4Text(origIp4);
      }
      this.ipValue = ip;
      this.ipDecoded = true;
    }
    return this.ipValue;
  }

  get source(): Endpoint {
    const b = this.record;
    const egress = (b[27]! & FLAG_DIR_MASK) === 2;
    return (this.sourceValue ??= endpoint(this.sourceEnrichment, u32le(b, 16), egress ? u16le(b, 2) : 0));
  }

  get destination(): Endpoint {
    const b = this.record;
    const egress = (b[27]! & FLAG_DIR_MASK) === 2;
    return (this.destinationValue ??= endpoint(this.destinationEnrichment, u32le(b, 20), u16le(b, 24) || (egress ? 0 : u16le(b, 2))));
  }

  private packet(): Uint8Array {
    const b = this.record;
    return b.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + Math.min(u16le(b, 12), b.length - EVENT_HEADER_LEN));
  }
}
