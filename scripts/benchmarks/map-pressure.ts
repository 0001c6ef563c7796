/**
 * What cilium_bpf_map_pressure costs a scrape: counting a hash map of 200,000 entries (the size
 * of a busy conntrack map) with BpfMap.count(), which reads keys and values many per syscall
 * without decoding them. Baseline, same run: walking the keys one BPF_MAP_GET_NEXT_KEY at a time
 * (what count() falls back to for LPM tries). The map is the test object's hash, resized, pinned
 * under a private bpffs directory that is removed afterwards.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BpfMap, BpfObject, bytes } from "../../src/datapath/bpf/index.ts";
import { ensureBpffs } from "../../src/datapath/bpffs.ts";
import { median, type Benchmark } from "./harness.ts";

const ENTRIES = 200_000;
const RUNS = 5;
const object = join(import.meta.dir, "../../build/test-bpf/counter.o");

const benchmark: Benchmark = {
  name: "map-pressure",
  unavailable: () => (process.getuid?.() !== 0 ? "needs root (BPF maps)" : existsSync(object) ? undefined : `${object} is not built (bun scripts/build.ts)`),
  run: async () => {
    const pinRoot = `/sys/fs/bpf/bench-map-pressure-${process.pid}`;
    ensureBpffs(pinRoot);
    const counter = BpfObject.open(readFileSync(object), { name: "counter", pinRoot });
    try {
      counter.map("endpoints").setMaxEntries(262_144);
      counter.load();
      const map = new BpfMap(counter.map("endpoints"), bytes(4), bytes(28));
      const value = new Uint8Array(28);
      for (let start = 0; start < ENTRIES; start += 10_000) {
        map.batchUpdate(
          Array.from({ length: 10_000 }, (_, i) => {
            const n = start + i;
            return [new Uint8Array([10, n >> 16, (n >> 8) & 255, n & 255]), value] as const;
          }),
        );
      }
      const timeOf = (work: () => number) => {
        const begin = Bun.nanoseconds();
        const counted = work();
        if (counted !== ENTRIES) throw new Error(`counted ${counted} entries, wrote ${ENTRIES}`);
        return (Bun.nanoseconds() - begin) / 1e6;
      };
      const walk = () => {
        let n = 0;
        for (const _ of map.keys()) n++;
        return n;
      };
      const ours: number[] = [];
      const baseline: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        ours.push(timeOf(() => map.count()));
        baseline.push(timeOf(walk));
      }
      return [
        {
          metric: `map pressure: count a hash map of ${ENTRIES / 1000}k entries`,
          ours: median(ours),
          baseline: median(baseline),
          unit: "ms",
          method: `BpfMap.count() (batched lookup, no decoding), median of ${RUNS}; baseline: GET_NEXT_KEY walk of the same map`,
          better: "lower",
        },
      ];
    } finally {
      counter.close();
      rmSync(pinRoot, { recursive: true, force: true });
    }
  },
};

export default benchmark;
