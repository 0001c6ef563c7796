/**
 * One record of the cilium_events ring buffer (bpf/lib/events.h): a 48-byte header, little-endian
 * except orig_ip4, followed by `len_cap` bytes of the packet from its Ethernet header.
 */

export const EVENT_HEADER_LEN = 48;
export const EVENT_VERSION = 1;

/** event_hdr.flags */
const FLAG_DIR_MASK = 0x03;
const FLAG_REPLY = 0x04;
/** Policy verdicts: the match type in bits 3-5 (where upstream keeps it). */
const FLAG_MATCH_MASK = 0x38;
const FLAG_MATCH_SHIFT = 3;

/** event_hdr.type values this datapath writes (upstream's monitor message types). */
const TYPE_DROP = 1;
const TYPE_POLICY_VERDICT = 5;

/** event_hdr.file: the program file a drop happened in. */
const SOURCE_FILES: Record<number, string> = { 1: "bpf_lxc.c", 2: "bpf_host.c" };

export interface EventRecord {
  type: number;
  /** Drop reason or trace observation point. */
  subtype: number;
  /** Endpoint id the program acted for (0: host or unknown). */
  sourceEndpoint: number;
  hash: number;
  origLength: number;
  srcIdentity: number;
  dstIdentity: number;
  /** Destination endpoint id, 0 if none. */
  dstEndpoint: number;
  /** Traces: conntrack state (0 new, 1 established, 2 reply, 3 related, 5 unknown). */
  reason: number;
  /** 1 ingress, 2 egress, 0 unknown. */
  direction: number;
  reply: boolean;
  ifindex: number;
  /** bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds. */
  ktime: bigint;
  /** Address before NAT as an unsigned 32-bit number, 0 if untranslated. */
  origIp4: number;
  /** Drops: where in the datapath. */
  file?: { name: string; line: number };
  /** Policy verdicts (type 5): what the policy of endpoint `sourceEndpoint` decided. */
  policy?: PolicyVerdictInfo;
  packet: Uint8Array;
}

/** The verdict fields of a policy-verdict record (bpf/lib/events.h, "Policy verdicts"). */
export interface PolicyVerdictInfo {
  /** 0: allowed; else the drop reason (133 no entry allows, 181 a deny entry matched). */
  dropReason: number;
  /** Upstream's PolicyMatchType: 0 none, 1 L3-Only, 2 L3-L4, 3 L4-Only, 4 all, 5 L3-Proto, 6 Proto-Only. */
  matchType: number;
  /** The identity on the other side: the source on ingress, the destination on egress. */
  remoteIdentity: number;
  /** Destination port as policy saw it (ICMP: type); 0 when the packet had none. */
  dport: number;
  /** IP protocol. */
  proto: number;
}

export class EventRecordError extends Error {
  override name = "EventRecordError";
}

export function decodeEventRecord(bytes: Uint8Array): EventRecord {
  if (bytes.length < EVENT_HEADER_LEN) throw new EventRecordError(`record of ${bytes.length} bytes is shorter than its ${EVENT_HEADER_LEN}-byte header`);
  const b = bytes;
  const version = u16le(b, 14);
  if (version !== EVENT_VERSION) throw new EventRecordError(`record version ${version}, expected ${EVENT_VERSION}`);
  // len_cap is trusted only as far as the record reaches: the rest of the data area is stale.
  const cap = Math.min(u16le(b, 12), b.length - EVENT_HEADER_LEN);
  const type = b[0]!;
  const flags = b[27]!;
  const direction = flags & FLAG_DIR_MASK;
  const record: EventRecord = {
    type,
    subtype: b[1]!,
    sourceEndpoint: u16le(b, 2),
    hash: u32le(b, 4),
    origLength: u32le(b, 8),
    srcIdentity: u32le(b, 16),
    dstIdentity: u32le(b, 20),
    dstEndpoint: u16le(b, 24),
    reason: b[26]!,
    direction,
    reply: (flags & FLAG_REPLY) !== 0,
    ifindex: u32le(b, 28),
    ktime: (BigInt(u32le(b, 36)) << 32n) | BigInt(u32le(b, 32)),
    origIp4: ((b[40]! << 24) | (b[41]! << 16) | (b[42]! << 8) | b[43]!) >>> 0,
    packet: b.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + cap),
  };
  // line and file are a drop's source location, a policy verdict's port and protocol.
  if (type === TYPE_DROP) {
    const fileName = SOURCE_FILES[b[46]!];
    if (fileName !== undefined) record.file = { name: fileName, line: u16le(b, 44) };
  } else if (type === TYPE_POLICY_VERDICT) {
    record.policy = {
      dropReason: b[26]!,
      matchType: (flags & FLAG_MATCH_MASK) >> FLAG_MATCH_SHIFT,
      remoteIdentity: direction === 1 ? record.srcIdentity : record.dstIdentity,
      dport: u16le(b, 44),
      proto: b[46]!,
    };
  }
  return record;
}

function u16le(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}
