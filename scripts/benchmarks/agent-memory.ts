/**
 * Resident memory of the real `cilium agent` (VmRSS from /proc/PID/status): idle after start-up,
 * and with 100 endpoints after 100 CNI ADDs through dist/cilium-cni. There is no baseline; the
 * target is < 100 MB with 100 endpoints.
 *
 * Runnable alone: bun scripts/benchmarks/agent-memory.ts
 */
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import type { Benchmark, BenchRow } from "./harness.ts";
import { benchPrefix, memoryOf, podBenchUnavailable } from "./lib/pods.ts";

const ENDPOINTS = 100;
const SETTLE_MS = 3000;

async function measure(): Promise<BenchRow[]> {
  const namespaces = new TestNamespaces(benchPrefix());
  let node: TestNode | undefined;
  try {
    node = new TestNode(namespaces, { name: "mem", podCidr: "10.205.0.0/24" });
    await node.startAgent();
    const pid = node.agentPid!;
    await Bun.sleep(SETTLE_MS);
    const idle = memoryOf(pid);

    for (let i = 0; i < ENDPOINTS; i++) node.addPod(`p${i}`, "bench");
    const { body: endpoints } = await node.api<unknown[]>("GET", "/endpoint");
    if (endpoints.length !== ENDPOINTS) throw new Error(`the agent has ${endpoints.length} endpoints, expected ${ENDPOINTS}`);
    await Bun.sleep(SETTLE_MS);
    const loaded = memoryOf(pid);

    const method = `VmRSS of the dist/cilium agent process (MiB); target < 100 MB with ${ENDPOINTS} endpoints`;
    return [
      {
        metric: "agent RSS, idle",
        ours: idle.rssMb,
        baseline: null,
        unit: "MB",
        method: `${method}; read ${SETTLE_MS / 1000} s after the API answered`,
        better: "lower",
      },
      {
        metric: `agent RSS, ${ENDPOINTS} endpoints`,
        ours: loaded.rssMb,
        baseline: null,
        unit: "MB",
        method: `${method}; read ${SETTLE_MS / 1000} s after ${ENDPOINTS} CNI ADDs; peak (VmHWM) ${loaded.hwmMb.toFixed(1)} MB`,
        better: "lower",
      },
    ];
  } finally {
    await node?.destroy();
    namespaces.removeAll();
  }
}

const benchmark: Benchmark = {
  name: "agent-memory",
  unavailable: () => podBenchUnavailable(),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`agent-memory: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
