/** cilium_metrics: per-CPU packet and byte counters by reason and direction. */
import { pad, perCpu, struct, u64, u8, type Infer } from "../bpf/index.ts";

export const METRICS_MAP = "cilium_metrics";

/** DIR_* of bpf/lib/metrics.h. */
export const MetricsDirection = { ingress: 1, egress: 2 } as const;

export const MetricsKey = struct({ reason: u8, dir: u8, pad: pad(6) });
export const MetricsValue = struct({ packets: u64, bytes: u64 });
/** Sized per machine on first use (it asks libbpf for the possible CPU count). */
export const metricsValuePerCpu = () => perCpu(MetricsValue);

export type MetricsKeyValue = Infer<typeof MetricsKey>;
