/**
 * Hubble end to end in the real agent (dist/cilium) on the real kernel, at
 * --monitor-aggregation none (every packet traced at every observation point): one pod sends
 * another small UDP datagrams that policy allows, so each datagram is three trace events. Two
 * loads, each with Hubble metrics off and on (drop, flow, port-distribution: the flow
 * listeners), in the same run: paced at PACED_EVENTS events/s (the target, nothing may be lost),
 * and as fast as the sender can. Measured over the flood: flows the agent stored per second (ServerStatus
 * seen_flows), events the datapath offered (stored + lost), the events the kernel could not
 * deliver (cilium_metrics' lost-event counter, read from its pin), and the agent's CPU time per
 * stored flow (/proc/PID/stat). The flood generator shares the machine's cores with the agent,
 * so flows per agent CPU-second is the per-core capacity.
 *
 * Runnable alone: bun scripts/benchmarks/hubble-e2e.ts
 */
import { credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BpfMap } from "../../src/datapath/bpf/index.ts";
import { METRIC_EVENTS_LOST, METRICS_MAP, MetricsKey, metricsValuePerCpu } from "../../src/datapath/maps/metrics.ts";
import { pinnedMapPath } from "../../src/datapath/pinned.ts";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import type { Benchmark, BenchRow } from "./harness.ts";
import { benchPrefix, inNetns, podBenchUnavailable } from "./lib/pods.ts";

const FLOOD_SECONDS = 3;
/** Trace events per allowed datagram at aggregation none: from-endpoint, to-stack, to-endpoint. */
const EVENTS_PER_DATAGRAM = 3;
const PACED_EVENTS = 120_000;
const CLOCK_TICKS = 100;
const METRICS = "drop,flow,port-distribution";

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Events the datapath could not write into cilium_events since the maps were created. */
function kernelLost(bpfRoot: string): number {
  const map = BpfMap.openPinned(pinnedMapPath(bpfRoot, METRICS_MAP), MetricsKey, metricsValuePerCpu());
  try {
    let lost = 0n;
    for (const [key, perCpu] of map.entries()) if (key.reason === METRIC_EVENTS_LOST) for (const v of perCpu) lost += v.packets;
    return Number(lost);
  } finally {
    map.close();
  }
}

interface FloodResult {
  stored: number;
  lost: number;
  datagrams: number;
  cpu: number;
  elapsed: number;
}

async function flood(withMetrics: boolean, datagramsPerSecond?: number): Promise<FloodResult> {
  const namespaces = new TestNamespaces(`${benchPrefix()}${withMetrics ? "m" : ""}`);
  let node: TestNode | undefined;
  let observer: any;
  try {
    const metricsArgs = withMetrics ? ["--hubble-metrics-server", "127.0.0.1:9965", "--hubble-metrics", METRICS] : [];
    node = new TestNode(namespaces, { name: "hub", podCidr: "10.204.0.0/24", extraAgentArgs: ["--hubble-event-buffer-capacity", "65535", "--monitor-aggregation", "none", ...metricsArgs] });
    await node.startAgent();
    const client = node.addPod("client", "bench", { app: "client" });
    const server = node.addPod("server", "bench", { app: "server" });
    const policy = join(node.dir, "allow-udp.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: udp-from-client, namespace: bench }\nspec:\n  endpointSelector: { matchLabels: { app: server } }\n  ingress:\n    - fromEndpoints: [{ matchLabels: { app: client } }]\n      toPorts: [{ ports: [{ port: "9999", protocol: UDP }] }]\n`,
    );
    const revision = /^Revision: (\d+)$/m.exec(node.cilium(["policy", "import", policy]).stdout)![1]!;
    node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"]);
    const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
    observer = new Observer(`unix:${join(node.dir, "hubble.sock")}`, credentials.createInsecure());
    const status = () => new Promise<any>((resolve, reject) => observer.ServerStatus({}, (e: Error | null, r: any) => (e ? reject(e) : resolve(r))));

    const pid = node.agentPid!;
    await Bun.sleep(1500);
    const seenBefore = Number((await status()).seen_flows);
    const lostBefore = kernelLost(node.bpfRoot);
    const cpuBefore = cpuSeconds(pid);
    const started = performance.now();
    const sender = Bun.spawnSync(inNetns(client.netns, [process.execPath, join(import.meta.dir, "lib/udp-flood.ts"), server.ip, "9999", String(FLOOD_SECONDS), ...(datagramsPerSecond ? [String(datagramsPerSecond)] : [])]), { stdout: "pipe", stderr: "pipe" });
    if (sender.exitCode !== 0) throw new Error(`flood failed: ${sender.stderr.toString()}`);
    // Let the agent drain the kernel ring.
    await Bun.sleep(1000);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(pid) - cpuBefore;
    const stored = Number((await status()).seen_flows) - seenBefore;
    const lost = kernelLost(node.bpfRoot) - lostBefore;
    return { stored, lost, datagrams: Number(sender.stdout.toString().trim()), cpu, elapsed };
  } finally {
    observer?.close();
    await node?.destroy();
    namespaces.removeAll();
  }
}

async function measure(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [load, rate] of [[`paced at ${PACED_EVENTS / 1000}k events/s`, PACED_EVENTS / EVENTS_PER_DATAGRAM], ["sender's full speed", undefined]] as const) {
    const off = await flood(false, rate);
    const on = await flood(true, rate);
    const method = (r: FloodResult) =>
      `${FLOOD_SECONDS} s of 16-byte UDP datagrams (${(r.datagrams / FLOOD_SECONDS).toFixed(0)}/s, ${load}) from one pod to another, allowed, --monitor-aggregation none, ring 65535; stored = ServerStatus seen_flows delta; lost ${r.lost} (${((100 * r.lost) / Math.max(1, r.stored + r.lost)).toFixed(2)}%, cilium_metrics lost-event counter)`;
    for (const [label, r] of [["metrics off", off], ["metrics on", on]] as const) {
      rows.push(
        { metric: `Hubble end to end (${load}), ${label}: trace events -> stored flows/s`, ours: r.stored / FLOOD_SECONDS, baseline: (r.stored + r.lost) / FLOOD_SECONDS, unit: "flows/s", method: `${method(r)}; baseline: events the datapath offered (stored + lost) per second`, better: "higher" },
        { metric: `Hubble end to end (${load}), ${label}: stored flows per agent CPU-second`, ours: r.cpu > 0 ? r.stored / r.cpu : 0, baseline: label === "metrics on" && off.cpu > 0 ? off.stored / off.cpu : null, unit: "flows/CPU-s", method: `${method(r)}; agent utime+stime over ${r.elapsed.toFixed(1)} s: ${r.cpu.toFixed(2)} s${label === "metrics on" ? `; baseline: metrics off, same load (${METRICS})` : ""}`, better: "higher" },
      );
    }
  }
  return rows;
}

const benchmark: Benchmark = {
  name: "hubble-e2e",
  unavailable: () => podBenchUnavailable(),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`hubble-e2e: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
