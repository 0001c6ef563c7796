/**
 * Cross-node pod-to-pod TCP: bulk throughput (iperf3) and request/response rate (lib/tcp-rr.ts,
 * one connection, one 64-byte request in flight), from a pod on node A to a pod on node B.
 *
 * Both setups are two node namespaces joined by an underlay (a Linux bridge in a third
 * namespace, MTU 1500), pods with MTU 1450:
 *   ours      our datapath in routing mode tunnel on each node (NodeDatapath, the programs and
 *             maps the agent loads), pods plumbed as the CNI plugin does, each node told about
 *             the other with upsertRemoteNode and the remote pod's ipcache entry: pod veth ->
 *             cil_from_container, VXLAN written in BPF (identity in the VNI) -> underlay ->
 *             cil_from_netdev, decapsulated in BPF (frames it leaves to the kernel, such as the
 *             GSO aggregates a veth underlay passes whole: cilium_vxlan -> cil_from_overlay) ->
 *             redirect_peer into the pod;
 *   baseline  no BPF at all: on each node a Linux bridge holding the pod's veth and a plain VXLAN
 *             device (VNI 42, port 8472, no learning, a static FDB entry to the other node), so
 *             both pods share one L2 network across the nodes.
 * The setups take turns round by round; each figure is the median of the rounds, the ratio the
 * median of the rounds' ratios.
 *
 * Runnable alone: bun scripts/benchmarks/cross-node-throughput.ts
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import type { NodeDatapath } from "../../src/datapath/node.ts";
import { run, TestNamespaces } from "../../tests/helpers/netns.ts";
import type { Benchmark, BenchRow } from "./harness.ts";
import { type Background, benchPrefix } from "./lib/pods.ts";
import { alternateRounds, type PodPair, startPairServers, tcpRows } from "./lib/tcp-pair.ts";

const ROUNDS = 9;
const UNDERLAY_MTU = 1500;
const POD_MTU = UNDERLAY_MTU - 50;


interface Underlay {
  nodes: { netns: string; ip: string; uplink: string }[];
}

/**
 * Once anything on the machine loaded br_netfilter, every bridge in a new namespace hands each
 * frame to the IP hooks (a route lookup per frame and per bridge). The baseline crosses three
 * bridges per direction, ours one: off in every namespace of both setups, the plain VXLAN is the
 * plain Linux path it stands for. -e: the keys exist only while br_netfilter is loaded.
 */
