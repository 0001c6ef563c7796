/**
 * Decodes the captured first bytes of a packet (Ethernet, IPv4 or IPv6 without extension
 * headers, TCP/UDP/SCTP/ICMP) into flow fields. Truncated headers yield what could be read:
 * a capture is at most 128 bytes and may be shorter.
 */
import { IPVersion, type Ethernet, type IP, type Layer4, type TCPFlags } from "../flow/types.ts";

const ETH_LEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_SCTP = 132;
const IPV6_HEADER_LEN = 40;

export interface DecodedPacket {
  ethernet?: Ethernet;
  ip?: IP;
  l4?: Layer4;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function mac(b: Uint8Array, off: number): string {
  return `${HEX[b[off]!]}:${HEX[b[off + 1]!]}:${HEX[b[off + 2]!]}:${HEX[b[off + 3]!]}:${HEX[b[off + 4]!]}:${HEX[b[off + 5]!]}`;
}

/**
 * Dotted text of an IPv4 address. A node sees the same few addresses over and over, so their
 * text is kept (bounded: a scan of many addresses just starts the cache afresh).
 */
const ipv4Texts = new Map<number, string>();
const IPV4_TEXTS_MAX = 1 << 16;

export function ipv4Text(address: number): string {
  let text = ipv4Texts.get(address);
  if (text === undefined) {
    text = `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
    if (ipv4Texts.size >= IPV4_TEXTS_MAX) ipv4Texts.clear();
    ipv4Texts.set(address, text);
  }
  return text;
}

/** RFC 5952 text of a 16-byte address (lowercase, longest zero run of 2+ groups as "::"). */
export function formatIpv6(b: Uint8Array, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Flags objects are shared between flows (nobody mutates a stored flow): one per flag byte and NS bit. */
const TCP_FLAGS = Array.from({ length: 512 }, (_, i) => Object.freeze(tcpFlags(i & 0xff, i > 0xff)));

function tcpFlags(bits: number, ns: boolean): TCPFlags {
  const f: TCPFlags = {};
  if (bits & 0x01) f.FIN = true;
  if (bits & 0x02) f.SYN = true;
  if (bits & 0x04) f.RST = true;
  if (bits & 0x08) f.PSH = true;
  if (bits & 0x10) f.ACK = true;
  if (bits & 0x20) f.URG = true;
  if (bits & 0x40) f.ECE = true;
  if (bits & 0x80) f.CWR = true;
  if (ns) f.NS = true;
  return f;
}

/** The L4 header at `off`, the capture ending at `end`. */
function decodeL4(b: Uint8Array, off: number, proto: number, end = b.length): Layer4 | undefined {
  const left = end - off;
  const ports = () => ({ source_port: (b[off]! << 8) | b[off + 1]!, destination_port: (b[off + 2]! << 8) | b[off + 3]! });
  switch (proto) {
    case IPPROTO_TCP:
      if (left < 14) return left >= 4 ? { TCP: ports() } : undefined;
      return {
        TCP: { source_port: (b[off]! << 8) | b[off + 1]!, destination_port: (b[off + 2]! << 8) | b[off + 3]!, flags: TCP_FLAGS[b[off + 13]! | ((b[off + 12]! & 0x01) << 8)]! },
      };
    case IPPROTO_UDP:
      return left >= 4 ? { UDP: ports() } : undefined;
    case IPPROTO_SCTP:
      return left >= 4 ? { SCTP: ports() } : undefined;
    case IPPROTO_ICMP:
      return left >= 2 ? { ICMPv4: { type: b[off]!, code: b[off + 1]! } } : undefined;
    case IPPROTO_ICMPV6:
      return left >= 2 ? { ICMPv6: { type: b[off]!, code: b[off + 1]! } } : undefined;
    default:
      return undefined;
  }
}

function decodeIpv4(b: Uint8Array, off: number): Pick<DecodedPacket, "ip" | "l4"> {
  if (b.length - off < 20 || b[off]! >> 4 !== 4) return {};
  const ip: IP = { source: ipv4Text(readU32(b, off + 12)), destination: ipv4Text(readU32(b, off + 16)), ipVersion: IPVersion.IPv4 };
  const ihl = (b[off]! & 0x0f) * 4;
  // Later fragments carry no L4 header.
  const fragOffset = ((b[off + 6]! << 8) | b[off + 7]!) & 0x1fff;
  if (ihl < 20 || fragOffset !== 0) return { ip };
  const l4 = decodeL4(b, off + ihl, b[off + 9]!);
  return l4 ? { ip, l4 } : { ip };
}

function decodeIpv6(b: Uint8Array, off: number): Pick<DecodedPacket, "ip" | "l4"> {
  if (b.length - off < IPV6_HEADER_LEN || b[off]! >> 4 !== 6) return {};
  const ip: IP = { source: formatIpv6(b, off + 8), destination: formatIpv6(b, off + 24), ipVersion: IPVersion.IPv6 };
  const l4 = decodeL4(b, off + IPV6_HEADER_LEN, b[off + 6]!);
  return l4 ? { ip, l4 } : { ip };
}

/** Big-endian 32 bits at `off`, unsigned. */
export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function decodePacket(b: Uint8Array): DecodedPacket {
  if (b.length < ETH_LEN) return {};
  const ethernet = { source: mac(b, 6), destination: mac(b, 0) };
  const etherType = (b[12]! << 8) | b[13]!;
  const l3 = etherType === ETH_P_IP ? decodeIpv4(b, ETH_LEN) : etherType === ETH_P_IPV6 ? decodeIpv6(b, ETH_LEN) : undefined;
  return { ethernet, ip: l3?.ip, l4: l3?.l4 };
}

/**
 * Only the L4 header of the packet captured in b[start, end): no addresses as text, no view of
 * its own, for consumers that count by protocol and port.
 */
export function decodePacketL4(b: Uint8Array, start = 0, end = b.length): Layer4 | undefined {
  if (end - start < ETH_LEN) return undefined;
  const etherType = (b[start + 12]! << 8) | b[start + 13]!;
  const off = start + ETH_LEN;
  if (etherType === ETH_P_IP) {
    if (end - off < 20 || b[off]! >> 4 !== 4) return undefined;
    const ihl = (b[off]! & 0x0f) * 4;
    const fragOffset = ((b[off + 6]! << 8) | b[off + 7]!) & 0x1fff;
    return ihl < 20 || fragOffset !== 0 ? undefined : decodeL4(b, off + ihl, b[off + 9]!, end);
  }
  if (etherType === ETH_P_IPV6) {
    if (end - off < IPV6_HEADER_LEN || b[off]! >> 4 !== 6) return undefined;
    return decodeL4(b, off + IPV6_HEADER_LEN, b[off + 6]!, end);
  }
  return undefined;
}
