/**
 * How soon a new pod is reachable cluster-wide: on a 3-node local cluster (tests/helpers/cluster.ts:
 * real etcd, the operator, agents in tunnel mode), from the start of CNI ADD of a pod on node A
 * until a prober pod on node B gets its first ping answer. Baseline, in the same run and for the
 * same pods: a prober on node A itself.
 *
 * Both probers may only send to app=target (an egress policy), so a prober reaches the new pod
 * only once its own node's ipcache maps the pod's IP to the target identity: on B that is the
 * endpoint published to etcd by A and delivered to B by its watch. Each prober starts pinging
 * (every 2 ms, `ping -D` timestamps) when ADD starts, at the address IPAM hands out next (checked
 * against the ADD result), so the figure is not bounded below by the ADD's own duration.
 *
 * Runnable alone: bun scripts/benchmarks/pod-reachable.ts (POD_REACHABLE_SAMPLES=1: every
 * sample to stderr, to see whether a tail comes from ADD itself or from the propagation).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TestCluster } from "../../tests/helpers/cluster.ts";
import type { TestNode } from "../../tests/helpers/cluster-node.ts";
import { type Benchmark, type BenchRow, median, percentile } from "./harness.ts";
import { benchPrefix } from "./lib/pods.ts";

const PODS = 50;
const WARMUP = 3;
const PING_INTERVAL_S = "0.002";
const PING_DEADLINE_S = "10";
const CNI = join(import.meta.dir, "../../dist/cilium-cni");

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: prober-to-target, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: prober } }
  egress:
    - toEndpoints: [{ matchLabels: { app: target } }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: target-from-prober, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: target } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: prober } }]
`;

interface Sample {
  add: number;
  local: number;
  remote: number;
}

const nextIp = (ip: string) => {
  const parts = ip.split(".").map(Number);
  parts[3]! += 1;
  return parts.join(".");
};

/** Pings `ip` from the pod namespace until the first answer; resolves to its epoch ms (ping -D). */
async function firstAnswer(podNetns: string, ip: string): Promise<number> {
  const child = Bun.spawn(["nsenter", `--net=/var/run/netns/${podNetns}`, "ping", "-n", "-D", "-c", "1", "-i", PING_INTERVAL_S, "-w", PING_DEADLINE_S, ip], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  const answer = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(out);
  if (code !== 0 || !answer) throw new Error(`no answer from ${ip} within ${PING_DEADLINE_S} s: ${out.slice(-500)}`);
  return Number(answer[1]) * 1000;
}

/** CNI ADD as a runtime calls it, without blocking (the probers run meanwhile); answers the pod's IP. */
async function cniAdd(node: TestNode, name: string, netns: string): Promise<string> {
  const child = Bun.spawn(node.nodeArgv([CNI]), {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: `${node.namespaces.prefix}${name}`,
      CNI_NETNS: `/var/run/netns/${netns}`,
      CNI_IFNAME: "eth0",
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`,
    },
    stdin: Buffer.from(JSON.stringify(node.networkConfig({ args: { cni: { labels: [{ key: "app", value: "target" }] } } }))),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`CNI ADD of ${name} failed: ${out} ${err}`);
  return String(JSON.parse(out).ips[0].address).split("/")[0]!;
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const cluster = new TestCluster({ prefix, underlaySubnet: `10.94.${(process.pid % 200) + 20}`, clusterPoolCidr: "10.241.0.0/16" });
  try {
    await cluster.start(3);
    const [nodeA, nodeB] = cluster.nodes as [TestNode, TestNode];
    const proberA = nodeA.addPod("proba", "default", { app: "prober" });
    const proberB = nodeB.addPod("probb", "default", { app: "prober" });
    nodeA.cilium(["policy", "import", "-"], { stdin: POLICY });
    for (const node of cluster.nodes) {
      for (let i = 0; (await node.api("GET", "/policy")).body.policy?.length !== 2; i++) {
        if (i > 200) throw new Error(`${node.options.name} did not apply the policy`);
        await Bun.sleep(50);
      }
    }
    // The gate is real: a pod the probers may not talk to stays unreachable from them.
    const bystander = nodeA.addPod("bystander", "default", { app: "bystander" });
    for (const prober of [proberA, proberB]) {
      if (Bun.spawnSync(["nsenter", `--net=/var/run/netns/${prober.netns}`, "ping", "-n", "-c", "3", "-i", "0.2", "-w", "1", bystander.ip]).exitCode === 0) {
        throw new Error(`${prober.name} reached app=bystander: the egress policy does not gate the probers`);
      }
    }
    // A first target tells where IPAM goes next (sequential after it).
    let lastIp = nodeA.addPod("t0", "default", { app: "target" }).ip;
    const samples: Sample[] = [];
    for (let i = 1; i <= WARMUP + PODS; i++) {
      const name = `t${i}`;
      const netns = cluster.namespaces.create(`t${i}`);
      const expected = nextIp(lastIp);
      const start = Date.now();
      const probes = [firstAnswer(proberA.netns, expected), firstAnswer(proberB.netns, expected)];
      const ip = await cniAdd(nodeA, name, netns);
      const added = Date.now();
      if (ip !== expected) throw new Error(`IPAM gave ${ip}, not the next address ${expected}: the probers pinged the wrong pod`);
      const [local, remote] = await Promise.all(probes);
      lastIp = ip;
      if (i > WARMUP) samples.push({ add: added - start, local: local! - start, remote: remote! - start });
    }
    if (process.env.POD_REACHABLE_SAMPLES) process.stderr.write(`${samples.map((s) => `add ${s.add} local ${s.local.toFixed(1)} remote ${s.remote.toFixed(1)}`).join("\n")}\n`);
    const remote = samples.map((s) => s.remote);
    const local = samples.map((s) => s.local);
    const add = samples.map((s) => s.add);
    const method =
      `3 nodes (real etcd, operator, agents in tunnel mode), ${PODS} pods added one by one on node A (after ${WARMUP} warm-up); ` +
      `ours: CNI ADD start -> first ping answer from a prober on node B (egress policy: only app=target, so B must have learned the pod's identity from etcd); ` +
      `baseline: the same from a prober on node A; ping every ${Number(PING_INTERVAL_S) * 1000} ms from ADD start; CNI ADD itself p50 ${median(add).toFixed(0)} ms`;
    return [
      { metric: "new pod reachable from another node (p50)", ours: median(remote), baseline: median(local), unit: "ms", method, better: "lower" },
      { metric: "new pod reachable from another node (p99)", ours: percentile(remote, 99), baseline: percentile(local, 99), unit: "ms", method, better: "lower" },
    ];
  } finally {
    await cluster.destroy();
  }
}

const benchmark: Benchmark = {
  name: "pod-reachable",
  unavailable: () => {
    if (process.getuid?.() !== 0) return "needs root (network namespaces, BPF)";
    for (const tool of ["ip", "nsenter", "ping", "curl", "/usr/bin/etcd"]) if (!Bun.which(tool) && !existsSync(tool)) return `needs ${tool}`;
    if (!existsSync(join(import.meta.dir, "../../dist/cilium"))) return "dist/cilium is not built (bun scripts/build.ts)";
    return undefined;
  },
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`pod-reachable: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
