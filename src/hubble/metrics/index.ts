/**
 * Hubble metrics: a flow consumer that counts flows into upstream's hubble_* counters, and the
 * server that exposes them (--hubble-metrics-server). prom-client loads only when metrics are
 * created, so the hubble CLI never pays for it.
 *
 * The agent starts it with its flow hook:
 *   const metrics = await startHubbleMetrics({ spec: config.hubbleMetrics, listen: config.hubbleMetricsServer, onFlow: (l) => daemon.onFlow(l) });
 *   ... await metrics.stop();
 */
import type { Registry } from "prom-client";
import type { FlowFacts } from "../flow/facts.ts";
import { startMetricsServer } from "../../metrics/http-server.ts";
import type { MetricHandler } from "./handler.ts";
import { dropHandler } from "./handlers/drop.ts";
import { flowHandler } from "./handlers/flow.ts";
import { icmpHandler } from "./handlers/icmp.ts";
import { portDistributionHandler } from "./handlers/port-distribution.ts";
import { tcpHandler } from "./handlers/tcp.ts";
import { parseHubbleMetricsSpec, type HubbleMetricName, type HubbleMetricSpec } from "./spec.ts";
import type { ContextOptions } from "./context.ts";

export { parseHubbleMetricsSpec, HubbleMetricsSpecError, HUBBLE_METRIC_HANDLERS, type HubbleMetricSpec } from "./spec.ts";

export const HUBBLE_METRICS_SERVER_FLAG = "--hubble-metrics-server";

const HANDLERS: Record<HubbleMetricName, (context: ContextOptions) => MetricHandler> = {
  drop: dropHandler,
  flow: flowHandler,
  tcp: tcpHandler,
  "port-distribution": portDistributionHandler,
  icmp: icmpHandler,
};

export interface HubbleMetrics {
  /** Counts one flow (a Flow, or the agent's on-demand view of a stored one) in every enabled metric. Cheap: called for every flow the agent sees. */
  handle(flow: FlowFacts): void;
  /** The text exposition of every enabled metric. */
  render(): Promise<string>;
}

/** Metrics for `spec` (parsed, or --hubble-metrics text); throws HubbleMetricsSpecError on a bad spec. */
export async function createHubbleMetrics(spec: string | readonly string[] | readonly HubbleMetricSpec[]): Promise<HubbleMetrics> {
  const specs = isParsed(spec) ? spec : parseHubbleMetricsSpec(spec as string | readonly string[]);
  const client = await import("prom-client");
  const registry = new client.Registry();
  const counters = specs.map((s) => countingHandler(HANDLERS[s.name](s.context), registry));
  return {
    handle(flow) {
      for (const counter of counters) counter(flow);
    },
    render: () => registry.metrics(),
  };
}

export interface StartHubbleMetricsOptions {
  /** --hubble-metrics: parsed specs or the flag's text. */
  spec: string | readonly string[] | readonly HubbleMetricSpec[];
  /** --hubble-metrics-server: "host:port" or ":port". */
  listen: string;
  /** Subscribes a listener to every flow the agent produces; answers the unsubscribe function. */
  onFlow(listener: (flow: FlowFacts) => void): () => void;
}

export interface RunningHubbleMetrics {
  readonly port: number;
  readonly metrics: HubbleMetrics;
  /** Unsubscribes from flows and closes the server. */
  stop(): Promise<void>;
}

/** Creates the metrics, serves them, then subscribes them to the flows. Throws naming the flag on a bad address or a port in use. */
export async function startHubbleMetrics({ spec, listen, onFlow }: StartHubbleMetricsOptions): Promise<RunningHubbleMetrics> {
  const metrics = await createHubbleMetrics(spec);
  const server = startMetricsServer({ flag: HUBBLE_METRICS_SERVER_FLAG, address: listen, render: metrics.render });
  const unsubscribe = onFlow((flow) => metrics.handle(flow));
  return {
    port: server.port,
    metrics,
    stop: async () => {
      unsubscribe();
      await server.stop();
    },
  };
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Label values to their sample, one map level per label: finding a sample allocates nothing. */
type SampleTree = Map<string, SampleTree | Sample>;

/**
 * The handler's counter family, kept as a tree from label values to a count: a flow costs a map
 * lookup per label value (prom-client's own labelled inc() hashes a label object each time).
 * Labels are sorted by name as upstream's Go client writes them; prom-client writes the
 * exposition from these samples at scrape time.
 */
function countingHandler(handler: MetricHandler, registry: Registry): (flow: FlowFacts) => void {
  const order = handler.labelNames.map((name, i) => ({ name, i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const samples: Sample[] = [];
  const tree: SampleTree = new Map();
  const count = (values: string[]) => {
    let node = tree;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as SampleTree | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    const sample = node.get(values[last]!) as Sample | undefined;
    if (sample !== undefined) {
      sample.value++;
      return;
    }
    const labels: Record<string, string> = {};
    for (const { name, i } of order) labels[name] = values[i]!;
    const created = { labels, value: 1 };
    node.set(values[last]!, created);
    samples.push(created);
  };
  registry.registerMetric({
    name: handler.name,
    help: handler.help,
    type: "counter",
    get: async () => ({ name: handler.name, help: handler.help, type: "counter", aggregator: "sum", values: samples.map((s) => ({ labels: s.labels, value: s.value })) }),
  } as unknown as Parameters<Registry["registerMetric"]>[0]);
  return (flow) => handler.process(flow, count);
}

function isParsed(spec: string | readonly string[] | readonly HubbleMetricSpec[]): spec is readonly HubbleMetricSpec[] {
  return typeof spec !== "string" && spec.length > 0 && typeof spec[0] !== "string";
}
