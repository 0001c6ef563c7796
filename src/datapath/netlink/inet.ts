/**
 * Text forms of IP addresses, prefixes and MAC addresses, to and from the raw bytes netlink
 * carries (network byte order). IPv6 is printed as glibc's inet_ntop does, so our listings read
 * exactly like `ip`'s.
 */
import { AF_INET, AF_INET6 } from "./constants.ts";

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network byte order. */
  bytes: Uint8Array;
}

export interface IpPrefix {
  address: IpAddress;
  length: number;
}

/** The AF_* constant of a family. */
export function addressFamily(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

/** The family of an AF_* constant, or undefined for other families (bridge, packet, ...). */
export function ipFamily(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

export function parseIp(text: string): IpAddress {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(text);
  if (v6) return { family: 6, bytes: v6 };
  throw new TypeError(`invalid IP address "${text}"`);
}

/** "10.0.0.1/24" -> address and length; a bare address is a host prefix (/32 or /128). */
export function parsePrefix(text: string): IpPrefix {
  const slash = text.indexOf("/");
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  const max = address.bytes.byteLength * 8;
  if (slash === -1) return { address, length: max };
  const lengthText = text.slice(slash + 1);
  const length = Number(lengthText);
  if (!/^\d{1,3}$/.test(lengthText) || length > max) throw new TypeError(`invalid prefix length in "${text}"`);
  return { address, length };
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.byteLength === 4) return bytes.join(".");
  if (bytes.byteLength !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.byteLength}`);
  return formatIpv6(bytes);
}

/** "02:00:0a:00:00:01" (also with dashes) -> bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((part) => !/^[0-9a-fA-F]{1,2}$/.test(part))) {
    throw new TypeError(`invalid MAC address "${text}"`);
  }
  return Uint8Array.from(parts, (part) => parseInt(part, 16));
}

/** Lower-case, colon-separated, like `ip link` (any length: infiniband and tunnels differ). */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(":");
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // Decimal only: inet_aton's octal and hex forms are a classic source of confusion.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const words = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

/** The 16-bit groups of one side of "::"; a trailing dotted quad counts as two. */
function groups(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const words: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIpv4(part);
      if (!v4) return undefined;
      words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
      words.push(parseInt(part, 16));
    }
  }
  return words;
}

function formatIpv6(bytes: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // The longest run of two or more zero words (the first on a tie) becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  // glibc prints IPv4-compatible and IPv4-mapped addresses with a dotted quad.
  if (bestStart === 0 && (bestLength === 6 || (bestLength === 7 && words[7] !== 1) || (bestLength === 5 && words[5] === 0xffff))) {
    return `::${bestLength === 5 ? "ffff:" : ""}${formatIp(bytes.subarray(12))}`;
  }
  const hex = (from: number, to: number) => words.slice(from, to).map((word) => word.toString(16)).join(":");
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
