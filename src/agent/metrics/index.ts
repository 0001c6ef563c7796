/**
 * The agent's Prometheus endpoint (--prometheus-serve-addr): each scrape takes one snapshot of
 * endpoints, policy, the datapath's counters and map fill, and API latency, and prom-client
 * writes it with its process metrics. prom-client loads only when the server starts.
 */
import type { Logger } from "../../logging/index.ts";
import { startMetricsServer, type MetricsServer } from "../../metrics/http-server.ts";
import type { ApiLatencyHistogram } from "../api/metrics.ts";
import type { EndpointDatapath } from "../endpoint/datapath.ts";
import type { EndpointManager } from "../endpoint/manager.ts";
import type { PolicyManager } from "../policy/manager.ts";
import { agentMetricFamilies, type AgentSnapshot, type MetricFamily } from "./families.ts";

export const PROMETHEUS_SERVE_ADDR_FLAG = "--prometheus-serve-addr";

export interface AgentMetricsSources {
  endpoints: Pick<EndpointManager, "list">;
  policy: Pick<PolicyManager, "revision" | "ruleCount">;
  datapath: Pick<EndpointDatapath, "readMetrics" | "mapFill">;
  apiLatency: ApiLatencyHistogram;
}

export interface AgentMetricsOptions extends AgentMetricsSources {
  address: string;
  log: Logger;
}

export async function takeSnapshot({ endpoints, policy, datapath, apiLatency }: AgentMetricsSources): Promise<AgentSnapshot> {
  const [datapathCounters, mapFill] = await Promise.all([datapath.readMetrics(), datapath.mapFill()]);
  return {
    endpointStates: endpoints.list().map((endpoint) => endpoint.state),
    policyRules: policy.ruleCount,
    policyRevision: policy.revision,
    datapathCounters,
    mapFill,
    apiLatency: apiLatency.snapshot(),
  };
}

export async function startAgentMetrics({ address, log, ...sources }: AgentMetricsOptions): Promise<MetricsServer> {
  const client = await import("prom-client");
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  let families = new Map<string, MetricFamily>();
  for (const family of agentMetricFamilies(emptySnapshot())) {
    // prom-client asks each registered metric for its values; ours answer from the scrape's snapshot.
    registry.registerMetric({
      name: family.name,
      help: family.help,
      type: family.type,
      get: async () => {
        const current = families.get(family.name)!;
        return {
          name: current.name,
          help: current.help,
          type: current.type,
          aggregator: "sum",
          values: current.samples.map((s) => ({ metricName: s.name ?? current.name, labels: s.labels, value: s.value })),
        };
      },
    } as unknown as Parameters<typeof registry.registerMetric>[0]);
  }
  // Concurrent scrapes would interleave snapshots; one at a time is plenty for Prometheus.
  let scraping = Promise.resolve("");
  const render = () =>
    (scraping = scraping.catch(() => "").then(async () => {
      families = new Map(agentMetricFamilies(await takeSnapshot(sources)).map((family) => [family.name, family]));
      return registry.metrics();
    }));
  const server = startMetricsServer({
    flag: PROMETHEUS_SERVE_ADDR_FLAG,
    address,
    render,
    onError: (error) => log.warn(`a metrics scrape failed: ${(error as Error).message}`),
  });
  log.info(`serving metrics on ${address} (port ${server.port})`);
  return server;
}

function emptySnapshot(): AgentSnapshot {
  return { endpointStates: [], policyRules: 0, policyRevision: 0, datapathCounters: [], mapFill: [], apiLatency: [] };
}
