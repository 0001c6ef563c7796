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
  const b = bytes;
  const version = u16le(b, 14);
  if (version !== EVENT_VERSION) throw new EventRecordError(`record version ${version}, expected ${EVENT_VERSION}`);
  // len_cap is trusted only as far as the record reaches: the rest of the data area is stale.
  const cap = Math.min(u16le(b, 12), b.length - EVENT_HEADER_LEN);
  const flags = b[27]!;
  const record: EventRecord = {
    type: b[0]!,
    subtype: b[1]!,
    sourceEndpoint: u16le(b, 2),
    hash: u32le(b, 4),
    origLength: u32le(b, 8),
    srcIdentity: u32le(b, 16),
    dstIdentity: u32le(b, 20),
    dstEndpoint: u16le(b, 24),
    reason: b[26]!,
    direction: flags & FLAG_DIR_MASK,
    reply: (flags & FLAG_REPLY) !== 0,
    ifindex: u32le(b, 28),
    ktime: (BigInt(u32le(b, 36)) << 32n) | BigInt(u32le(b, 32)),
    origIp4: ((b[40]! << 24) | (b[41]! << 16) | (b[42]! << 8) | b[43]!) >>> 0,
    packet: b.subarray(EVENT_HEADER_LEN, EVENT_HEADER_LEN + cap),
  };
  const fileName = SOURCE_FILES[b[46]!];
  if (fileName !== undefined) record.file = { name: fileName, line: u16le(b, 44) };
  return record;
}

function u16le(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}
