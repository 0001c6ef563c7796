import { describe, expect, test } from "bun:test";
import { mergeFinished, SortBuffer, type RelayedResponse } from "../../src/hubble/relay/merge.ts";

const flow = (node: string, seconds: number, nanos = 0): RelayedResponse => ({ flow: { uuid: `${node}-${seconds}.${nanos}` }, node_name: node, time: { seconds, nanos } });
const lost = (seconds: number): RelayedResponse => ({ lost_events: { source: 1, num_events_lost: 3 }, time: { seconds, nanos: 0 } });
const ids = (rs: RelayedResponse[]) => rs.map((r) => (r.flow ? (r.flow as { uuid: string }).uuid : `lost@${r.time?.seconds}`));

describe("mergeFinished", () => {
  const a = [flow("a", 1), flow("a", 4), flow("a", 6)];
  const b = [flow("b", 2), flow("b", 3, 5), flow("b", 3, 1), lost(5)];

  test("all responses of every node, in time order (seconds, then nanos)", () => {
    expect(ids(mergeFinished([...a, ...b], 0, false))).toEqual(["a-1.0", "b-2.0", "b-3.1", "b-3.5", "a-4.0", "lost@5", "a-6.0"]);
  });

  test("--last N keeps the newest N flows across nodes; lost events are kept and not counted", () => {
    expect(ids(mergeFinished([...a, ...b], 3, false))).toEqual(["b-3.5", "a-4.0", "lost@5", "a-6.0"]);
  });

  test("--first N keeps the oldest N flows across nodes", () => {
    expect(ids(mergeFinished([...a, ...b], 2, true))).toEqual(["a-1.0", "b-2.0", "lost@5"]);
  });

  test("a limit above the number of flows keeps everything", () => {
    expect(mergeFinished([...a, ...b], 100, false)).toHaveLength(7);
  });
});

describe("SortBuffer", () => {
  test("releases the earliest responses once over its length, in time order", () => {
    let now = 0;
    const buffer = new SortBuffer(2, 1000, () => now);
    buffer.push(flow("a", 5));
    buffer.push(flow("b", 3));
    expect(buffer.takeDue()).toEqual([]);
    buffer.push(flow("a", 4));
    buffer.push(flow("b", 1));
    expect(ids(buffer.takeDue())).toEqual(["b-1.0", "b-3.0"]);
    expect(buffer.length).toBe(2);
  });

  test("releases everything, in order, once nothing arrived for the drain timeout", () => {
    let now = 0;
    const buffer = new SortBuffer(100, 1000, () => now);
    for (const s of [9, 2, 7, 4]) buffer.push(flow("a", s));
    now = 999;
    expect(buffer.takeDue()).toEqual([]);
    now = 1000;
    expect(ids(buffer.takeDue())).toEqual(["a-2.0", "a-4.0", "a-7.0", "a-9.0"]);
    expect(buffer.length).toBe(0);
  });

  test("a large shuffled input comes out sorted", () => {
    const buffer = new SortBuffer(10_000, 1000, () => 0);
    const seconds = Array.from({ length: 500 }, (_, i) => (i * 7919) % 500);
    for (const s of seconds) buffer.push(flow("n", s));
    expect(buffer.drain().map((r) => r.time!.seconds)).toEqual([...seconds].sort((x, y) => x - y));
  });

  test("a length below 1 is refused", () => {
    expect(() => new SortBuffer(0, 1000)).toThrow(/positive integer/);
  });
});
