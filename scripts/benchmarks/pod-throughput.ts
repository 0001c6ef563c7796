/**
 * Pod-to-pod TCP on one node: bulk throughput (iperf3) and request/response rate (lib/tcp-rr.ts,
 * one connection, one 64-byte request in flight), between two pods attached through our
 * datapath (real agent, real CNI plugin, bpf_redirect_peer between the pods' veths) and between
 * two namespaces joined by plain veths and a Linux bridge with no BPF at all. The two setups take
 * turns run by run; each figure is the median of the runs.
 *
 * Runnable alone: bun scripts/benchmarks/pod-throughput.ts
 */
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import { type Benchmark, type BenchRow, median } from "./harness.ts";
import { type Background, benchPrefix, plainBridgeNode, podBenchUnavailable } from "./lib/pods.ts";
import { IPERF_OMIT, IPERF_SECONDS, iperfGbps, PLACEMENT, type PodPair, RR_SECONDS, RR_SIZE, rrRate, startPairServers } from "./lib/tcp-pair.ts";

const RUNS = 3;


async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(prefix);
  const servers: Background[] = [];
  let node: TestNode | undefined;
  try {
    node = new TestNode(namespaces, { name: "tput", podCidr: "10.204.0.0/24" });
    await node.startAgent();
    const [client, server] = [node.addPod("client"), node.addPod("server")];
    const ours: PodPair = { label: "ours", client: client.netns, server: server.netns, serverIp: server.ip };

    const plain = plainBridgeNode(namespaces, prefix, "10.241.0", ["client", "server"]);
    const baseline: PodPair = { label: "plain bridge", client: plain.pods[0]!.netns, server: plain.pods[1]!.netns, serverIp: plain.pods[1]!.ip };

    for (const pair of [ours, baseline]) await startPairServers(pair, servers);

    const samples = { ours: { gbps: [] as number[], rr: [] as number[] }, baseline: { gbps: [] as number[], rr: [] as number[] } };
    for (let i = 0; i < RUNS; i++) {
      for (const [key, pair] of [["ours", ours], ["baseline", baseline]] as const) {
        samples[key].gbps.push(iperfGbps(pair));
        samples[key].rr.push(rrRate(pair));
      }
    }

    const setups = `ours: 2 pods via cilium-cni + agent (BPF); baseline: 2 netns on veths into a plain Linux bridge, no BPF; ${PLACEMENT}; alternating, median of ${RUNS}`;
    return [
      {
        metric: "pod-to-pod TCP throughput (1 stream)",
        ours: median(samples.ours.gbps),
        baseline: median(samples.baseline.gbps),
        unit: "Gbit/s",
        method: `iperf3 -t ${IPERF_SECONDS} -O ${IPERF_OMIT}, received rate; ${setups}`,
        better: "higher",
      },
      {
        metric: `pod-to-pod TCP request/response (${RR_SIZE} B, 1 conn)`,
        ours: median(samples.ours.rr),
        baseline: median(samples.baseline.rr),
        unit: "trans/s",
        method: `lib/tcp-rr.ts (Bun ping-pong, ${RR_SECONDS} s), same tool both sides: Bun's event loop bounds the absolute rate; ${setups}`,
        better: "higher",
      },
    ];
  } finally {
    for (const server of servers) await server.stop();
    await node?.destroy();
    namespaces.removeAll();
  }
}

const benchmark: Benchmark = {
  name: "pod-throughput",
  unavailable: () => podBenchUnavailable(["iperf3", "ss"]),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`pod-throughput: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
