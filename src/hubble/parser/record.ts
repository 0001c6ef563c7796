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
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(14, true);
  if (version !== EVENT_VERSION) throw new EventRecordError(`record version ${version}, expected ${EVENT_VERSION}`);
  // len_cap is trusted only as far as the record reaches: the rest of the data area is stale.
  const cap = Math.min(v.getUint16(12, true), bytes.length - EVENT_HEADER_LEN);
  const type = v.getUint8(0);
  const flags = v.getUint8(27);
  const direction = flags & FLAG_DIR_MASK;
  const srcIdentity = v.getUint32(16, true);
  const dstIdentity = v.getUint32(20, true);
  // line and file are a drop's source location, a policy verdict's port and protocol.
  const fileName = type === TYPE_DROP ? SOURCE_FILES[v.getUint8(46)] : undefined;
  const policy: PolicyVerdictInfo | undefined =
    type === TYPE_POLICY_VERDICT
      ? {
          dropReason: v.getUint8(26),
          matchType: (flags & FLAG_MATCH_MASK) >> FLAG_MATCH_SHIFT,
          remoteIdentity: direction === 1 ? srcIdentity : dstIdentity,
          dport: v.getUint16(44, true),
          proto: v.getUint8(46),
        }
      : undefined;
  return {
    type,
    subtype: v.getUint8(1),
    sourceEndpoint: v.getUint16(2, true),
    hash: v.getUint32(4, true),
    origLength: v.getUint32(8, true),
    srcIdentity,
    dstIdentity,
    dstEndpoint: v.getUint16(24, true),
    reason: v.getUint8(26),
    direction,
    reply: (flags & FLAG_REPLY) !== 0,
    ifindex: v.getUint32(28, true),
    ktime: v.getBigUint64(32, true),
    origIp4: v.getUint32(40, false),
    ...(fileName !== undefined ? { file: { name: fileName, line: v.getUint16(44, true) } } : {}),
    ...(policy ? { policy } : {}),
    packet: bytes.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + cap),
  };
}
