/**
 * The flow ring: the last `capacity` events in write order, read by index. Writers never wait:
 * a reader that falls more than `capacity` behind finds its next entries overwritten and learns
 * how many it lost (upstream's HUBBLE_RING_BUFFER lost events). Losses before the ring (the kernel
 * ring buffer was full) are written into it as entries of their own, so readers see them in
 * order.
 *
 * Capacity is 2^n - 1, as upstream's --hubble-event-buffer-capacity: the slot array has 2^n
 * slots, so an index maps to its slot with a mask.
 */
import type { Flow, Timestamp } from "./flow/types.ts";

/** flow.LostEventSource */
export const LostEventSource = { PERF_EVENT_RING_BUFFER: 1, OBSERVER_EVENTS_QUEUE: 2, HUBBLE_RING_BUFFER: 3 } as const;
export type LostEventSource = (typeof LostEventSource)[keyof typeof LostEventSource];

export interface LostEvents {
  source: LostEventSource;
  count: number;
  time: Timestamp;
}

/**
 * A stored flow. `flow` may be built on each read (the parser's FlowEvent); `namespaces` lets a
 * reader that needs only those skip building it.
 */
export interface StoredFlow {
  readonly flow: Flow;
  readonly lost?: undefined;
  namespaces?(): [string | undefined, string | undefined];
}

export type RingEntry = StoredFlow | { lost: LostEvents; flow?: undefined };

export const MAX_RING_CAPACITY = 2 ** 24 - 1;

export function isValidRingCapacity(capacity: number): boolean {
  return Number.isInteger(capacity) && capacity >= 1 && capacity <= MAX_RING_CAPACITY && ((capacity + 1) & capacity) === 0;
}

export class FlowRing {
  private readonly slots: (RingEntry | undefined)[];
  private readonly mask: number;
  /** Index of the next entry to be written = number of entries ever written. */
  private writeIndex = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly capacity: number) {
    if (!isValidRingCapacity(capacity)) {
      throw new RangeError(`ring capacity ${capacity} is not 2^n-1 (1, 3, 7, ..., ${MAX_RING_CAPACITY})`);
    }
    this.mask = capacity;
    this.slots = new Array(capacity + 1);
  }

  /** Entries ever written (upstream's seen_flows counts these). */
  get written(): number {
    return this.writeIndex;
  }

  /** Entries currently held. */
  get length(): number {
    return Math.min(this.writeIndex, this.capacity);
  }

  /** Index of the oldest entry still held. */
  get oldest(): number {
    return Math.max(0, this.writeIndex - this.capacity);
  }

  /** Index the next write will get. */
  get next(): number {
    return this.writeIndex;
  }

  write(flow: Flow): void {
    this.push({ flow });
  }

  /** Stores a flow in its compact form (see StoredFlow). */
  store(entry: StoredFlow): void {
    this.push(entry);
  }

  /** Records events lost before they reached the ring. */
  writeLost(lost: LostEvents): void {
    this.push({ lost });
  }

  /** The entry at `index`, or undefined if not written yet or already overwritten. */
  at(index: number): RingEntry | undefined {
    if (index < this.oldest || index >= this.writeIndex) return undefined;
    return this.slots[index & this.mask];
  }

  /** Resolves once an entry with index >= `index` exists, or when `signal` aborts. */
  waitFor(index: number, signal?: AbortSignal): Promise<void> {
    if (index < this.writeIndex || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  private push(entry: RingEntry): void {
    this.slots[this.writeIndex & this.mask] = entry;
    this.writeIndex++;
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** What a reader gets: an entry, or a count of entries overwritten before it could read them. */
export type ReadResult = { index: number; entry: RingEntry } | { index: number; overwritten: number };

/**
 * Reads the ring from `start` onwards as it is written (follow mode). Yields overwritten counts
 * when the writer laps the reader, then resumes at the oldest entry. The consumer's pace is the
 * back-pressure: nothing is read ahead of it. Ends when `signal` aborts.
 */
export async function* followRing(ring: FlowRing, start: number, signal?: AbortSignal): AsyncGenerator<ReadResult> {
  let index = start;
  while (!signal?.aborted) {
    if (index < ring.oldest) {
      yield { index, overwritten: ring.oldest - index };
      index = ring.oldest;
      continue;
    }
    const entry = ring.at(index);
    if (entry === undefined) {
      await ring.waitFor(index, signal);
      continue;
    }
    yield { index, entry };
    index++;
  }
}
