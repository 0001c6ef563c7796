import { describe, expect, test } from "bun:test";
import type { Flow } from "../../src/hubble/flow/types.ts";
import { queryFlows, QueryError, type FlowsQuery, type QueryEvent } from "../../src/hubble/query.ts";
import { FlowRing, followRing, isValidRingCapacity, LostEventSource } from "../../src/hubble/ring.ts";

const flow = (n: number, extra: Partial<Flow> = {}): Flow => ({ uuid: String(n), time: { seconds: 1000 + n, nanos: 0 }, ...extra });
const now = () => ({ seconds: 0, nanos: 0 });

function filled(capacity: number, count: number): FlowRing {
  const ring = new FlowRing(capacity);
  for (let i = 0; i < count; i++) ring.write(flow(i));
  return ring;
}

async function collect(ring: FlowRing, q: FlowsQuery, matches: (f: Flow) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  for await (const e of queryFlows(ring, q, { matches, now })) out.push(describeEvent(e));
  return out;
}

const describeEvent = (e: QueryEvent) => (e.flow ? e.flow.uuid! : `lost:${e.lost.source}:${e.lost.count}`);

describe("FlowRing", () => {
  test("capacity must be 2^n-1", () => {
    for (const ok of [1, 3, 7, 4095, 65535]) expect(isValidRingCapacity(ok)).toBe(true);
    for (const bad of [0, 2, 4, 100, 4096, 1.5]) expect(isValidRingCapacity(bad)).toBe(false);
    expect(() => new FlowRing(10)).toThrow(RangeError);
  });

  test("holds the last `capacity` entries, counts every write", () => {
    const ring = filled(7, 10);
    expect(ring.capacity).toBe(7);
    expect(ring.length).toBe(7);
    expect(ring.written).toBe(10);
    expect(ring.oldest).toBe(3);
    expect(ring.at(2)).toBeUndefined();
    expect(ring.at(3)?.flow?.uuid).toBe("3");
    expect(ring.at(9)?.flow?.uuid).toBe("9");
    expect(ring.at(10)).toBeUndefined();
  });

  test("a follower lapped by the writer learns how many it lost", async () => {
    const ring = filled(3, 2);
    const reader = followRing(ring, 0);
    expect((await reader.next()).value).toEqual({ index: 0, entry: { flow: flow(0) } });
    for (let i = 2; i < 8; i++) ring.write(flow(i));
    // Next index 1; oldest is now 5: entries 1..4 were overwritten.
    expect((await reader.next()).value).toEqual({ index: 1, overwritten: 4 });
    expect((await reader.next()).value).toEqual({ index: 5, entry: { flow: flow(5) } });
    await reader.return(undefined);
  });

  test("a follower waits for new entries and stops on abort", async () => {
    const ring = new FlowRing(7);
    const ac = new AbortController();
    const reader = followRing(ring, 0, ac.signal);
    const pending = reader.next();
    setTimeout(() => ring.write(flow(42)), 5);
    expect((await pending).value).toEqual({ index: 0, entry: { flow: flow(42) } });
    const waiting = reader.next();
    ac.abort();
    expect((await waiting).done).toBe(true);
  });

  test("losses before the ring are entries of their own", async () => {
    const ring = new FlowRing(7);
    ring.write(flow(1));
    ring.writeLost({ source: LostEventSource.PERF_EVENT_RING_BUFFER, count: 12, time: now() });
    ring.write(flow(2));
    expect(await collect(ring, {})).toEqual(["1", "lost:1:12", "2"]);
  });
});

describe("queryFlows", () => {
  test("all history by default, oldest first", async () => {
    expect(await collect(filled(7, 10), {})).toEqual(["3", "4", "5", "6", "7", "8", "9"]);
  });

  test("last N and first N", async () => {
    const ring = filled(15, 10);
    expect(await collect(ring, { number: 3 })).toEqual(["7", "8", "9"]);
    expect(await collect(ring, { number: 3, first: true })).toEqual(["0", "1", "2"]);
    expect(await collect(ring, { number: 30 })).toHaveLength(10);
  });

  test("last N counts matching flows only", async () => {
    const ring = filled(15, 10);
    const even = (f: Flow) => Number(f.uuid) % 2 === 0;
    expect(await collect(ring, { number: 2 }, even)).toEqual(["6", "8"]);
    expect(await collect(ring, { number: 2, first: true }, even)).toEqual(["0", "2"]);
  });

  test("since and until (inclusive)", async () => {
    const ring = filled(15, 10);
    expect(await collect(ring, { since: { seconds: 1007, nanos: 0 } })).toEqual(["7", "8", "9"]);
    expect(await collect(ring, { until: { seconds: 1001, nanos: 0 } })).toEqual(["0", "1"]);
    expect(await collect(ring, { since: { seconds: 1003, nanos: 0 }, until: { seconds: 1005, nanos: 0 } })).toEqual(["3", "4", "5"]);
    expect(await collect(ring, { since: { seconds: 1003, nanos: 0 }, number: 2 })).toEqual(["8", "9"]);
  });

  test("first with follow is refused", async () => {
    await expect(collect(filled(3, 1), { first: true, follow: true })).rejects.toThrow(QueryError);
  });

  test("empty ring without follow ends at once", async () => {
    expect(await collect(new FlowRing(3), { number: 5 })).toEqual([]);
  });

  test("follow: last N, then new flows as they arrive, filtered; abort ends it", async () => {
    const ring = filled(15, 5);
    const ac = new AbortController();
    const got: string[] = [];
    const done = (async () => {
      for await (const e of queryFlows(ring, { number: 2, follow: true }, { matches: (f) => f.uuid !== "6", signal: ac.signal, now })) {
        got.push(describeEvent(e));
        if (got.length === 4) ac.abort();
      }
    })();
    await Bun.sleep(1);
    for (let i = 5; i < 9; i++) ring.write(flow(i));
    await done;
    expect(got).toEqual(["3", "4", "5", "7"]);
  });

  test("follow without number or since starts with new flows", async () => {
    const ring = filled(15, 5);
    const ac = new AbortController();
    const it = queryFlows(ring, { follow: true }, { matches: () => true, signal: ac.signal, now });
    const first = it.next();
    ring.write(flow(99));
    expect((await first).value).toEqual({ flow: flow(99) });
    ac.abort();
    expect((await it.next()).done).toBe(true);
  });

  test("follow with until ends once a later flow arrives", async () => {
    const ring = filled(15, 2);
    const it = queryFlows(ring, { follow: true, since: { seconds: 0, nanos: 0 }, until: { seconds: 1002, nanos: 0 } }, { matches: () => true, now });
    const got: string[] = [];
    const done = (async () => {
      for await (const e of it) got.push(describeEvent(e));
    })();
    ring.write(flow(2));
    ring.write(flow(3));
    await done;
    expect(got).toEqual(["0", "1", "2"]);
  });

  test("a slow follower gets a HUBBLE_RING_BUFFER lost event", async () => {
    const ring = filled(3, 3);
    const it = queryFlows(ring, { follow: true, since: { seconds: 0, nanos: 0 } }, { matches: () => true, now });
    expect((await it.next()).value).toEqual({ flow: flow(0) });
    for (let i = 3; i < 10; i++) ring.write(flow(i));
    expect((await it.next()).value).toEqual({ lost: { source: LostEventSource.HUBBLE_RING_BUFFER, count: 6, time: now() } });
    expect((await it.next()).value).toEqual({ flow: flow(7) });
    await it.return(undefined);
  });
});
