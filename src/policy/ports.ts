/**
 * The L4 part of a policy map key: protocol and destination port as a prefix over 24 bits
 * (8 bits of protocol, then 16 bits of port), matched by longest prefix like upstream's LPM
 * policy map:
 *
 *   protocol 0                      every protocol and port (L3-only rules), 0 bits
 *   protocol p, prefixLength 0      every port of p, 8 bits
 *   protocol p, port n, length 16   exactly port n, 24 bits
 *   protocol p, port n, length k    ports n .. n + 2^(16-k) - 1 (n aligned), 8 + k bits
 *
 * A port range becomes the fewest aligned blocks that cover it exactly (upstream's
 * PortRangeToMaskedPorts), e.g. 80-83 is 80/14 and 80-90 is 80/13, 88/15, 90/16. For ICMP
 * (protocol 1, 58 for ICMPv6) the "port" is the ICMP type, always a full 16-bit match.
 */

export const IpProtocol = { any: 0, icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 } as const;

const NAMES: Record<number, string> = { 0: "ANY", 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };

export interface PortPrefix {
  /** IP protocol number; 0 = every protocol (then port and prefixLength are 0). */
  protocol: number;
  port: number;
  /** Leading bits of `port` that must match, 0-16. */
  prefixLength: number;
}

export const ALL_PORTS: PortPrefix = { protocol: 0, port: 0, prefixLength: 0 };

export function protocolName(protocol: number): string {
  return NAMES[protocol] ?? String(protocol);
}

/** The aligned blocks covering first..last exactly (0 <= first <= last <= 65535). */
export function portRangePrefixes(first: number, last: number): { port: number; prefixLength: number }[] {
  const out: { port: number; prefixLength: number }[] = [];
  let start = first;
  while (start <= last) {
    // The largest block aligned at `start` (its lowest set bit) that does not pass `last`.
    let size = start === 0 ? 65536 : start & -start;
    while (start + size - 1 > last) size /= 2;
    out.push({ port: start, prefixLength: 16 - Math.log2(size) });
    start += size;
  }
  return out;
}

/** Bits of the 24-bit protocol+port key that the prefix fixes. */
export function portPrefixBits(p: PortPrefix): number {
  return p.protocol === 0 ? 0 : 8 + p.prefixLength;
}

/** Whether every (protocol, port) that `inner` matches is matched by `outer`. */
export function portPrefixCovers(outer: PortPrefix, inner: PortPrefix): boolean {
  if (outer.protocol === 0) return true;
  if (outer.protocol !== inner.protocol || outer.prefixLength > inner.prefixLength || inner.protocol === 0) return false;
  const shift = 16 - outer.prefixLength;
  return Math.floor(outer.port / 2 ** shift) === Math.floor(inner.port / 2 ** shift);
}

/** Whether the prefix matches one packet's protocol and port (ICMP type for ICMP). */
export function portPrefixMatches(p: PortPrefix, protocol: number, port: number): boolean {
  return portPrefixCovers(p, { protocol, port, prefixLength: 16 });
}

export function portPrefixKey(p: PortPrefix): string {
  return `${p.protocol}/${p.port}/${p.prefixLength}`;
}

/** "ANY", "TCP", "TCP/80", "TCP/80-83", "ICMP/8". */
export function formatPortPrefix(p: PortPrefix): string {
  if (p.protocol === 0) return "ANY";
  if (p.prefixLength === 0) return protocolName(p.protocol);
  const last = p.port + 2 ** (16 - p.prefixLength) - 1;
  return `${protocolName(p.protocol)}/${p.port}${last === p.port ? "" : `-${last}`}`;
}
