/**
 * CILIUM_CNI_TIMING=1: the plugin writes where its time went to stderr, one line per phase
 * ("cilium-cni timing: <phase> <ms since the runtime started JS> (+<ms since the previous mark>)").
 * For profiling ADD and DEL latency against the reference plugins; off by default, and free then.
 */
const enabled = process.env.CILIUM_CNI_TIMING === "1";
let last = 0;
const lines: string[] = [];

export function mark(phase: string): void {
  if (!enabled) return;
  const now = performance.now();
  lines.push(`cilium-cni timing: ${phase} ${now.toFixed(2)} (+${(now - last).toFixed(2)})`);
  last = now;
}

/** The recorded lines, once, for the plugin's stderr. */
export function timingReport(): string {
  if (!enabled || lines.length === 0) return "";
  const report = `${lines.join("\n")}\n`;
  lines.length = 0;
  return report;
}
