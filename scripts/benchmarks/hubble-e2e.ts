/**
 * Hubble end to end in the real agent (dist/cilium) on the real kernel: one pod floods another
 * with small UDP datagrams that policy denies, so every datagram is a drop event (drops are
 * reported at every monitor aggregation level). Measured over the flood: flows the agent stored
 * per second (ServerStatus seen_flows), the offered event rate as the baseline (datagrams the
 * sender's kernel accepted), what was lost on the way (offered minus stored), and the agent's
 * CPU time per stored flow (/proc/PID/stat).
 *
 * Runnable alone: bun scripts/benchmarks/hubble-e2e.ts
 */
import { credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import type { Benchmark, BenchRow } from "./harness.ts";
import { benchPrefix, inNetns, podBenchUnavailable } from "./lib/pods.ts";

const FLOOD_SECONDS = 3;
const CLOCK_TICKS = 100;

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function measure(): Promise<BenchRow[]> {
  const namespaces = new TestNamespaces(benchPrefix());
  let node: TestNode | undefined;
  let observer: any;
  try {
    node = new TestNode(namespaces, { name: "hub", podCidr: "10.204.0.0/24", extraAgentArgs: ["--hubble-event-buffer-capacity", "65535"] });
    await node.startAgent();
    const client = node.addPod("client", "bench", { app: "client" });
    const server = node.addPod("server", "bench", { app: "server" });
    const policy = join(node.dir, "deny-udp.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: tcp-only, namespace: bench }\nspec:\n  endpointSelector: { matchLabels: { app: server } }\n  ingress:\n    - fromEndpoints: [{ matchLabels: { app: client } }]\n      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n`,
    );
    const revision = /^Revision: (\d+)$/m.exec(node.cilium(["policy", "import", policy]).stdout)![1]!;
    node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"]);
    const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
    observer = new Observer(`unix:${join(node.dir, "hubble.sock")}`, credentials.createInsecure());
    const status = () => new Promise<any>((resolve, reject) => observer.ServerStatus({}, (e: Error | null, r: any) => (e ? reject(e) : resolve(r))));

    const pid = node.agentPid!;
    await Bun.sleep(1500);
    const seenBefore = Number((await status()).seen_flows);
    const cpuBefore = cpuSeconds(pid);
    const started = performance.now();
    const flood = Bun.spawnSync(inNetns(client.netns, [process.execPath, join(import.meta.dir, "lib/udp-flood.ts"), server.ip, "9999", String(FLOOD_SECONDS)]), { stdout: "pipe", stderr: "pipe" });
    if (flood.exitCode !== 0) throw new Error(`flood failed: ${flood.stderr.toString()}`);
    const offered = Number(flood.stdout.toString().trim());
    // Let the agent drain the kernel ring and read its lost counter (polled once a second).
    await Bun.sleep(1500);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(pid) - cpuBefore;
    const stored = Number((await status()).seen_flows) - seenBefore;
    const lostPct = offered > 0 ? (100 * Math.max(0, offered - stored)) / offered : 0;
    const method = `${FLOOD_SECONDS} s of 16-byte UDP datagrams from one pod to another's denied port (one drop event each), read by the real agent (ring 65535); stored = ServerStatus seen_flows delta`;
    return [
      { metric: "Hubble end to end: drop events -> stored flows/s (real agent)", ours: stored / FLOOD_SECONDS, baseline: offered / FLOOD_SECONDS, unit: "flows/s", method: `${method}; baseline: events offered (datagrams sent) per second; lost ${lostPct.toFixed(1)}%`, better: "higher" },
      { metric: "Hubble end to end: stored flows per agent CPU-second", ours: cpu > 0 ? stored / cpu : 0, baseline: null, unit: "flows/CPU-s", method: `${method}; agent utime+stime over ${elapsed.toFixed(1)} s: ${cpu.toFixed(2)} s`, better: "higher" },
    ];
  } finally {
    observer?.close();
    await node?.destroy();
    namespaces.removeAll();
  }
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
