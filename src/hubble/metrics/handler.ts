/**
 * What every Hubble metric handler is: one counter family, its labels in upstream's order, and
 * a function that counts a flow under zero or more label value lists. Also the flow facts several
 * handlers label with, in upstream's words.
 */
import { enumName } from "../proto/schema.ts";
import type { FlowFacts } from "../flow/facts.ts";
import { MonitorEventType } from "../flow/types.ts";

export interface MetricHandler {
  /** Full metric name, "hubble_drop_total". */
  name: string;
  help: string;
  /** Label names in upstream's order; values passed to `count` follow it. */
  labelNames: string[];
  process(flow: FlowFacts, count: (values: string[]) => void): void;
}

/** Upstream's FlowProtocol: the L7 protocol for access-log flows, else the L4 protocol. */
export function flowProtocol(flow: FlowFacts): string {
  const type = flow.event_type?.type;
  if (type === MonitorEventType.L7) return "Unknown L7";
  if (type === MonitorEventType.DROP || type === MonitorEventType.TRACE || type === MonitorEventType.POLICY_VERDICT || type === MonitorEventType.CAPTURE) {
    const l4 = flow.l4;
    if (l4?.TCP) return "TCP";
    if (l4?.UDP) return "UDP";
    if (l4?.ICMPv4) return "ICMPv4";
    if (l4?.ICMPv6) return "ICMPv6";
    if (l4?.SCTP) return "SCTP";
    return "Unknown L4";
  }
  return "Unknown flow";
}

/** A protobuf enum value's name as Go's String() gives it: the number when unknown. */
export function protoEnumText(enumType: string, value: number | undefined): string {
  return enumName(enumType, value ?? 0) ?? String(value ?? 0);
}
