/**
 * One record of the cilium_events ring buffer (bpf/lib/events.h): a 48-byte header, little-endian
 * except orig_ip4, followed by `len_cap` bytes of the packet from its Ethernet header.
 */

export const EVENT_HEADER_LEN = 48;
export const EVENT_VERSION = 1;

/** event_hdr.flags */
const FLAG_DIR_MASK = 0x03;
const FLAG_REPLY = 0x04;

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
  packet: Uint8Array;
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
  const flags = v.getUint8(27);
  const fileId = v.getUint8(46);
  const fileName = SOURCE_FILES[fileId];
  return {
    type: v.getUint8(0),
    subtype: v.getUint8(1),
    sourceEndpoint: v.getUint16(2, true),
    hash: v.getUint32(4, true),
    origLength: v.getUint32(8, true),
    srcIdentity: v.getUint32(16, true),
    dstIdentity: v.getUint32(20, true),
    dstEndpoint: v.getUint16(24, true),
    reason: v.getUint8(26),
    direction: flags & FLAG_DIR_MASK,
    reply: (flags & FLAG_REPLY) !== 0,
    ifindex: v.getUint32(28, true),
    ktime: v.getBigUint64(32, true),
    origIp4: v.getUint32(40, false),
    ...(fileName !== undefined ? { file: { name: fileName, line: v.getUint16(44, true) } } : {}),
    packet: bytes.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + cap),
  };
}
