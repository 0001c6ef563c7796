/**
 * The agent's metrics under upstream's names and labels (pkg/metrics), from one snapshot of the
 * agent's state taken per scrape. Pure: the snapshot is gathered in snapshot.ts, the exposition
 * is written by prom-client.
 */
import type { LatencySeries } from "../api/metrics.ts";
import { LATENCY_BUCKETS } from "../api/metrics.ts";
import type { EndpointState } from "../api/types.ts";
import type { MapFill, MetricsCounter } from "../endpoint/datapath.ts";
import { METRIC_EVENTS_LOST, MetricsDirection } from "../../datapath/maps/metrics.ts";
import { dropReasonText } from "../../hubble/flow/monitor.ts";

export interface AgentSnapshot {
  endpointStates: EndpointState[];
  policyRules: number;
  policyRevision: number;
  datapathCounters: MetricsCounter[];
  mapFill: MapFill[];
  apiLatency: LatencySeries[];
}

export interface Sample {
  /** Defaults to the family's name (histograms add _bucket, _sum, _count). */
  name?: string;
  /** In exposition order: sorted by name as upstream's Go client writes them, "le" last. */
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge" | "counter" | "histogram";
  samples: Sample[];
}

/** Every state an endpoint can be in, each exported even when no endpoint is in it. */
export const ENDPOINT_STATES = ["waiting-for-identity", "not-ready", "regenerating", "ready", "disconnecting", "disconnected"] as const satisfies readonly EndpointState[];

/** The direction label of a cilium_metrics key, as upstream's metricsmap names it. */
export function directionLabel(direction: number): string {
  switch (direction) {
    case MetricsDirection.ingress:
      return "INGRESS";
    case MetricsDirection.egress:
      return "EGRESS";
    case 3:
      return "SERVICE";
    default:
      return "UNKNOWN";
  }
}

export function agentMetricFamilies(snapshot: AgentSnapshot): MetricFamily[] {
  return [
    {
      name: "cilium_endpoint",
      help: "Number of endpoints managed by this agent",
      type: "gauge",
      samples: [{ labels: {}, value: snapshot.endpointStates.length }],
    },
    {
      name: "cilium_endpoint_state",
      help: "Count of all endpoints, tagged by different endpoint states",
      type: "gauge",
      samples: ENDPOINT_STATES.map((state) => ({ labels: { endpoint_state: state }, value: snapshot.endpointStates.filter((s) => s === state).length })),
    },
    { name: "cilium_policy", help: "Number of policies currently loaded", type: "gauge", samples: [{ labels: {}, value: snapshot.policyRules }] },
    { name: "cilium_policy_max_revision", help: "Highest policy revision number in the agent", type: "gauge", samples: [{ labels: {}, value: snapshot.policyRevision }] },
    ...datapathCounterFamilies(snapshot.datapathCounters),
    {
      name: "cilium_bpf_map_pressure",
      help: "Fill percentage of map, tagged by map name",
      type: "gauge",
      samples: snapshot.mapFill.map((fill) => ({ labels: { map_name: fill.map }, value: fill.maxEntries > 0 ? fill.entries / fill.maxEntries : 0 })),
    },
    apiLatencyFamily(snapshot.apiLatency),
  ];
}

/**
 * cilium_metrics keys as upstream exports them: reason 0 counts forwarded packets, any other
 * reason dropped ones under the drop reason's text. Lost monitor events are not packets.
 */
function datapathCounterFamilies(counters: MetricsCounter[]): MetricFamily[] {
  const dropCount = new Map<string, Sample>();
  const dropBytes = new Map<string, Sample>();
  const forwardCount = new Map<string, Sample>();
  const forwardBytes = new Map<string, Sample>();
  const add = (into: Map<string, Sample>, labels: Record<string, string>, value: number) => {
    const key = Object.values(labels).join("\0");
    const sample = into.get(key);
    if (sample) sample.value += value;
    else into.set(key, { labels, value });
  };
  for (const counter of counters) {
    if (counter.reason === METRIC_EVENTS_LOST) continue;
    const direction = directionLabel(counter.direction);
    if (counter.reason === 0) {
      add(forwardCount, { direction }, counter.packets);
      add(forwardBytes, { direction }, counter.bytes);
    } else {
      const labels = { direction, reason: dropReasonText(counter.reason) };
      add(dropCount, labels, counter.packets);
      add(dropBytes, { ...labels }, counter.bytes);
    }
  }
  const sorted = (samples: Map<string, Sample>) => [...samples.values()].sort((a, b) => labelKey(a).localeCompare(labelKey(b)));
  return [
    { name: "cilium_drop_count_total", help: "Total dropped packets, tagged by drop reason and ingress/egress direction", type: "counter", samples: sorted(dropCount) },
    { name: "cilium_drop_bytes_total", help: "Total dropped bytes, tagged by drop reason and ingress/egress direction", type: "counter", samples: sorted(dropBytes) },
    { name: "cilium_forward_count_total", help: "Total forwarded packets, tagged by ingress/egress direction", type: "counter", samples: sorted(forwardCount) },
    { name: "cilium_forward_bytes_total", help: "Total forwarded bytes, tagged by ingress/egress direction", type: "counter", samples: sorted(forwardBytes) },
  ];
}

function apiLatencyFamily(series: LatencySeries[]): MetricFamily {
  const name = "cilium_agent_api_process_time_seconds";
  const samples: Sample[] = [];
  for (const s of [...series].sort((a, b) => `${a.path} ${a.method} ${a.status}`.localeCompare(`${b.path} ${b.method} ${b.status}`))) {
    const labels = { method: s.method, path: s.path, return_code: String(s.status) };
    LATENCY_BUCKETS.forEach((bound, i) => samples.push({ name: `${name}_bucket`, labels: { ...labels, le: String(bound) }, value: s.bucketCounts[i]! }));
    samples.push({ name: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: s.count });
    samples.push({ name: `${name}_sum`, labels, value: s.sumSeconds });
    samples.push({ name: `${name}_count`, labels, value: s.count });
  }
  return { name, help: "Duration of processed API calls labeled by path, method and return code.", type: "histogram", samples };
}

function labelKey(sample: Sample): string {
  return Object.values(sample.labels).join("\0");
}
