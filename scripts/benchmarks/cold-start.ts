/** Cold start of the CLI modes against Debian's Go reference CNI plugin, in the same run. */
import { join } from "node:path";
import { median, sampleMany, timeCommand, type Benchmark } from "./harness.ts";

const dist = join(import.meta.dir, "../../dist");
const REFERENCE_BRIDGE = "/usr/lib/cni/bridge";
const RUNS = 50;

const benchmark: Benchmark = {
  name: "cold-start",
  async run() {
    const version = { ...(process.env as Record<string, string>), CNI_COMMAND: "VERSION" };
    const stdin = '{"cniVersion":"1.0.0"}';
    const bridge = median(await sampleMany(RUNS, () => timeCommand([REFERENCE_BRIDGE], version, stdin)));
    const cni = median(await sampleMany(RUNS, () => timeCommand([join(dist, "cilium-cni")], version, stdin)));
    const hubble = median(await sampleMany(RUNS, () => timeCommand([join(dist, "hubble"), "--help"])));
    const method = `median of ${RUNS} runs, spawn to exit; baseline: ${REFERENCE_BRIDGE} VERSION (Go)`;
    return [
      { metric: "cilium-cni VERSION cold start", ours: cni, baseline: bridge, unit: "ms", better: "lower", method },
      { metric: "hubble --help cold start", ours: hubble, baseline: bridge, unit: "ms", better: "lower", method },
    ];
  },
};
export default benchmark;
