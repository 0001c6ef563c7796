/** hubble_icmp_total{family, type}: ICMP messages by family and gopacket's type/code name. */
import { icmpTypeCodeText } from "../../parser/summary.ts";
import { contextLabelNames, contextLabelValues, type ContextOptions } from "../context.ts";
import type { MetricHandler } from "../handler.ts";

export function icmpHandler(context: ContextOptions): MetricHandler {
  return {
    name: "hubble_icmp_total",
    help: "Number of ICMP messages",
    labelNames: ["family", "type", ...contextLabelNames(context)],
    process(flow, count) {
      const l4 = flow.l4;
      if (l4?.ICMPv4) count(["IPv4", icmpTypeCodeText("ICMPv4", l4.ICMPv4.type, l4.ICMPv4.code), ...contextLabelValues(context, flow)]);
      if (l4?.ICMPv6) count(["IPv6", icmpTypeCodeText("ICMPv6", l4.ICMPv6.type, l4.ICMPv6.code), ...contextLabelValues(context, flow)]);
    },
  };
}
