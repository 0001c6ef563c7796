/**
 * TCP between a client and a server pod of a setup: iperf3 bulk throughput and lib/tcp-rr.ts
 * request/response rate, with the servers started once per setup. On a machine with two CPUs
 * or more the client runs on CPU 0 and the servers on CPU 1, in every setup alike: left to the
 * scheduler, a ping-pong's rate swings by 2x from run to run with where its two ends land.
 */
import { cpus } from "node:os";
import { type BenchRow, median, pairedRatio } from "../harness.ts";
import { type Background, inNetns, listening, startInNetns, TCP_RR } from "./pods.ts";

export const IPERF_SECONDS = 5;
/** Seconds of slow start iperf3 leaves out of its figures (-O). */
export const IPERF_OMIT = 1;
export const RR_SECONDS = 3;
export const RR_SIZE = 64;
const IPERF_PORT = 5201;
const RR_PORT = 7300;

export interface PodPair {
  label: string;
  client: string;
  server: string;
  serverIp: string;
}

const pinned = cpus().length >= 2;
const onCpu = (cpu: number, argv: string[]) => (pinned ? ["taskset", "-c", String(cpu), ...argv] : argv);

/** How the runs are placed, for the benchmarks' method text. */
export const PLACEMENT = pinned ? "client on CPU 0, servers on CPU 1" : "one CPU";

export function iperfGbps(pair: PodPair): number {
  const argv = inNetns(pair.client, onCpu(0, ["iperf3", "-c", pair.serverIp, "-p", String(IPERF_PORT), "-t", String(IPERF_SECONDS), "-O", String(IPERF_OMIT), "-J"]));
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: (IPERF_SECONDS + IPERF_OMIT + 20) * 1000 });
  const out = result.stdout.toString();
  if (result.exitCode !== 0) throw new Error(`iperf3 (${pair.label}) exited ${result.exitCode}: ${out.slice(0, 500)} ${result.stderr.toString()}`);
  const report = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second / 1e9;
}

export function rrRate(pair: PodPair): number {
  const argv = inNetns(pair.client, onCpu(0, [process.execPath, TCP_RR, "client", pair.serverIp, String(RR_PORT), String(RR_SIZE), String(RR_SECONDS)]));
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: (RR_SECONDS + 20) * 1000 });
  if (result.exitCode !== 0) throw new Error(`tcp-rr client (${pair.label}) exited ${result.exitCode}: ${result.stderr.toString()}`);
  return (JSON.parse(result.stdout.toString().trim()) as { rate: number }).rate;
}

/** iperf3 -s and the tcp-rr server in the pair's server pod; stopped with `servers`. */
export async function startPairServers(pair: PodPair, servers: Background[]): Promise<void> {
  servers.push(await startInNetns(pair.server, onCpu(1, ["iperf3", "-s", "-p", String(IPERF_PORT)]), () => listening(pair.server, IPERF_PORT), "iperf3 -s"));
  servers.push(await startInNetns(pair.server, onCpu(1, [process.execPath, TCP_RR, "server", String(RR_PORT)]), () => listening(pair.server, RR_PORT), "tcp-rr server"));
}

export interface TcpSamples {
  gbps: number[];
  rr: number[];
}

/**
 * `rounds` rounds; in each, both setups run iperf3 and the ping-pong, so that a round's two
 * samples see the same machine. Who goes first alternates (ours first in even rounds): what a run
 * leaves behind, such as the kernel's deferred work after a bulk transfer, falls on both alike.
 */
export function alternateRounds(ours: PodPair, baseline: PodPair, rounds: number): { ours: TcpSamples; baseline: TcpSamples } {
  const samples = { ours: { gbps: [] as number[], rr: [] as number[] }, baseline: { gbps: [] as number[], rr: [] as number[] } };
  for (let i = 0; i < rounds; i++) {
    const order = [["ours", ours], ["baseline", baseline]] as const;
    for (const [key, pair] of i % 2 === 0 ? order : [...order].reverse()) {
      samples[key].gbps.push(iperfGbps(pair));
      samples[key].rr.push(rrRate(pair));
    }
  }
  return samples;
}

/** The throughput and request/response rows of alternating rounds: medians and the paired ratio. */
export function tcpRows(
  samples: { ours: TcpSamples; baseline: TcpSamples },
  /** What is measured, e.g. "cross-node pod-to-pod". */
  scope: string,
  setups: string,
): BenchRow[] {
  const rounds = `${PLACEMENT}; ${samples.ours.gbps.length} alternating rounds, medians`;
  return [
    {
      metric: `${scope} TCP throughput (1 stream)`,
      ours: median(samples.ours.gbps),
      baseline: median(samples.baseline.gbps),
      pairedRatio: pairedRatio(samples.ours.gbps, samples.baseline.gbps),
      samples: { ours: samples.ours.gbps, baseline: samples.baseline.gbps },
      unit: "Gbit/s",
      method: `iperf3 -t ${IPERF_SECONDS} -O ${IPERF_OMIT}, received rate; ${setups}; ${rounds}`,
      better: "higher",
    },
    {
      metric: `${scope} TCP request/response (${RR_SIZE} B, 1 conn)`,
      ours: median(samples.ours.rr),
      baseline: median(samples.baseline.rr),
      pairedRatio: pairedRatio(samples.ours.rr, samples.baseline.rr),
      samples: { ours: samples.ours.rr, baseline: samples.baseline.rr },
      unit: "trans/s",
      method: `lib/tcp-rr.ts (Bun ping-pong, ${RR_SECONDS} s), same tool both sides: Bun's event loop bounds the absolute rate; ${setups}; ${rounds}`,
      better: "higher",
    },
  ];
}