function bridgeNetfilterOff(netns: string): void {
  run(["ip", "netns", "exec", netns, "sysctl", "-q", "-e", "-w", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0"]);
}

/** Two node namespaces on one bridged underlay /24. */
function underlay(namespaces: TestNamespaces, prefix: string, tag: string, subnet24: string): Underlay {
  const ul = namespaces.create(`${tag}ul`);
  bridgeNetfilterOff(ul);
  run(["ip", "-n", ul, "link", "add", "br0", "type", "bridge"]);
  run(["ip", "-n", ul, "link", "set", "br0", "up"]);
  const nodes = ["a", "b"].map((name, i) => {
    const netns = namespaces.create(`${tag}n${name}`);
    bridgeNetfilterOff(netns);
    const uplink = `${prefix}${tag}u${name}`;
    const ip = `${subnet24}.${i + 1}`;
    run(["ip", "link", "add", uplink, "mtu", String(UNDERLAY_MTU), "netns", netns, "type", "veth", "peer", "name", `${prefix}${tag}w${name}`, "netns", ul]);
    run(["ip", "-n", ul, "link", "set", `${prefix}${tag}w${name}`, "master", "br0", "up"]);
    run(["ip", "-n", netns, "link", "set", "lo", "up"]);
    run(["ip", "-n", netns, "addr", "add", `${ip}/24`, "dev", uplink]);
    run(["ip", "-n", netns, "link", "set", uplink, "up"]);
    return { netns, ip, uplink };
  });
  return { nodes };
}

/** A pod namespace with eth0 (IPv6 off) whose host end `hostEnd` is left in `node`. */
function podNamespace(namespaces: TestNamespaces, node: string, name: string, hostEnd: string): string {
  const netns = namespaces.create(name);
  run(["ip", "-n", node, "link", "add", hostEnd, "mtu", String(POD_MTU), "type", "veth", "peer", "name", "eth0", "mtu", String(POD_MTU), "netns", netns]);
  run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"]);
  run(["ip", "-n", netns, "link", "set", "lo", "up"]);
  run(["ip", "-n", netns, "link", "set", "eth0", "up"]);
  run(["ip", "-n", node, "link", "set", hostEnd, "up"]);
  return netns;
}

/** Ours: NodeDatapath in tunnel mode on both nodes, one pod each. */
function ourNodes(Datapath: typeof NodeDatapath, namespaces: TestNamespaces, prefix: string, bpfRoots: string[], datapaths: NodeDatapath[]): PodPair {
  const { nodes } = underlay(namespaces, prefix, "o", "10.96.0");
  const specs = [
    { podCidr: "10.217.0.0/25", gateway: "10.217.0.1", podIp: "10.217.0.10", pod: "oca", identity: 1000 },
    { podCidr: "10.217.0.128/25", gateway: "10.217.0.129", podIp: "10.217.0.140", pod: "osb", identity: 2000 },
  ];
  const pods: { netns: string; ip: string }[] = [];
  nodes.forEach((node, i) => {
    const spec = specs[i]!;
    const bpfRoot = `/sys/fs/bpf/${prefix}o${i}`;
    rmSync(bpfRoot, { recursive: true, force: true });
    bpfRoots.push(bpfRoot);
    const netns = Netns.open(`/var/run/netns/${node.netns}`);
    const datapath = Datapath.start({
      bpfRoot,
      podCidr: spec.podCidr,
      clusterCidr: "10.217.0.0/24",
      mtu: POD_MTU,
      masquerade: true,
      devices: [node.uplink],
      netns,
      routingMode: "tunnel",
    });
    datapaths.push(datapath);
    const hostEnd = `${prefix}ol${i}`;
    const podNs = podNamespace(namespaces, node.netns, spec.pod, hostEnd);
    run(["ip", "-n", podNs, "addr", "add", `${spec.podIp}/32`, "dev", "eth0"]);
    run(["ip", "-n", podNs, "route", "add", spec.gateway, "dev", "eth0", "scope", "link"]);
    run(["ip", "-n", podNs, "route", "add", "default", "via", spec.gateway, "dev", "eth0"]);
    run(["ip", "netns", "exec", node.netns, "sysctl", "-q", "-w", `net.ipv4.conf.${hostEnd}.rp_filter=0`]);
    const host = Netlink.open({ netns });
    const pod = Netlink.open({ netns: `/var/run/netns/${podNs}` });
    try {
      datapath.applyEndpoint({ id: 100 + i, ipv4: spec.podIp, ifname: hostEnd, ifindex: host.link(hostEnd)!.index, mac: pod.link("eth0")!.mac!, identity: spec.identity });
    } finally {
      host.close();
      pod.close();
    }
    pods.push({ netns: podNs, ip: spec.podIp });
  });
  datapaths.forEach((datapath, i) => {
    const other = 1 - i;
    datapath.upsertRemoteNode({ name: `node-${other}`, ipv4: nodes[other]!.ip, podCidrs: [specs[other]!.podCidr] });
    datapath.upsertIpcache(`${specs[other]!.podIp}/32`, specs[other]!.identity, { tunnelEndpoint: nodes[other]!.ip });
  });
  return { label: "ours (tunnel)", client: pods[0]!.netns, server: pods[1]!.netns, serverIp: pods[1]!.ip };
}

/** Baseline: per node a bridge with the pod and a plain VXLAN device to the other node. */
function plainVxlanNodes(namespaces: TestNamespaces, prefix: string): PodPair {
  const { nodes } = underlay(namespaces, prefix, "p", "10.95.0");
  const pods = nodes.map((node, i) => {
    const other = nodes[1 - i]!;
    const bridge = `${prefix}pbr`;
    const vxlan = `${prefix}pvx`;
    run(["ip", "-n", node.netns, "link", "add", bridge, "mtu", String(POD_MTU), "type", "bridge"]);
    run(["ip", "-n", node.netns, "link", "add", vxlan, "type", "vxlan", "id", "42", "dstport", "8472", "local", node.ip, "dev", node.uplink, "nolearning"]);
    run(["ip", "-n", node.netns, "link", "set", vxlan, "master", bridge, "up"]);
    run(["bridge", "-n", node.netns, "fdb", "append", "00:00:00:00:00:00", "dev", vxlan, "dst", other.ip]);
    run(["ip", "-n", node.netns, "link", "set", bridge, "up"]);
    const hostEnd = `${prefix}pl${i}`;
    const podNs = podNamespace(namespaces, node.netns, i === 0 ? "pca" : "psb", hostEnd);
    run(["ip", "-n", node.netns, "link", "set", hostEnd, "master", bridge]);
    const ip = `10.218.0.${10 + i}`;
    run(["ip", "-n", podNs, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    return { netns: podNs, ip };
  });
  return { label: "plain VXLAN", client: pods[0]!.netns, server: pods[1]!.netns, serverIp: pods[1]!.ip };
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(prefix);
  const servers: Background[] = [];
  const bpfRoots: string[] = [];
  const datapaths: NodeDatapath[] = [];
  try {
    // Loaded here: the module embeds build/bpf objects, which exist only after a build.
    const { NodeDatapath: Datapath } = await import("../../src/datapath/node.ts");
    const ours = ourNodes(Datapath, namespaces, prefix, bpfRoots, datapaths);
    const baseline = plainVxlanNodes(namespaces, prefix);
    for (const pair of [ours, baseline]) await startPairServers(pair, servers);

    const setups =
      "ours: 2 node netns on a bridged underlay, our datapath in tunnel mode (VXLAN in BPF, identity in the VNI); " +
      `baseline: the same nodes with a Linux bridge + plain VXLAN (static FDB), no BPF; pod MTU ${POD_MTU}`;
    return tcpRows(alternateRounds(ours, baseline, ROUNDS), "cross-node pod-to-pod", setups);
  } finally {
    for (const server of servers) await server.stop();
    for (const datapath of datapaths) datapath.close();
    namespaces.removeAll();
    for (const root of bpfRoots) rmSync(root, { recursive: true, force: true });
  }
}

const benchmark: Benchmark = {
  name: "cross-node-throughput",
  unavailable: () => {
    if (process.getuid?.() !== 0) return "needs root (network namespaces, BPF)";
    for (const tool of ["ip", "bridge", "nsenter", "iperf3", "ss"]) if (!Bun.which(tool)) return `needs ${tool}`;
    if (!existsSync(join(import.meta.dir, "../../build/bpf/bpf_overlay.o"))) return "build/bpf is not built (bun scripts/build.ts)";
    return undefined;
  },
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`cross-node-throughput: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
