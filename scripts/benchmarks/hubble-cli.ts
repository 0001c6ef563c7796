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
import { median, type Benchmark, type BenchRow } from "./harness.ts";

const dist = join(import.meta.dir, "../../dist");
const FLOWS = 65_535;
const COLD_RUNS = 40;
const STREAM_RUNS = 5;

interface Sample {
  wallMs: number;
  /** User + system CPU of the command's process: what it costs, whatever else runs on the machine. */
  cpuMs: number;
}

function measure(argv: string[]): Sample {
  const start = Bun.nanoseconds();
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const wallMs = (Bun.nanoseconds() - start) / 1e6;
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
  return { wallMs, cpuMs: Number(result.resourceUsage.cpuTime.total) / 1000 };
}

/**
 * Medians of wall and CPU time of each command over `n` rounds, the commands taking turns within
 * a round so that all see the same load on a shared machine; one discarded warm-up round.
 */
interface Stats {
  wall: number;
  cpu: number;
}

function interleaved<const C extends readonly string[][]>(n: number, commands: C): { [K in keyof C]: Stats } {
  for (const argv of commands) measure(argv);
  const runs = commands.map(() => [] as Sample[]);
  for (let i = 0; i < n; i++) commands.forEach((argv, k) => runs[k]!.push(measure(argv)));
  return runs.map((list) => ({ wall: median(list.map((x) => x.wallMs)), cpu: median(list.map((x) => x.cpuMs)) })) as { [K in keyof C]: Stats };
}

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
      const [baseline, cold] = interleaved(COLD_RUNS, [
        [join(dist, "cilium"), "--version"],
        [hubble, "observe", "--server", target, "--last", "1"],
      ]);
      const observeArgv = (output: string) => [hubble, "observe", "--server", target, "--last", String(FLOWS), "-o", output];
      const [drain, json, compact] = interleaved(STREAM_RUNS, [
        [process.execPath, join(import.meta.dir, "lib/hubble-drain.ts"), socket, String(FLOWS)],
        observeArgv("json"),
        observeArgv("compact"),
      ]);
      const rate = (ms: number) => FLOWS / (ms / 1000);
      const coldMethod = `median of ${COLD_RUNS} runs, server holding ${FLOWS} flows; baseline: dist/cilium --version (runtime start-up); target < 50 ms`;
      const wallMethod = `median of ${STREAM_RUNS} runs, ${FLOWS} flows / (spawn to exit), stdout to /dev/null; baseline: @grpc/grpc-js + protobufjs client draining the same GetFlows without printing (both bound by the server's send rate)`;
      const cpuMethod = `median of ${STREAM_RUNS} runs, ${FLOWS} flows / CPU time (user+system) of the client process alone; baseline: the same grpc-js + protobufjs drain`;
      return [
        { metric: "hubble observe --last 1 cold start (unix socket), wall", ours: cold.wall, baseline: baseline.wall, unit: "ms", better: "lower", method: `spawn to exit, ${coldMethod}` },
        { metric: "hubble observe --last 1 cold start, CPU time", ours: cold.cpu, baseline: baseline.cpu, unit: "ms", better: "lower", method: `user+system CPU, ${coldMethod}` },
        { metric: "hubble observe -o json streaming rate", ours: rate(json.wall), baseline: rate(drain.wall), unit: "flows/s", better: "higher", method: wallMethod },
        { metric: "hubble observe -o compact streaming rate", ours: rate(compact.wall), baseline: rate(drain.wall), unit: "flows/s", better: "higher", method: wallMethod },
        { metric: "hubble observe -o json flows per CPU-second", ours: rate(json.cpu), baseline: rate(drain.cpu), unit: "flows/s", better: "higher", method: cpuMethod },
        { metric: "hubble observe -o compact flows per CPU-second", ours: rate(compact.cpu), baseline: rate(drain.cpu), unit: "flows/s", better: "higher", method: cpuMethod },
      ];
    } finally {
      server.kill("SIGTERM");
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default benchmark;
