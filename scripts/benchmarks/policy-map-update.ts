/**
 * NodeDatapath.setEndpointPolicy when cilium_policy is full of other endpoints' entries: it diffs
 * against the datapath's mirror of the map, so one changed entry costs that endpoint's entries,
 * not a walk of every key in the map.
 *
 * One endpoint holds 100 entries and changes one of them per call (alternating two ports);
 * measured with 20,000 entries of 100 other endpoints in the map and, as the baseline, with none.
 *
 * Runnable alone: bun scripts/benchmarks/policy-map-update.ts
 */
import { rmSync } from "node:fs";
import { NodeDatapath, type PolicyRule } from "../../src/datapath/node.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import { type Benchmark, type BenchRow, median, sampleMany } from "./harness.ts";
import { benchPrefix, podBenchUnavailable } from "./lib/pods.ts";

const CALLS = 200;
const OTHER_ENDPOINTS = 100;
const OTHER_ENTRIES_EACH = 200;
const ENDPOINT = 4000;

const rule = (identity: number, port: number): PolicyRule => ({ direction: "ingress", identity, protocol: 6, port, prefixLength: 16, deny: false });

function endpointEntries(i: number): PolicyRule[] {
  return [...Array.from({ length: 99 }, (_, k) => rule(1000 + k, 80)), rule(5000, 8000 + (i % 2))];
}

function timeUpdates(datapath: NodeDatapath): Promise<number[]> {
  let i = 0;
  return sampleMany(CALLS, () => {
    const entries = endpointEntries(i++);
    const start = Bun.nanoseconds();
    datapath.setEndpointPolicy(ENDPOINT, { ingressEnforced: true, egressEnforced: false, entries });
    return (Bun.nanoseconds() - start) / 1e6;
  });
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(`${prefix}m`);
  const bpfRoot = `/sys/fs/bpf/${prefix}m`;
  let netns: Netns | undefined;
  let datapath: NodeDatapath | undefined;
  try {
    netns = Netns.open(Netns.pathOf(namespaces.create("node")));
    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start({ bpfRoot, podCidr: "10.207.0.0/24", mtu: 1500, masquerade: false, netns });
    const empty = await timeUpdates(datapath);
    for (let e = 1; e <= OTHER_ENDPOINTS; e++) {
      datapath.setEndpointPolicy(e, { ingressEnforced: true, egressEnforced: false, entries: Array.from({ length: OTHER_ENTRIES_EACH }, (_, k) => rule(2000 + k, 443)) });
    }
    const full = await timeUpdates(datapath);
    const others = OTHER_ENDPOINTS * OTHER_ENTRIES_EACH;
    return [
      {
        metric: `setEndpointPolicy, 1 of 100 entries changed, ${others} other entries in cilium_policy`,
        ours: median(full),
        baseline: median(empty),
        unit: "ms",
        method: `NodeDatapath in a netns, ${CALLS} calls (alternating one port), median; baseline: the same with no other entries in the map`,
        better: "lower",
      },
    ];
  } finally {
    datapath?.close();
    netns?.close();
    rmSync(bpfRoot, { recursive: true, force: true });
    namespaces.removeAll();
  }
}

const benchmark: Benchmark = {
  name: "policy-map-update",
  unavailable: () => podBenchUnavailable(),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`policy-map-update: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
