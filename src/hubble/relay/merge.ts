/**
 * Putting the GetFlows responses of many nodes back in time order. A finished query is sorted
 * whole; a followed stream goes through a bounded sort buffer (upstream's --sort-buffer-len-max
 * and --sort-buffer-drain-timeout): the earliest response leaves once the buffer is over its
 * length, and everything leaves once no response has arrived for the drain timeout.
 */
import type { Timestamp } from "../flow/types.ts";

/** A GetFlowsResponse as the relay handles it: a flow, lost events or a node status, and its time. */
export interface RelayedResponse {
  time?: Timestamp | null;
  node_name?: string;
  [field: string]: unknown;
}

export function compareTime(a: RelayedResponse, b: RelayedResponse): number {
  const as = a.time?.seconds ?? 0;
  const bs = b.time?.seconds ?? 0;
  if (as !== bs) return as - bs;
  return (a.time?.nanos ?? 0) - (b.time?.nanos ?? 0);
}

/**
 * Responses of a finished (non-follow) query from every node, in time order, limited to the
 * first or last `number` flows overall (0: all). Lost events and node status events are not
 * flows: they are kept and do not count toward `number`.
 */
export function mergeFinished(responses: RelayedResponse[], number: number, first: boolean): RelayedResponse[] {
  const sorted = [...responses].sort(compareTime);
  if (!number) return sorted;
  const isFlow = (r: RelayedResponse) => r.flow !== undefined && r.flow !== null;
  const flows = sorted.filter(isFlow).length;
  if (flows <= number) return sorted;
  let skip = flows - number;
  const out: RelayedResponse[] = [];
  if (first) {
    let kept = 0;
    for (const r of sorted) {
      if (!isFlow(r)) out.push(r);
      else if (kept < number) {
        out.push(r);
        kept++;
      }
    }
    return out;
  }
  for (const r of sorted) {
    if (isFlow(r) && skip > 0) {
      skip--;
      continue;
    }
    out.push(r);
  }
  return out;
}

/** A min-heap on time. */
export class SortBuffer {
  private readonly heap: RelayedResponse[] = [];
  private lastPush = 0;

  constructor(
    private readonly maxLength: number,
    private readonly drainTimeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`sort buffer length ${maxLength} must be a positive integer`);
  }

  get length(): number {
    return this.heap.length;
  }

  push(response: RelayedResponse): void {
    const heap = this.heap;
    this.lastPush = this.now();
    heap.push(response);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compareTime(heap[parent]!, heap[i]!) <= 0) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  /** Responses due now: the earliest while over the length; all once the input went quiet. */
  takeDue(): RelayedResponse[] {
    if (this.heap.length > 0 && this.now() - this.lastPush >= this.drainTimeoutMs) return this.drain();
    const out: RelayedResponse[] = [];
    while (this.heap.length > this.maxLength) out.push(this.pop());
    return out;
  }

  /** Everything left, in order. */
  drain(): RelayedResponse[] {
    const out: RelayedResponse[] = [];
    while (this.heap.length > 0) out.push(this.pop());
    return out;
  }

  private pop(): RelayedResponse {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < heap.length && compareTime(heap[l]!, heap[smallest]!) < 0) smallest = l;
        if (r < heap.length && compareTime(heap[r]!, heap[smallest]!) < 0) smallest = r;
        if (smallest === i) break;
        [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
        i = smallest;
      }
    }
    return top;
  }
}
