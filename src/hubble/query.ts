/**
 * GetFlows over the ring, independent of gRPC: the last (or first) `number` matching flows, or a
 * time window, then optionally every new matching flow as it arrives. Lost events are passed
 * through unfiltered, so a client always learns about gaps.
 */
import { timestampNanos, type Flow, type Timestamp } from "./flow/types.ts";
import { followRing, LostEventSource, type FlowRing, type LostEvents } from "./ring.ts";

export interface FlowsQuery {
  /** 0: no limit. */
  number?: number;
  /** The earliest `number` flows instead of the latest. */
  first?: boolean;
  follow?: boolean;
  since?: Timestamp;
  until?: Timestamp;
}

export type QueryEvent = { flow: Flow; lost?: undefined } | { lost: LostEvents; flow?: undefined };

export class QueryError extends Error {
  override name = "QueryError";
}

export interface QueryOptions {
  /** Which flows to send (whitelist minus blacklist). */
  matches: (flow: Flow) => boolean;
  signal?: AbortSignal;
  /** Time of HUBBLE_RING_BUFFER lost events (when the reader noticed). */
  now: () => Timestamp;
}

/** Index of the earliest of the last `n` flows accepted by `accept`, scanning back from the end. */
function startOfLast(ring: FlowRing, n: number, accept: (f: Flow) => boolean): number {
  let found = 0;
  for (let i = ring.next - 1; i >= ring.oldest; i--) {
    const flow = ring.at(i)?.flow;
    if (flow && accept(flow) && ++found === n) return i;
  }
  return ring.oldest;
}

export async function* queryFlows(ring: FlowRing, q: FlowsQuery, opts: QueryOptions): AsyncGenerator<QueryEvent> {
  if (q.first && q.follow) throw new QueryError("first and follow cannot be combined");
  const since = q.since ? timestampNanos(q.since) : undefined;
  const until = q.until ? timestampNanos(q.until) : undefined;
  const inWindow = (f: Flow) => {
    const t = timestampNanos(f.time);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  const accept = (f: Flow) => inWindow(f) && opts.matches(f);
  const limit = q.number && q.number > 0 ? q.number : Infinity;

  // History is what the ring held when the call came; in follow mode everything after it is new.
  const historyEnd = ring.next;
  let start: number;
  if (limit !== Infinity && !q.first) start = startOfLast(ring, limit, accept);
  else if (q.follow && limit === Infinity && since === undefined) start = historyEnd;
  else start = ring.oldest;

  if (!q.follow && start >= historyEnd) return;
  let sent = 0;
  for await (const read of followRing(ring, start, opts.signal)) {
    const inHistory = read.index < historyEnd;
    if ("overwritten" in read) {
      yield { lost: { source: LostEventSource.HUBBLE_RING_BUFFER, count: read.overwritten, time: opts.now() } };
    } else if (read.entry.lost) {
      yield { lost: read.entry.lost };
    } else {
      const flow = read.entry.flow;
      // In follow mode a flow past `until` ends the stream: flows arrive in time order.
      if (!inHistory && until !== undefined && timestampNanos(flow.time) > until) return;
      if ((inHistory ? sent < limit : true) && accept(flow)) {
        if (inHistory) sent++;
        yield { flow };
      }
    }
    // The last `number` flows end at the history's end, lost events after them included.
    if (!q.follow && (read.index + 1 >= historyEnd || (q.first && sent >= limit))) return;
  }
}
