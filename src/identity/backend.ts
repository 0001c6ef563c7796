/**
 * Where cluster-wide identities live. The allocator (allocator.ts) asks the backend for the
 * number of a label set; the backend makes it unique across the cluster (embedded store, etcd or
 * CiliumIdentity objects implement this interface; src/kvstore). Asynchronous because real
 * backends are remote.
 */
import { MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY } from "./identity.ts";
import type { LabelSet } from "./labels.ts";

export interface IdentityBackend {
  /**
   * The cluster-wide number of `labels`, allocating one (>= 256) when the set has none; takes one
   * reference for the calling node. The same label set always yields the same number while any
   * reference to it is held.
   */
  allocate(labels: LabelSet): Promise<number>;
  /** Drops one reference taken by `allocate`; with none left the number may be freed. */
  release(id: number): Promise<void>;
  /** The labels of an allocated number, if it is allocated. */
  lookup(id: number): Promise<LabelSet | undefined>;
}

export class IdentityExhaustedError extends Error {
  constructor(min: number, max: number) {
    super(`no free identity in ${min}-${max}: every number is allocated`);
    this.name = "IdentityExhaustedError";
  }
}

/**
 * The backend in memory, for tests and single-process use. Several allocators (nodes) may share
 * one instance. Freed numbers are not reused until the range wraps around, so a number a peer may
 * still have cached does not come back at once with other labels.
 */
/**
 * The first number in [min, max] that is not taken, searching round-robin from `next` so a
 * released number is reused as late as possible; also answers where the next search starts.
 */
export function nextFreeIdentity(taken: (id: number) => boolean, min: number, max: number, next: number): { id: number; next: number } {
  const span = max - min + 1;
  for (let i = 0; i < span; i++) {
    const candidate = min + ((next - min + i) % span);
    if (!taken(candidate)) return { id: candidate, next: candidate + 1 > max ? min : candidate + 1 };
  }
  throw new IdentityExhaustedError(min, max);
}

export class MemoryIdentityBackend implements IdentityBackend {
  private readonly byKey = new Map<string, number>();
  private readonly byId = new Map<number, { labels: LabelSet; references: number }>();
  private next: number;

  constructor(
    private readonly min = MIN_ALLOCATED_IDENTITY,
    private readonly max = MAX_ALLOCATED_IDENTITY,
  ) {
    this.next = min;
  }

  async allocate(labels: LabelSet): Promise<number> {
    const existing = this.byKey.get(labels.key);
    if (existing !== undefined) {
      this.byId.get(existing)!.references++;
      return existing;
    }
    const id = this.freeNumber();
    this.byKey.set(labels.key, id);
    this.byId.set(id, { labels, references: 1 });
    return id;
  }

  async release(id: number): Promise<void> {
    const entry = this.byId.get(id);
    if (!entry) return;
    if (--entry.references > 0) return;
    this.byId.delete(id);
    this.byKey.delete(entry.labels.key);
  }

  async lookup(id: number): Promise<LabelSet | undefined> {
    return this.byId.get(id)?.labels;
  }

  private freeNumber(): number {
    const { id, next } = nextFreeIdentity((candidate) => this.byId.has(candidate), this.min, this.max, this.next);
    this.next = next;
    return id;
  }
}
