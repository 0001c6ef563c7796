import { describe, expect, test } from "bun:test";
import { median, pairedRatio } from "../../scripts/benchmarks/harness.ts";

describe("benchmark statistics", () => {
  test("the paired ratio follows rounds, not the spread of the whole sample", () => {
    // The machine slows down over the run; ours is 2% slower than the baseline in every round.
    const baseline = [100, 80, 60, 90, 70];
    const ours = baseline.map((value) => value * 0.98);
    expect(pairedRatio(ours, baseline)).toBeCloseTo(0.98, 10);
    expect(median(ours) / median(baseline)).toBeCloseTo(0.98, 10);
    // Shuffle ours across rounds: the medians cannot tell, the paired ratio can.
    const shuffled = [ours[4]!, ours[2]!, ours[0]!, ours[1]!, ours[3]!];
    expect(median(shuffled) / median(baseline)).toBeCloseTo(0.98, 10);
    expect(pairedRatio(shuffled, baseline)).not.toBeCloseTo(0.98, 2);
  });

  test("paired samples must come in pairs", () => {
    expect(() => pairedRatio([1, 2], [1])).toThrow("paired samples differ in count: 2 and 1");
  });
});
