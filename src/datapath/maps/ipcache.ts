/**
 * cilium_ipcache: the security identity (and tunnel endpoint) of remote prefixes, an LPM trie
 * (bpf/lib/maps.h: ipcache_key, remote_endpoint_info). An address no prefix holds is WORLD.
 */
import { ipv4, pad, struct, u32, u8, type Infer } from "../bpf/index.ts";
import { formatIpv4, parseCidr, parseIpv4 } from "../../net/ipv4.ts";

export const IPCACHE_MAP = "cilium_ipcache";

export const IpcacheKey = struct({
  /** Bits of ip4 that must match, 0-32. */
  prefixlen: u32,
  ip4: ipv4,
});

export const RemoteEndpointInfo = struct({
  secIdentity: u32,
  /** Node to tunnel to; "0.0.0.0" = none. */
  tunnelEndpoint: ipv4,
  /** Reserved, 0. */
  flags: u8,
  pad: pad(3),
});

export type IpcacheKeyValue = Infer<typeof IpcacheKey>;
export type RemoteEndpointInfoValue = Infer<typeof RemoteEndpointInfo>;

export interface IpcacheEntry {
  /** Canonical "a.b.c.d/n". */
  cidr: string;
  identity: number;
  /** Present when the prefix is reached through a tunnel. */
  tunnelEndpoint?: string;
}

/**
 * The key of a prefix: "a.b.c.d/n", or a bare address for /32. Host bits must be zero (a typo in
 * a prefix of a security map is an error, not something to guess around).
 */
export function ipcacheKeyOf(cidr: string): IpcacheKeyValue {
  if (typeof cidr !== "string") throw new TypeError(`ipcache prefix must be a string, got ${typeof cidr}`);
  if (!cidr.includes("/")) return { prefixlen: 32, ip4: formatIpv4(parseIpv4(cidr)) };
  const parsed = parseCidr(cidr);
  return { prefixlen: parsed.prefixLength, ip4: formatIpv4(parsed.network) };
}

export function ipcacheCidrOf(key: IpcacheKeyValue): string {
  return `${key.ip4}/${key.prefixlen}`;
}

/** A security identity the datapath can match: 1..2^32-1 (0 is "no identity" and never stored). */
export function checkIdentity(identity: number, what = "identity"): number {
  if (!Number.isInteger(identity) || identity < 1 || identity > 0xffffffff) {
    throw new RangeError(`${what} ${String(identity)} is not a security identity (1-4294967295)`);
  }
  return identity;
}
