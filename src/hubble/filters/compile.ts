/**
 * GetFlows filtering with upstream's semantics: within one FlowFilter every set field must match
 * (AND), a field matches if any of its values does (OR), a list of filters matches if any filter
 * does (OR). A flow is sent if the whitelist is empty or matches, and the blacklist does not.
 *
 * Fields about data this node never has (FQDNs, L7, workloads, trace ids) are accepted and match
 * no flow, which is what they would do upstream on flows without that data.
 */
import type { Flow } from "../flow/types.ts";
import type { FlowFilter } from "./flow-filter.ts";
import {
  eventTypeMatcher,
  FilterError,
  interfaceMatcher,
  ipMatcher,
  labelMatcher,
  namespacedNameMatcher,
  never,
  nodeNameMatcher,
  podOf,
  portMatcher,
  protocolMatcher,
  replyMatcher,
  serviceOf,
  setMatcher,
  tcpFlagsMatcher,
  type FlowPredicate,
} from "./match.ts";

type Builders = { [K in keyof FlowFilter]-?: (values: NonNullable<FlowFilter[K]>) => FlowPredicate };

const BUILDERS: Omit<Builders, "experimental"> = {
  uuid: (v) => setMatcher(v, (f) => f.uuid),
  source_ip: (v) => ipMatcher(v, (f) => f.IP?.source),
  source_ip_xlated: (v) => ipMatcher(v, (f) => f.IP?.source_xlated),
  destination_ip: (v) => ipMatcher(v, (f) => f.IP?.destination),
  source_pod: (v) => namespacedNameMatcher(v, (f) => podOf(f.source)),
  destination_pod: (v) => namespacedNameMatcher(v, (f) => podOf(f.destination)),
  source_service: (v) => namespacedNameMatcher(v, (f) => serviceOf(f.source_service)),
  destination_service: (v) => namespacedNameMatcher(v, (f) => serviceOf(f.destination_service)),
  source_label: (v) => labelMatcher(v, (f) => f.source),
  destination_label: (v) => labelMatcher(v, (f) => f.destination),
  source_identity: (v) => setMatcher(v, (f) => f.source?.identity ?? 0),
  destination_identity: (v) => setMatcher(v, (f) => f.destination?.identity ?? 0),
  source_cluster_name: (v) => setMatcher(v, (f) => f.source?.cluster_name),
  destination_cluster_name: (v) => setMatcher(v, (f) => f.destination?.cluster_name),
  traffic_direction: (v) => setMatcher(v, (f) => f.traffic_direction ?? 0),
  verdict: (v) => setMatcher(v, (f) => f.verdict ?? 0),
  drop_reason_desc: (v) => setMatcher(v, (f) => f.drop_reason_desc ?? 0),
  interface: (v) => interfaceMatcher(v),
  event_type: (v) => eventTypeMatcher(v),
  protocol: (v) => protocolMatcher(v),
  source_port: (v) => portMatcher(v, "source_port"),
  destination_port: (v) => portMatcher(v, "destination_port"),
  reply: (v) => replyMatcher(v),
  tcp_flags: (v) => tcpFlagsMatcher(v),
  node_name: (v) => nodeNameMatcher(v),
  ip_version: (v) => setMatcher(v, (f) => f.IP?.ipVersion ?? 0),
  encrypted: (v) => setMatcher(v, (f) => f.IP?.encrypted ?? false),
  node_labels: () => never,
  source_fqdn: () => never,
  destination_fqdn: () => never,
  source_workload: () => never,
  destination_workload: () => never,
  http_status_code: () => never,
  http_method: () => never,
  http_path: () => never,
  http_url: () => never,
  http_header: () => never,
  dns_query: () => never,
  trace_id: () => never,
  ip_trace_id: () => never,
};

/** One FlowFilter as a predicate; throws FilterError for values that cannot be parsed. */
export function compileFilter(filter: FlowFilter): FlowPredicate {
  if (filter.experimental?.cel_expression?.length) throw new FilterError("CEL expression filters are not supported");
  const parts: FlowPredicate[] = [];
  for (const [field, build] of Object.entries(BUILDERS) as [keyof typeof BUILDERS, (v: unknown[]) => FlowPredicate][]) {
    const values = filter[field] as unknown[] | undefined;
    if (values !== undefined && values.length > 0) parts.push(build(values));
  }
  return (flow) => {
    for (const p of parts) if (!p(flow)) return false;
    return true;
  };
}

/** The whitelist/blacklist pair of a GetFlows request as one predicate. */
export function compileFilterLists(whitelist: readonly FlowFilter[] = [], blacklist: readonly FlowFilter[] = []): (flow: Flow) => boolean {
  const allow = whitelist.map(compileFilter);
  const deny = blacklist.map(compileFilter);
  return (flow) => (allow.length === 0 || allow.some((p) => p(flow))) && !deny.some((p) => p(flow));
}
