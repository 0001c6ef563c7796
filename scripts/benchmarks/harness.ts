/** Shared shape and statistics for the benchmarks that scripts/bench runs. */

export interface BenchRow {
  /** What is measured, e.g. "cilium-cni VERSION cold start (p50)". */
  metric: string;
  ours: number;
  /** The baseline measured in the same run, or null where there is none. */
  baseline: number | null;
  unit: string;
  /** How it was measured, briefly: tool, iterations, what the baseline is. */
  method: string;
  /** "lower" when smaller is better (latency), "higher" for rates. */
  better: "lower" | "higher";
  /**
   * When ours and the baseline alternate round by round: the median over rounds of each round's
   * ours/baseline. The machine's speed drifts from one round to the next; a round's two samples
   * share its conditions, so this is steadier than the ratio of the two medians.
   */
  pairedRatio?: number;
  /** The samples behind `ours` and `baseline`, in the order taken (kept in bench-results/latest.json). */
  samples?: { ours: number[]; baseline: number[] };
}

export interface Benchmark {
  name: string;
  /** Returns a reason when the benchmark cannot run here (e.g. not root). */
  unavailable?: () => string | undefined;
  run: () => Promise<BenchRow[]>;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** The median of ours[i] / baseline[i]: samples taken in the same round, side by side. */
export function pairedRatio(ours: number[], baseline: number[]): number {
  if (ours.length !== baseline.length) throw new Error(`paired samples differ in count: ${ours.length} and ${baseline.length}`);
  return median(ours.map((value, i) => value / baseline[i]!));
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of an empty sample");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Milliseconds of one synchronous run of a command, from spawn to exit. */
export function timeCommand(argv: string[], env?: Record<string, string>, stdin?: string): number {
  const start = Bun.nanoseconds();
  const result = Bun.spawnSync(argv, {
    env: env ?? (process.env as Record<string, string>),
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin),
    stdout: "ignore",
    stderr: "pipe",
  });
  const elapsed = (Bun.nanoseconds() - start) / 1e6;
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
  }
  return elapsed;
}

/** Runs `sample` n times (after `warmup` discarded runs) and returns the samples. */
export async function sampleMany(n: number, sample: () => number | Promise<number>, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await sample();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await sample());
  return out;
}
