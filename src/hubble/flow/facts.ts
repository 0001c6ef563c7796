/**
 * The part of a Flow that per-flow consumers (Hubble metrics) read. A Flow has all of it; the
 * agent hands listeners a view that decodes these fields from the stored record on demand, so
 * counting a flow never builds the whole message (its time, uuid, MACs, summary).
 */
import type { Flow } from "./types.ts";

export type FlowFacts = Pick<
  Flow,
  "verdict" | "drop_reason_desc" | "event_type" | "l4" | "IP" | "traffic_direction" | "is_reply" | "source" | "destination" | "source_names" | "destination_names"
>;
