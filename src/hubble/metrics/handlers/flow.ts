/** hubble_flows_processed_total{protocol, type, subtype, verdict}: every flow, by event type and verdict. */
import { tracePointName } from "../../flow/monitor.ts";
import type { FlowFacts } from "../../flow/facts.ts";
import { MonitorEventType } from "../../flow/types.ts";
import { contextLabelNames, contextLabelValues, type ContextOptions } from "../context.ts";
import { flowProtocol, protoEnumText, type MetricHandler } from "../handler.ts";

export function flowHandler(context: ContextOptions): MetricHandler {
  return {
    name: "hubble_flows_processed_total",
    help: "Total number of flows processed",
    labelNames: ["protocol", "type", "subtype", "verdict", ...contextLabelNames(context)],
    process(flow, count) {
      const [type, subtype] = eventTypeLabels(flow);
      count([flowProtocol(flow), type, subtype, protoEnumText("flow.Verdict", flow.verdict), ...contextLabelValues(context, flow)]);
    },
  };
}

/** Upstream's type and subtype words for the flow's monitor event. */
function eventTypeLabels(flow: FlowFacts): [string, string] {
  const type = flow.event_type?.type ?? 0;
  switch (type) {
    case MonitorEventType.L7:
      return ["L7", ""];
    case MonitorEventType.DROP:
      return ["Drop", ""];
    case MonitorEventType.CAPTURE:
      return ["Capture", ""];
    case MonitorEventType.TRACE:
      return ["Trace", tracePointName(flow.event_type?.sub_type ?? 0)];
    case MonitorEventType.POLICY_VERDICT:
      return ["PolicyVerdict", ""];
    default:
      return ["Unknown", String(type)];
  }
}
