/** hubble_drop_total{reason, protocol}: dropped flows by drop reason (its enum name) and protocol. */
import { Verdict } from "../../flow/types.ts";
import { contextLabelNames, contextLabelValues, type ContextOptions } from "../context.ts";
import { flowProtocol, protoEnumText, type MetricHandler } from "../handler.ts";

export function dropHandler(context: ContextOptions): MetricHandler {
  return {
    name: "hubble_drop_total",
    help: "Number of drops",
    labelNames: [...contextLabelNames(context), "reason", "protocol"],
    process(flow, count) {
      if (flow.verdict !== Verdict.DROPPED) return;
      count([...contextLabelValues(context, flow), protoEnumText("flow.DropReason", flow.drop_reason_desc), flowProtocol(flow)]);
    },
  };
}
