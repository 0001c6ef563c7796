/** IPv4 addresses and CIDRs as 32-bit numbers: pure, for IPAM, the datapath and policy. */

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit number. */
  network: number;
  prefixLength: number;
  /** Netmask as an unsigned 32-bit number. */
  mask: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) throw new Error(`"${text}" is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function isIpv4(text: string): boolean {
  try {
    parseIpv4(text);
    return true;
  } catch {
    return false;
  }
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join(".");
}

export function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Parses "a.b.c.d/n"; host bits must be zero unless `allowHostBits` (then they are cleared). */
export function parseCidr(text: string, options: { allowHostBits?: boolean } = {}): Ipv4Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) throw new Error(`"${text}" is not a CIDR: expected address/prefix-length`);
  const address = parseIpv4(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  const prefixLength = Number(lengthText);
  if (!/^\d{1,2}$/.test(lengthText) || prefixLength > 32) throw new Error(`"${text}": prefix length must be 0-32`);
  const mask = maskOf(prefixLength);
  const network = (address & mask) >>> 0;
  if (network !== address && !options.allowHostBits) {
    throw new Error(`"${text}" has host bits set: the network is ${formatIpv4(network)}/${prefixLength}`);
  }
  return { network, prefixLength, mask };
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefixLength}`;
}

export function cidrContains(cidr: Ipv4Cidr, address: number): boolean {
  return ((address & cidr.mask) >>> 0) === cidr.network;
}

/** Number of addresses in the CIDR (2^(32-n)). */
export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefixLength);
}
