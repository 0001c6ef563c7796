/**
 * The hubble CLI through dist/hubble against a Hubble server (its own process) holding a full
 * ring of 65,535 flows on a unix socket:
 * - cold start of `hubble observe --last 1` (spawn to exit), baseline `cilium --version` of the
 *   same binary (the runtime's own start-up); target < 50 ms;
 * - GetFlows streaming rate of `hubble observe --last 65535 -o json|compact > /dev/null`,
 *   baseline a @grpc/grpc-js + protobufjs client draining the same stream without printing.
 *
 * Runnable alone: bun scripts/benchmarks/run.ts hubble-cli
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, sampleMany, timeCommand, type Benchmark, type BenchRow } from "./harness.ts";

const dist = join(import.meta.dir, "../../dist");
const FLOWS = 65_535;
const COLD_RUNS = 40;
const STREAM_RUNS = 5;

async function startServer(socket: string): Promise<Bun.Subprocess<"ignore", "pipe", "inherit">> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "lib/hubble-server.ts"), socket, String(FLOWS)], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the benchmark Hubble server exited before it was ready");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return proc;
}

const benchmark: Benchmark = {
  name: "hubble-cli",
  async run(): Promise<BenchRow[]> {
    const dir = mkdtempSync(join(tmpdir(), "hubble-bench-"));
    const socket = join(dir, "hubble.sock");
    const server = await startServer(socket);
    try {
      const hubble = join(dist, "hubble");
      const target = `unix://${socket}`;
      const baselineStart = median(await sampleMany(COLD_RUNS, () => timeCommand([join(dist, "cilium"), "--version"])));
      const observeStart = median(await sampleMany(COLD_RUNS, () => timeCommand([hubble, "observe", "--server", target, "--last", "1"])));
      const rate = (ms: number) => FLOWS / (ms / 1000);
      const drain = median(await sampleMany(STREAM_RUNS, () => timeCommand([process.execPath, join(import.meta.dir, "lib/hubble-drain.ts"), socket, String(FLOWS)]), 1));
      const json = median(await sampleMany(STREAM_RUNS, () => timeCommand([hubble, "observe", "--server", target, "--last", String(FLOWS), "-o", "json"]), 1));
      const compact = median(await sampleMany(STREAM_RUNS, () => timeCommand([hubble, "observe", "--server", target, "--last", String(FLOWS), "-o", "compact"]), 1));
      const streamMethod = `median of ${STREAM_RUNS} runs, ${FLOWS} flows / (spawn to exit), stdout to /dev/null; baseline: @grpc/grpc-js + protobufjs client draining the same GetFlows without printing`;
      return [
        {
          metric: "hubble observe --last 1 cold start (unix socket)",
          ours: observeStart,
          baseline: baselineStart,
          unit: "ms",
          better: "lower",
          method: `median of ${COLD_RUNS} runs, spawn to exit, server holding ${FLOWS} flows; baseline: dist/cilium --version (runtime start-up); target < 50 ms`,
        },
        { metric: "hubble observe -o json streaming rate", ours: rate(json), baseline: rate(drain), unit: "flows/s", better: "higher", method: streamMethod },
        { metric: "hubble observe -o compact streaming rate", ours: rate(compact), baseline: rate(drain), unit: "flows/s", better: "higher", method: streamMethod },
      ];
    } finally {
      server.kill("SIGTERM");
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default benchmark;
