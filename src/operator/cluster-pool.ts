/**
 * Cluster-pool IPAM math: the cluster CIDR cut into node CIDRs of one mask size, handed out
 * lowest first. Pure.
 */
import { formatCidr, parseCidr, type Ipv4Cidr } from "../net/ipv4.ts";

export class ClusterPool {
  readonly cidr: Ipv4Cidr;
  readonly size: number;

  constructor(cidrText: string, readonly maskSize: number) {
    this.cidr = parseCidr(cidrText);
    if (!Number.isInteger(maskSize) || maskSize < this.cidr.prefixLength || maskSize > 30) {
      throw new Error(`--cluster-pool-ipv4-mask-size ${maskSize}: must be ${this.cidr.prefixLength}-30 for cluster CIDR ${cidrText}`);
    }
    this.size = 2 ** (maskSize - this.cidr.prefixLength);
  }

  /** Whether `cidrText` is one of this pool's node CIDRs. */
  contains(cidrText: string): boolean {
    let cidr: Ipv4Cidr;
    try {
      cidr = parseCidr(cidrText);
    } catch {
      return false;
    }
    return cidr.prefixLength === this.maskSize && ((cidr.network & this.cidr.mask) >>> 0) === this.cidr.network;
  }

  /** The lowest node CIDR not in `taken`; undefined when the pool is exhausted. */
  next(taken: ReadonlySet<string>): string | undefined {
    const step = 2 ** (32 - this.maskSize);
    for (let i = 0; i < this.size; i++) {
      const text = formatCidr({ network: (this.cidr.network + i * step) >>> 0, prefixLength: this.maskSize, mask: 0 });
      if (!taken.has(text)) return text;
    }
    return undefined;
  }
}
