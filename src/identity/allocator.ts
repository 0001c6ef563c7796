/**
 * The node's identity allocator: label set -> numeric identity, through a cluster-wide backend.
 *
 * Reserved label sets resolve to their fixed numbers without the backend; an empty label set is
 * an endpoint that has no labels yet and gets "init" (5), as upstream. Other sets are allocated
 * by the backend (>= 256) and reference counted here: the node holds one backend reference per
 * label set while any local user holds it, and releases it with the last local user. CIDR label
 * sets are node-local (cidr.ts) and refused here.
 */
import type { IdentityBackend } from "./backend.ts";
import type { Identity } from "./identity.ts";
import { LabelSource, type LabelSet } from "./labels.ts";
import { hasReservedLabel, ReservedIdentity, reservedIdentityFor, reservedIdentityLabels } from "./reserved.ts";

export class IdentityLabelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IdentityLabelError";
  }
}

export interface Allocation {
  identity: Identity;
  /** This is the node's first reference: add the identity to the selector cache and ipcache. */
  isNew: boolean;
}

interface LocalEntry {
  identity: Identity;
  references: number;
}

export class IdentityAllocator {
  private readonly byKey = new Map<string, LocalEntry>();
  private readonly byId = new Map<number, LocalEntry>();
  /** Backend calls under way, so concurrent users of one label set share one backend reference. */
  private readonly pending = new Map<string, Promise<number>>();

  constructor(private readonly backend: IdentityBackend) {}

  async allocate(labels: LabelSet): Promise<Allocation> {
    if (labels.size === 0) return { identity: { id: ReservedIdentity.init, labels: reservedIdentityLabels(ReservedIdentity.init)! }, isNew: false };
    const reserved = reservedIdentityFor(labels);
    if (reserved !== undefined) return { identity: { id: reserved, labels }, isNew: false };
    if (hasReservedLabel(labels)) {
      throw new IdentityLabelError(`labels ${labels}: reserved labels only form the reserved identities and cannot be combined with others`);
    }
    if (labels.labels.some((l) => l.source === LabelSource.cidr)) {
      throw new IdentityLabelError(`labels ${labels}: CIDR identities are node-local and come from the CIDR allocator`);
    }

    const local = this.byKey.get(labels.key);
    if (local) {
      local.references++;
      return { identity: local.identity, isNew: false };
    }
    let request = this.pending.get(labels.key);
    if (!request) {
      request = this.backend.allocate(labels).finally(() => this.pending.delete(labels.key));
      this.pending.set(labels.key, request);
    }
    const id = await request;
    // Another caller waiting on the same request may have created the entry first.
    const raced = this.byKey.get(labels.key);
    if (raced) {
      raced.references++;
      return { identity: raced.identity, isNew: false };
    }
    const entry = { identity: { id, labels }, references: 1 };
    this.byKey.set(labels.key, entry);
    this.byId.set(id, entry);
    return { identity: entry.identity, isNew: true };
  }

  /**
   * Drops one local reference. Returns true when it was the last: the node no longer uses the
   * identity (drop it from the caches); the backend reference is released.
   */
  async release(id: number): Promise<boolean> {
    const entry = this.byId.get(id);
    if (!entry) return false;
    if (--entry.references > 0) return false;
    this.byId.delete(id);
    this.byKey.delete(entry.identity.labels.key);
    await this.backend.release(id);
    return true;
  }

  /** An identity this node holds (not reserved ones; see reserved.ts). */
  lookup(id: number): Identity | undefined {
    return this.byId.get(id)?.identity;
  }

  references(id: number): number {
    return this.byId.get(id)?.references ?? 0;
  }
}
