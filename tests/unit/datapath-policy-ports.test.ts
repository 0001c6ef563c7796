/** portRangeToPrefixes: exact and minimal covers of port ranges by port prefixes. */
import { describe, expect, test } from "bun:test";
import { portRangeToPrefixes } from "../../src/datapath/maps/policy.ts";

const size = (prefixLength: number) => 2 ** (16 - prefixLength);

/** Checks the prefixes hold exactly from..to: aligned, in order, adjacent, nothing outside. */
function expectExactCover(from: number, to: number, prefixes: { port: number; prefixLength: number }[]): void {
  let next = from;
  for (const { port, prefixLength } of prefixes) {
    expect(Number.isInteger(prefixLength) && prefixLength >= 0 && prefixLength <= 16).toBe(true);
    expect(port % size(prefixLength)).toBe(0);
    expect(port).toBe(next);
    next = port + size(prefixLength);
  }
  expect(next).toBe(to + 1);
}

/** The fewest aligned blocks covering from..to exactly, by dynamic programming (independent of the greedy walk). */
function minimalCount(from: number, to: number): number {
  const best = new Array<number>(to - from + 2).fill(Infinity);
  best[0] = 0;
  for (let i = 0; i <= to - from; i++) {
    if (best[i] === Infinity) continue;
    const port = from + i;
    for (let bits = 0; bits <= 16; bits++) {
      const block = 2 ** bits;
      if (port % block !== 0 || port + block - 1 > to) break;
      best[i + block] = Math.min(best[i + block]!, best[i]! + 1);
    }
  }
  return best[to - from + 1]!;
}

describe("portRangeToPrefixes", () => {
  test("single ports are one /16 prefix", () => {
    for (const port of [0, 1, 22, 80, 443, 8080, 32767, 32768, 65534, 65535]) {
      expect(portRangeToPrefixes(port, port)).toEqual([{ port, prefixLength: 16 }]);
    }
  });

  test("hand-written covers", () => {
    expect(portRangeToPrefixes(0, 65535)).toEqual([{ port: 0, prefixLength: 0 }]);
    expect(portRangeToPrefixes(80, 81)).toEqual([{ port: 80, prefixLength: 15 }]);
    expect(portRangeToPrefixes(80, 82)).toEqual([
      { port: 80, prefixLength: 15 },
      { port: 82, prefixLength: 16 },
    ]);
    expect(portRangeToPrefixes(79, 80)).toEqual([
      { port: 79, prefixLength: 16 },
      { port: 80, prefixLength: 16 },
    ]);
    expect(portRangeToPrefixes(8000, 8999)).toEqual([
      { port: 8000, prefixLength: 10 }, // 8000-8063
      { port: 8064, prefixLength: 9 }, // 8064-8191
      { port: 8192, prefixLength: 7 }, // 8192-8703
      { port: 8704, prefixLength: 8 }, // 8704-8959
      { port: 8960, prefixLength: 11 }, // 8960-8991
      { port: 8992, prefixLength: 13 }, // 8992-8999
    ]);
    expect(portRangeToPrefixes(1024, 65535)).toEqual([
      { port: 1024, prefixLength: 6 },
      { port: 2048, prefixLength: 5 },
      { port: 4096, prefixLength: 4 },
      { port: 8192, prefixLength: 3 },
      { port: 16384, prefixLength: 2 },
      { port: 32768, prefixLength: 1 },
    ]);
    expect(portRangeToPrefixes(65534, 65535)).toEqual([{ port: 65534, prefixLength: 15 }]);
    expect(portRangeToPrefixes(32767, 32768)).toEqual([
      { port: 32767, prefixLength: 16 },
      { port: 32768, prefixLength: 16 },
    ]);
  });

  test("1-65535 takes 16 prefixes, 0-65534 too", () => {
    const from1 = portRangeToPrefixes(1, 65535);
    expect(from1).toHaveLength(16);
    expect(from1[0]).toEqual({ port: 1, prefixLength: 16 });
    expect(from1.at(-1)).toEqual({ port: 32768, prefixLength: 1 });
    expectExactCover(1, 65535, from1);
    const to65534 = portRangeToPrefixes(0, 65534);
    expect(to65534).toHaveLength(16);
    expectExactCover(0, 65534, to65534);
  });

  test("every range inside 0-130 is covered exactly and minimally", () => {
    for (let from = 0; from <= 130; from++) {
      for (let to = from; to <= 130; to++) {
        const prefixes = portRangeToPrefixes(from, to);
        expectExactCover(from, to, prefixes);
        expect(prefixes.length).toBe(minimalCount(from, to));
      }
    }
  });

  test("every range reaching the top of the port space, and ranges around powers of two", () => {
    for (let from = 65400; from <= 65535; from++) {
      const prefixes = portRangeToPrefixes(from, 65535);
      expectExactCover(from, 65535, prefixes);
      expect(prefixes.length).toBe(minimalCount(from, 65535));
    }
    for (let bit = 2; bit <= 15; bit++) {
      const p = 2 ** bit;
      for (const [from, to] of [
        [p - 1, p],
        [p - 1, p + 1],
        [p, 2 * p - 1],
        [p + 1, 2 * p - 2],
        [1, p],
        [p, 65535],
      ] as const) {
        const prefixes = portRangeToPrefixes(from, to);
        expectExactCover(from, to, prefixes);
        expect(prefixes.length).toBe(minimalCount(from, to));
      }
    }
  });

  test("random wide ranges", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
    for (let i = 0; i < 60; i++) {
      const a = Math.floor(random() * 65536);
      const b = Math.floor(random() * 65536);
      const [from, to] = a <= b ? [a, b] : [b, a];
      const prefixes = portRangeToPrefixes(from, to);
      expectExactCover(from, to, prefixes);
      expect(prefixes.length).toBe(minimalCount(from, to));
      expect(prefixes.length).toBeLessThanOrEqual(30);
    }
  });

  test("invalid ranges throw", () => {
    expect(() => portRangeToPrefixes(10, 9)).toThrow(/empty/);
    expect(() => portRangeToPrefixes(-1, 9)).toThrow(/not a port/);
    expect(() => portRangeToPrefixes(1, 65536)).toThrow(/not a port/);
    expect(() => portRangeToPrefixes(1.5, 3)).toThrow(/not a port/);
    expect(() => portRangeToPrefixes(Number.NaN, 3)).toThrow(/not a port/);
  });
});
