/** flow.FlowFilter as decoded from a request (proto field names; every field optional). */
import type { TCPFlags, Workload } from "../flow/types.ts";

export interface EventTypeFilter {
  type?: number;
  match_sub_type?: boolean;
  sub_type?: number;
}

export interface FlowFilter {
  uuid?: string[];
  source_ip?: string[];
  source_ip_xlated?: string[];
  source_pod?: string[];
  source_fqdn?: string[];
  source_label?: string[];
  source_service?: string[];
  source_workload?: Workload[];
  source_cluster_name?: string[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_fqdn?: string[];
  destination_label?: string[];
  destination_service?: string[];
  destination_workload?: Workload[];
  destination_cluster_name?: string[];
  traffic_direction?: number[];
  verdict?: number[];
  drop_reason_desc?: number[];
  interface?: { index?: number; name?: string }[];
  event_type?: EventTypeFilter[];
  http_status_code?: string[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  dns_query?: string[];
  source_identity?: number[];
  destination_identity?: number[];
  http_method?: string[];
  http_path?: string[];
  http_url?: string[];
  http_header?: { key?: string; value?: string }[];
  tcp_flags?: TCPFlags[];
  node_name?: string[];
  node_labels?: string[];
  ip_version?: number[];
  trace_id?: string[];
  ip_trace_id?: (number | string)[];
  encrypted?: boolean[];
  experimental?: { cel_expression?: string[] };
}
