/**
 * Hubble metrics on the flow path: flows per second through createHubbleMetrics().handle() with
 * all five handlers enabled (drop and flow with source/destination context), on one core.
 * Baseline, same run: the same handlers counting through prom-client's labelled inc() the plain
 * way (a label object per count, hashed by prom-client) instead of our counts keyed by label values.
 */
import { createHubbleMetrics, parseHubbleMetricsSpec } from "../../src/hubble/metrics/index.ts";
import { dropHandler } from "../../src/hubble/metrics/handlers/drop.ts";
import { flowHandler } from "../../src/hubble/metrics/handlers/flow.ts";
import { icmpHandler } from "../../src/hubble/metrics/handlers/icmp.ts";
import { portDistributionHandler } from "../../src/hubble/metrics/handlers/port-distribution.ts";
import { tcpHandler } from "../../src/hubble/metrics/handlers/tcp.ts";
import type { MetricHandler } from "../../src/hubble/metrics/handler.ts";
import { MonitorEventType, TrafficDirection, Verdict, type Flow } from "../../src/hubble/flow/types.ts";
import { median, type Benchmark } from "./harness.ts";

const SPEC = "drop:sourceContext=namespace;destinationContext=pod flow:sourceContext=namespace tcp port-distribution icmp";
const FLOWS = 200_000;
const RUNS = 5;

function sampleFlows(): Flow[] {
  return Array.from({ length: 1000 }, (_, i): Flow => {
    const kind = i % 5;
    const l4: Flow["l4"] =
      kind === 3 ? { UDP: { source_port: 30000 + i, destination_port: 53 } } : kind === 4 ? { ICMPv4: { type: 8, code: 0 } } : { TCP: { source_port: 30000 + i, destination_port: 80 + (i % 20), flags: { SYN: kind === 0, ACK: kind !== 0, FIN: kind === 2 } } };
    return {
      verdict: i % 7 === 0 ? Verdict.DROPPED : Verdict.FORWARDED,
      drop_reason_desc: i % 7 === 0 ? 133 : 0,
      IP: { source: `10.0.${i % 50}.${i % 250}`, destination: `10.1.0.${i % 100}`, ipVersion: 1 },
      l4,
      source: { namespace: `ns-${i % 10}`, pod_name: `client-${i % 40}` },
      destination: { namespace: `ns-${i % 3}`, pod_name: `server-${i % 30}` },
      event_type: { type: i % 7 === 0 ? MonitorEventType.DROP : MonitorEventType.TRACE, sub_type: i % 2 === 0 ? 0 : 5 },
      traffic_direction: i % 2 === 0 ? TrafficDirection.EGRESS : TrafficDirection.INGRESS,
      is_reply: { value: i % 4 === 1 },
    };
  });
}

async function plainPromClient(): Promise<(flow: Flow) => void> {
  const client = await import("prom-client");
  const registry = new client.Registry();
  const factories = { drop: dropHandler, flow: flowHandler, tcp: tcpHandler, "port-distribution": portDistributionHandler, icmp: icmpHandler };
  const consumers = parseHubbleMetricsSpec(SPEC).map((spec) => {
    const handler: MetricHandler = factories[spec.name](spec.context);
    const counter = new client.Counter({ name: handler.name, help: handler.help, labelNames: handler.labelNames, registers: [registry] });
    return (flow: Flow) =>
      handler.process(flow, (values) => counter.inc(Object.fromEntries(handler.labelNames.map((name, i) => [name, values[i]!]))));
  });
  return (flow) => {
    for (const consume of consumers) consume(flow);
  };
}

function flowsPerSecond(handle: (flow: Flow) => void, flows: Flow[]): number {
  const start = Bun.nanoseconds();
  for (let i = 0; i < FLOWS; i++) handle(flows[i % flows.length]!);
  return FLOWS / ((Bun.nanoseconds() - start) / 1e9);
}

const benchmark: Benchmark = {
  name: "hubble-metrics",
  run: async () => {
    const flows = sampleFlows();
    const ours = await createHubbleMetrics(SPEC);
    const plain = await plainPromClient();
    flowsPerSecond(ours.handle, flows);
    flowsPerSecond(plain, flows);
    const oursRates: number[] = [];
    const plainRates: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      oursRates.push(flowsPerSecond(ours.handle, flows));
      plainRates.push(flowsPerSecond(plain, flows));
    }
    return [
      {
        metric: "Hubble metrics: flows counted per second (5 handlers, with context labels)",
        ours: median(oursRates) / 1000,
        baseline: median(plainRates) / 1000,
        unit: "k flows/s",
        method: `${FLOWS} flows x ${RUNS} runs, median; baseline: same handlers counting through prom-client Counter.inc(labels)`,
        better: "higher",
      },
    ];
  },
};

export default benchmark;
