/**
 * CNI ADD and DEL latency over 100 pods: our plugin (dist/cilium-cni talking to a running
 * `cilium agent`) against Debian's reference `bridge` plugin with `host-local` IPAM (Go), each in
 * its own throwaway node namespace. Pod namespaces are made beforehand; only the plugin
 * invocation is timed, spawn to exit, exactly as a runtime calls it (CNI_* env, config on
 * stdin). The two plugins take turns pod by pod, so drift on the machine hits both alike.
 *
 * Runnable alone: bun scripts/benchmarks/cni-latency.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Netns } from "../../src/datapath/netns.ts";
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { netnsPath, run, TestNamespaces } from "../../tests/helpers/netns.ts";
import { type Benchmark, type BenchRow, percentile } from "./harness.ts";
import { benchPrefix, CILIUM_CNI, podBenchUnavailable, REFERENCE_CNI_DIR } from "./lib/pods.ts";

const PODS = 100;
const WARMUP = 3;
const CNI_VERSION = "1.0.0";

interface Plugin {
  label: string;
  /** The node namespace, entered by this thread while the plugin is spawned. */
  node: Netns;
  argv: string[];
  config: string;
  cniPath: string;
  add: number[];
  del: number[];
}

/**
 * One invocation, spawned from this thread while it sits in the node's network namespace (the
 * child inherits it; no nsenter in the timed path). Milliseconds from spawn to exit.
 */
function invoke(plugin: Plugin, command: "ADD" | "DEL", containerId: string, podNetns: string, name: string): number {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netnsPath(podNetns),
    CNI_IFNAME: "eth0",
    // As containerd and CRI-O pass them: IgnoreUnknown lets plugins skip the Kubernetes keys.
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${name}`,
    CNI_PATH: plugin.cniPath,
  };
  const stdin = Buffer.from(plugin.config);
  const { ms, result } = plugin.node.run(() => {
    const start = Bun.nanoseconds();
    const result = Bun.spawnSync(plugin.argv, { env, stdin, stdout: "pipe", stderr: "pipe", timeout: 60_000 });
    return { ms: (Bun.nanoseconds() - start) / 1e6, result };
  });
  if (result.exitCode !== 0) {
    throw new Error(`${plugin.label} ${command} ${name} exited ${result.exitCode}: ${result.stdout.toString()} ${result.stderr.toString()}`.trim());
  }
  return ms;
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(prefix);
  const hostLocalDir = mkdtempSync(`/tmp/${prefix}-host-local-`);
  const handles: Netns[] = [];
  let node: TestNode | undefined;
  try {
    // Ours: the real agent in its node namespace.
    node = new TestNode(namespaces, { name: "cni", podCidr: "10.203.0.0/24" });
    await node.startAgent();
    const oursNode = Netns.open(node.netnsPath);
    handles.push(oursNode);

    // Baseline: a bare node namespace where the bridge plugin makes its bridge on first ADD.
    const refName = namespaces.create("cniref");
    run(["ip", "-n", refName, "link", "set", "lo", "up"]);
    const refNode = Netns.open(netnsPath(refName));
    handles.push(refNode);

    const plugins: Plugin[] = [
      {
        label: "cilium-cni",
        node: oursNode,
        argv: [CILIUM_CNI],
        config: JSON.stringify(node.networkConfig({ cniVersion: CNI_VERSION, name: "bench" })),
        cniPath: "/opt/cni/bin",
        add: [],
        del: [],
      },
      {
        label: "bridge",
        node: refNode,
        argv: [join(REFERENCE_CNI_DIR, "bridge")],
        config: JSON.stringify({
          cniVersion: CNI_VERSION,
          name: "bench",
          type: "bridge",
          bridge: `${prefix}br`,
          isGateway: true,
          ipMasq: false,
          ipam: { type: "host-local", subnet: "10.240.0.0/16", dataDir: hostLocalDir },
        }),
        cniPath: REFERENCE_CNI_DIR,
        add: [],
        del: [],
      },
    ];

    // Pod namespaces for both plugins, made before any timing.
    const pods = Array.from({ length: WARMUP + PODS }, (_, i) => {
      const name = i < WARMUP ? `warm-${i}` : `pod-${i - WARMUP}`;
      return plugins.map((plugin, p) => ({ plugin, name, containerId: `${prefix}${p}${name}`, netns: namespaces.create(`${p}${name}`) }));
    });

    // Warm-up pods (the bridge plugin creates its bridge, the agent warms up), discarded.
    for (const pair of pods.slice(0, WARMUP)) for (const pod of pair) invoke(pod.plugin, "ADD", pod.containerId, pod.netns, pod.name);
    for (const pair of pods.slice(0, WARMUP)) for (const pod of pair) invoke(pod.plugin, "DEL", pod.containerId, pod.netns, pod.name);

    const measured = pods.slice(WARMUP);
    for (const pair of measured) for (const pod of pair) pod.plugin.add.push(invoke(pod.plugin, "ADD", pod.containerId, pod.netns, pod.name));
    for (const pair of measured) for (const pod of pair) pod.plugin.del.push(invoke(pod.plugin, "DEL", pod.containerId, pod.netns, pod.name));

    const [ours, bridge] = plugins as [Plugin, Plugin];
    const method = (command: string) =>
      `${PODS} pods after ${WARMUP} warm-up, one ${command} each, spawn to exit in a node netns (pod netns made beforehand); ` +
      `ours: dist/cilium-cni + running agent; baseline: reference bridge + host-local (Go); the plugins alternate pod by pod`;
    const row = (metric: string, p: number, samples: (plugin: Plugin) => number[], command: string): BenchRow => ({
      metric,
      ours: percentile(samples(ours), p),
      baseline: percentile(samples(bridge), p),
      unit: "ms",
      method: method(command),
      better: "lower",
    });
    return [
      row("CNI ADD latency p50", 50, (p) => p.add, "ADD"),
      row("CNI ADD latency p99", 99, (p) => p.add, "ADD"),
      row("CNI DEL latency p50", 50, (p) => p.del, "DEL"),
      row("CNI DEL latency p99", 99, (p) => p.del, "DEL"),
    ];
  } finally {
    for (const handle of handles) handle.close();
    await node?.destroy();
    namespaces.removeAll();
    rmSync(hostLocalDir, { recursive: true, force: true });
  }
}

const benchmark: Benchmark = {
  name: "cni-latency",
  unavailable: () => podBenchUnavailable([join(REFERENCE_CNI_DIR, "bridge"), join(REFERENCE_CNI_DIR, "host-local")]),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`cni-latency: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
