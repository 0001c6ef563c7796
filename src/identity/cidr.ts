/**
 * CIDR identities: every prefix that policy names gets a node-local identity (2^24 | n, never in
 * the cluster-wide space, as upstream's local identities) and an ipcache entry, so the datapath's
 * longest-prefix lookup of an outside address yields the identity of the most specific prefix.
 *
 * Labels: "cidr:<prefix>" for the prefix and every shorter prefix containing it, down to
 * "cidr:0.0.0.0/0", plus "reserved:world" (upstream's GetCIDRLabels before v1.15 did the same).
 * A CIDR selector is then an ordinary label selector: "cidr:10.0.0.0/8" selects every CIDR
 * identity inside 10/8, and "except 10.96.0.0/12" is DoesNotExist on "cidr:10.96.0.0/12". World
 * ⊇ every CIDR: "reserved:world" selects the world identity and all CIDR identities.
 *
 * 0.0.0.0/0 is the world identity itself (2), not a CIDR identity.
 */
import { formatCidr, maskOf, type Ipv4Cidr } from "../net/ipv4.ts";
import { IdentityExhaustedError } from "./backend.ts";
import { LOCAL_IDENTITY_FLAG, type Identity } from "./identity.ts";
import { LabelSet, LabelSource, type Label } from "./labels.ts";
import { ReservedIdentity, reservedIdentityLabels } from "./reserved.ts";
import type { Allocation } from "./allocator.ts";

export function cidrLabel(cidr: Ipv4Cidr): Label {
  return { source: LabelSource.cidr, key: formatCidr(cidr), value: "" };
}

/** The prefix itself and every prefix containing it, longest first. */
function cidrSupersets(cidr: Ipv4Cidr): Ipv4Cidr[] {
  const out: Ipv4Cidr[] = [];
  for (let length = cidr.prefixLength; length >= 0; length--) {
    const mask = maskOf(length);
    out.push({ network: (cidr.network & mask) >>> 0, prefixLength: length, mask });
  }
  return out;
}

export function cidrIdentityLabels(cidr: Ipv4Cidr): LabelSet {
  return LabelSet.of([...cidrSupersets(cidr).map(cidrLabel), { source: LabelSource.reserved, key: "world", value: "" }]);
}

const MAX_LOCAL_NUMBER = 0xffffff;

/** Node-local, reference counted: one identity per prefix while any rule names it. */
export class CidrIdentityAllocator {
  private readonly byPrefix = new Map<string, { identity: Identity; references: number }>();
  private readonly byId = new Map<number, string>();
  private next = 1;

  acquire(cidr: Ipv4Cidr): Allocation {
    if (cidr.prefixLength === 0) {
      return { identity: { id: ReservedIdentity.world, labels: reservedIdentityLabels(ReservedIdentity.world)! }, isNew: false };
    }
    const prefix = formatCidr(cidr);
    const entry = this.byPrefix.get(prefix);
    if (entry) {
      entry.references++;
      return { identity: entry.identity, isNew: false };
    }
    const identity = { id: LOCAL_IDENTITY_FLAG | this.freeNumber(), labels: cidrIdentityLabels(cidr) };
    this.byPrefix.set(prefix, { identity, references: 1 });
    this.byId.set(identity.id, prefix);
    return { identity, isNew: true };
  }

  /** Returns true when the last reference is gone: drop the identity from the caches. */
  release(cidr: Ipv4Cidr): boolean {
    const prefix = formatCidr(cidr);
    const entry = this.byPrefix.get(prefix);
    if (!entry || --entry.references > 0) return false;
    this.byPrefix.delete(prefix);
    this.byId.delete(entry.identity.id);
    return true;
  }

  lookup(id: number): Identity | undefined {
    const prefix = this.byId.get(id);
    return prefix === undefined ? undefined : this.byPrefix.get(prefix)?.identity;
  }

  private freeNumber(): number {
    for (let i = 0; i < MAX_LOCAL_NUMBER; i++) {
      const candidate = ((this.next - 1 + i) % MAX_LOCAL_NUMBER) + 1;
      if (!this.byId.has(LOCAL_IDENTITY_FLAG | candidate)) {
        this.next = candidate === MAX_LOCAL_NUMBER ? 1 : candidate + 1;
        return candidate;
      }
    }
    throw new IdentityExhaustedError(LOCAL_IDENTITY_FLAG | 1, LOCAL_IDENTITY_FLAG | MAX_LOCAL_NUMBER);
  }
}
