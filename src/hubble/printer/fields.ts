/** The columns of a flow line (SOURCE, DESTINATION, TYPE, VERDICT, SUMMARY), as the hubble CLI derives them. */
import { reservedIdentityName } from "../../identity/reserved.ts";
import { dropReasonText, tracePointName } from "../flow/monitor.ts";
import { MonitorEventType, Verdict, type Flow } from "../flow/types.ts";
import { enumName } from "../proto/schema.ts";

/** Reserved identities the identity module does not allocate but flows may carry. */
const EXTRA_RESERVED: Record<number, string> = { 0: "unknown", 9: "world-ipv4", 10: "world-ipv6" };

const POLICY_MATCH_TYPES: Record<number, string> = { 0: "none", 1: "L3-Only", 2: "L3-L4", 3: "L4-Only", 4: "all", 5: "L3-Proto", 6: "Proto-Only" };

export function identityText(id: number | undefined): string {
  const n = id ?? 0;
  const name = reservedIdentityName(n) ?? EXTRA_RESERVED[n];
  return name !== undefined ? `(${name})` : `(ID:${n})`;
}

function ports(f: Flow): [string, string] {
  const p = f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
  return p ? [String(p.source_port), String(p.destination_port)] : ["", ""];
}

function hostname(ip: string, port: string, namespace: string, pod: string, service: string, names: readonly string[], translate: boolean): string {
  let host = ip;
  if (translate) {
    if (pod) host = namespace ? `${namespace}/${pod}` : pod;
    else if (service) host = namespace ? `${namespace}/${service}` : service;
    else if (names.length > 0) host = names.join(",");
  }
  if (port === "" || port === "0") return host;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** SOURCE and DESTINATION: "ns/pod:port" with IP translation, else "ip:port"; MACs without IP. */
export function hostNames(f: Flow, translate: boolean): [string, string] {
  if (!f.IP) return f.ethernet ? [f.ethernet.source, f.ethernet.destination] : ["", ""];
  const [sport, dport] = ports(f);
  const src = hostname(
    f.IP.source,
    sport,
    f.source_service?.namespace ?? f.source?.namespace ?? "",
    f.source?.pod_name ?? "",
    f.source_service?.name ?? "",
    f.source_names ?? [],
    translate,
  );
  const dst = hostname(
    f.IP.destination,
    dport,
    f.destination_service?.namespace ?? f.destination?.namespace ?? "",
    f.destination?.pod_name ?? "",
    f.destination_service?.name ?? "",
    f.destination_names ?? [],
    translate,
  );
  return [src, dst];
}

/** TYPE: the observation point, the drop reason, or the policy verdict kind. */
export function flowType(f: Flow): string {
  const t = f.event_type;
  switch (t?.type) {
    case MonitorEventType.TRACE:
      return tracePointName(t.sub_type);
    case MonitorEventType.DROP:
      return dropReasonText(t.sub_type);
    case MonitorEventType.POLICY_VERDICT:
      return `policy-verdict:${POLICY_MATCH_TYPES[f.policy_match_type ?? 0] ?? "unknown"} ${enumName("flow.TrafficDirection", f.traffic_direction ?? 0)}`;
    default:
      return "UNKNOWN";
  }
}

/** VERDICT; policy-verdict events say ALLOWED / DENIED / AUDITED instead. */
export function verdictText(f: Flow): string {
  const v = f.verdict ?? Verdict.VERDICT_UNKNOWN;
  const policy = f.event_type?.type === MonitorEventType.POLICY_VERDICT;
  if (policy && (v === Verdict.FORWARDED || v === Verdict.REDIRECTED)) return "ALLOWED";
  if (policy && (v === Verdict.DROPPED || v === Verdict.ERROR)) return "DENIED";
  if (policy && v === Verdict.AUDIT) return "AUDITED";
  return enumName("flow.Verdict", v) ?? String(v);
}

/** SUMMARY: the flow's summary, with its IP trace ID before and its authentication after, when set. */
export function summaryText(f: Flow & { ip_trace_id?: { trace_id?: number }; auth_type?: number }): string {
  const traceId = f.ip_trace_id?.trace_id ?? 0;
  let text = traceId > 0 ? `IP Trace ID: ${traceId}; ${f.Summary ?? ""}` : (f.Summary ?? "");
  if (f.auth_type) text += `; Auth: ${enumName("flow.AuthType", f.auth_type) ?? f.auth_type}`;
  return text;
}
