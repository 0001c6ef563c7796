/** cilium_metrics: per-CPU packet and byte counters by reason and direction. */
import { pad, perCpu, struct, u64, u8, type Infer } from "../bpf/index.ts";

export const METRICS_MAP = "cilium_metrics";

/** The reason under which the datapath counts events it could not write (METRIC_EVENTS_LOST). */
export const METRIC_EVENTS_LOST = 127;

/** DIR_* of bpf/lib/metrics.h. */
export const MetricsDirection = { ingress: 1, egress: 2 } as const;

export const MetricsKey = struct({ reason: u8, dir: u8, pad: pad(6) });
export const MetricsValue = struct({ packets: u64, bytes: u64 });
/** Sized per machine on first use (it asks libbpf for the possible CPU count). */
export const metricsValuePerCpu = () => perCpu(MetricsValue);

export type MetricsKeyValue = Infer<typeof MetricsKey>;
