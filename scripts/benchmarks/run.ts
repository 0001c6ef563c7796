#!/usr/bin/env bun
/**
 * Runs every benchmark in scripts/benchmarks/ (or those named on the command line), prints one
 * markdown table (metric, ours, baseline, ratio, how measured) and writes it as JSON to
 * bench-results/latest.json. Ratio is ours/baseline: below 1 is better for latencies, above 1
 * for rates. Where the setups alternated round by round, the ratio is the median of the rounds'
 * ratios ("paired"), with the ratio of the medians beside it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Benchmark, BenchRow } from "./harness.ts";

const dir = import.meta.dir;
const wanted = new Set(process.argv.slice(2));
const files = [...new Bun.Glob("*.ts").scanSync(dir)].filter((f) => !["harness.ts", "run.ts"].includes(f)).sort();

const rows: (BenchRow & { benchmark: string })[] = [];
const problems: string[] = [];
for (const file of files) {
  const name = basename(file, ".ts");
  if (wanted.size && !wanted.has(name)) continue;
  const { default: benchmark } = (await import(join(dir, file))) as { default: Benchmark };
  const reason = benchmark.unavailable?.();
  if (reason) {
    problems.push(`${benchmark.name}: not run: ${reason}`);
    continue;
  }
  process.stderr.write(`running ${benchmark.name}...\n`);
  try {
    for (const row of await benchmark.run()) rows.push({ ...row, benchmark: benchmark.name });
  } catch (error) {
    problems.push(`${benchmark.name}: failed: ${(error as Error).message}`);
  }
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const lines = [
  "| metric | ours | baseline | ratio (ours/baseline) | how measured |",
  "|---|---|---|---|---|",
  ...rows.map((r) => {
    const ofMedians = r.baseline ? `${(r.ours / r.baseline).toFixed(2)}x` : "";
    const ratio = !r.baseline
      ? "n/a"
      : r.pairedRatio === undefined
        ? `${ofMedians} (${r.better} is better)`
        : `${r.pairedRatio.toFixed(2)}x paired (medians ${ofMedians}; ${r.better} is better)`;
    const base = r.baseline === null ? "n/a" : `${fmt(r.baseline)} ${r.unit}`;
    return `| ${r.metric} | ${fmt(r.ours)} ${r.unit} | ${base} | ${ratio} | ${r.method} |`;
  }),
];
console.log(lines.join("\n"));
for (const p of problems) console.log(`\n- ${p}`);

const out = join(dir, "../../bench-results");
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, "latest.json"),
  `${JSON.stringify({ date: new Date().toISOString(), kernel: (await import("node:os")).release(), rows, problems }, null, 2)}\n`,
);
process.exitCode = problems.some((p) => p.includes("failed:")) ? 1 : 0;
