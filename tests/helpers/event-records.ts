/**
 * cilium_events records built byte for byte as bpf/lib/events.h lays them out (176 bytes: the
 * 48-byte header, then the packet's first bytes from its Ethernet header), for pushing realistic
 * events through the agent's monitor hub and the Hubble parser without a kernel.
 */

import { monotonicNs } from "../../src/datapath/clock.ts";

export const EVENT_RECORD_LEN = 176;
export const EVENT_DROP = 1;
export const EVENT_TRACE = 4;
/** Datapath trace points (bpf/lib/trace.h). */
export const TRACE_TO_LXC = 0;
export const TRACE_FROM_LXC = 5;
export const DROP_POLICY = 133;
export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;

export interface EventHeader {
  type: number;
  subtype: number;
  /** Endpoint id the program acted for. */
  source?: number;
  srcIdentity?: number;
  dstIdentity?: number;
  dstId?: number;
  /** Trace: conntrack state (0 new, 1 established, 2 reply, 5 unknown). */
  reason?: number;
  /** Direction bits (1 ingress, 2 egress) | 0x04 reply. */
  flags?: number;
  ifindex?: number;
  ktime?: bigint;
  /** Drops: line and file id (1 bpf_lxc.c). */
  line?: number;
  file?: number;
}

export function eventRecord(h: EventHeader, packet: Uint8Array): Uint8Array {
  const buf = new Uint8Array(EVENT_RECORD_LEN);
  const v = new DataView(buf.buffer);
  const cap = Math.min(packet.length, 128);
  v.setUint8(0, h.type);
  v.setUint8(1, h.subtype);
  v.setUint16(2, h.source ?? 0, true);
  v.setUint32(4, 0x5eed1234, true);
  v.setUint32(8, packet.length, true);
  v.setUint16(12, cap, true);
  v.setUint16(14, 1, true);
  v.setUint32(16, h.srcIdentity ?? 0, true);
  v.setUint32(20, h.dstIdentity ?? 0, true);
  v.setUint16(24, h.dstId ?? 0, true);
  v.setUint8(26, h.reason ?? 0);
  v.setUint8(27, h.flags ?? 0);
  v.setUint32(28, h.ifindex ?? 0, true);
  v.setBigUint64(32, h.ktime ?? monotonicNs(), true);
  v.setUint16(44, h.line ?? 0, true);
  v.setUint8(46, h.file ?? 0);
  buf.set(packet.subarray(0, cap), 48);
  return buf;
}

const octets = (ip: string) => ip.split(".").map(Number);

export interface TcpPacket {
  srcMac?: number[];
  dstMac?: number[];
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** TCP flag bits: 0x02 SYN, 0x10 ACK, 0x12 SYN-ACK, 0x01 FIN, 0x04 RST. */
  flags: number;
  /** Payload bytes after the headers (the capture keeps at most 128 bytes in all). */
  payload?: number;
}

/** Ethernet + IPv4 + TCP (no options) + payload, as the datapath captures it. */
export function tcpPacket(p: TcpPacket): Uint8Array {
  const payload = p.payload ?? 0;
  const bytes = new Uint8Array(14 + 20 + 20 + payload);
  bytes.set(p.dstMac ?? [0x0a, 0x58, 0x0a, 0xd2, 0x00, 0x02], 0);
  bytes.set(p.srcMac ?? [0x0a, 0x58, 0x0a, 0xd2, 0x00, 0x01], 6);
  bytes[12] = 0x08;
  bytes[13] = 0x00;
  const ip = new DataView(bytes.buffer, 14);
  ip.setUint8(0, 0x45);
  ip.setUint16(2, 40 + payload);
  ip.setUint16(4, 0x1234);
  ip.setUint16(6, 0x4000);
  ip.setUint8(8, 64);
  ip.setUint8(9, 6);
  bytes.set(octets(p.src), 14 + 12);
  bytes.set(octets(p.dst), 14 + 16);
  const tcp = new DataView(bytes.buffer, 34);
  tcp.setUint16(0, p.sport);
  tcp.setUint16(2, p.dport);
  tcp.setUint32(4, 1);
  tcp.setUint8(12, 0x50);
  tcp.setUint8(13, p.flags);
  tcp.setUint16(14, 64240);
  return bytes;
}

/** Ethernet + IPv4 + ICMP echo request. */
export function icmpEchoPacket(src: string, dst: string): Uint8Array {
  const bytes = new Uint8Array(14 + 20 + 8 + 56);
  bytes.set([0x0a, 0x58, 0x0a, 0xd2, 0x00, 0x02, 0x0a, 0x58, 0x0a, 0xd2, 0x00, 0x01, 0x08, 0x00], 0);
  const ip = new DataView(bytes.buffer, 14);
  ip.setUint8(0, 0x45);
  ip.setUint16(2, 84);
  ip.setUint8(8, 64);
  ip.setUint8(9, 1);
  bytes.set(octets(src), 14 + 12);
  bytes.set(octets(dst), 14 + 16);
  bytes[34] = 8;
  return bytes;
}
