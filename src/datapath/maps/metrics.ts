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

/** One cilium_metrics key's counters, summed over the CPUs. */
export interface MetricsCounter {
  /** 0: forwarded; a drop reason (bpf/lib/drop.h); METRIC_EVENTS_LOST. */
  reason: number;
  /** MetricsDirection, 0 when unknown. */
  direction: number;
  packets: number;
  bytes: number;
}

/** How full one of the datapath's maps is. */
export interface MapFill {
  map: string;
  entries: number;
  /** The most entries it may hold (for cilium_policy: --bpf-policy-map-max when set). */
  maxEntries: number;
}
