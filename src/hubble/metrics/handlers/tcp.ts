/** hubble_tcp_flags_total{flag, family}: SYN, SYN-ACK, FIN and RST of forwarded TCP flows. */
import { Verdict } from "../../flow/types.ts";
import { contextLabelNames, contextLabelValues, type ContextOptions } from "../context.ts";
import { protoEnumText, type MetricHandler } from "../handler.ts";

export function tcpHandler(context: ContextOptions): MetricHandler {
  return {
    name: "hubble_tcp_flags_total",
    help: "TCP flag occurrences",
    labelNames: ["flag", "family", ...contextLabelNames(context)],
    process(flow, count) {
      if (flow.verdict !== Verdict.FORWARDED && flow.verdict !== Verdict.REDIRECTED) return;
      const flags = flow.l4?.TCP?.flags;
      if (!flow.IP || !flags) return;
      const rest = [protoEnumText("flow.IPVersion", flow.IP.ipVersion), ...contextLabelValues(context, flow)];
      if (flags.FIN) count(["FIN", ...rest]);
      if (flags.SYN) count([flags.ACK ? "SYN-ACK" : "SYN", ...rest]);
      if (flags.RST) count(["RST", ...rest]);
    },
  };
}
