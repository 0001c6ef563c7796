/**
 * Pod-to-pod TCP on one node: bulk throughput (iperf3) and request/response rate (lib/tcp-rr.ts,
 * one connection, one 64-byte request in flight), between two pods attached through our
 * datapath (real agent, real CNI plugin, bpf_redirect_peer between the pods' veths) and between
 * two namespaces joined by plain veths and a Linux bridge with no BPF at all. The two setups take
 * turns round by round; each figure is the median of the rounds, the ratio the median of the
 * rounds' ratios.
 *
 * Runnable alone: bun scripts/benchmarks/pod-throughput.ts
 */
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import type { Benchmark, BenchRow } from "./harness.ts";
import { type Background, benchPrefix, plainBridgeNode, podBenchUnavailable } from "./lib/pods.ts";
import { alternateRounds, type PodPair, startPairServers, tcpRows } from "./lib/tcp-pair.ts";

const ROUNDS = 5;

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

    const setups = "ours: 2 pods via cilium-cni + agent (BPF); baseline: 2 netns on veths into a plain Linux bridge, no BPF";
    return tcpRows(alternateRounds(ours, baseline, ROUNDS), "pod-to-pod", setups);
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
