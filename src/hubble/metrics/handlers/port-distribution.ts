/** hubble_port_distribution_total{protocol, port}: forwarded requests (not replies) by destination port. */
import { Verdict } from "../../flow/types.ts";
import { contextLabelNames, contextLabelValues, type ContextOptions } from "../context.ts";
import type { MetricHandler } from "../handler.ts";

/** Port numbers as label text, made once per port. */
const PORT_TEXTS: string[] = [];
function portText(port: number): string {
  return (PORT_TEXTS[port] ??= String(port));
}

export function portDistributionHandler(context: ContextOptions): MetricHandler {
  return {
    name: "hubble_port_distribution_total",
    help: "Numbers of packets distributed by destination port",
    labelNames: ["protocol", "port", ...contextLabelNames(context)],
    process(flow, count) {
      // A flow not known to be a request (is_reply unset) says nothing about the port served.
      if (flow.verdict !== Verdict.FORWARDED && flow.verdict !== Verdict.REDIRECTED) return;
      if (flow.is_reply === undefined || flow.is_reply.value) return;
      const l4 = flow.l4;
      if (!l4) return;
      const labels = () => contextLabelValues(context, flow);
      if (l4.TCP) count(["TCP", portText(l4.TCP.destination_port), ...labels()]);
      if (l4.UDP) count(["UDP", portText(l4.UDP.destination_port), ...labels()]);
      if (l4.SCTP) count(["SCTP", portText(l4.SCTP.destination_port), ...labels()]);
      if (l4.ICMPv4) count(["ICMPv4", "0", ...labels()]);
      if (l4.ICMPv6) count(["ICMPv6", "0", ...labels()]);
    },
  };
}
