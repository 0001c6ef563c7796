/**
 * Field matchers of a FlowFilter. Each takes the filter's values for one field (non-empty) and
 * returns a predicate; a flow matches a field if it matches any of its values.
 */
import { cidrContains, isIpv4, parseCidr, parseIpv4 } from "../../net/ipv4.ts";
import { TCP_FLAG_NAMES, type Endpoint, type Flow, type Service, type TCPFlags } from "../flow/types.ts";
import { parseLabelSelector } from "./label-selector.ts";

export type FlowPredicate = (flow: Flow) => boolean;

export class FilterError extends Error {
  override name = "FilterError";
}

/** Exact addresses ("10.0.0.1", "fd00::1") or IPv4 CIDRs ("10.0.0.0/24"). */
export function ipMatcher(values: string[], get: (f: Flow) => string | undefined): FlowPredicate {
  const exact = new Set<string>();
  const cidrs = values.flatMap((v) => {
    if (!v.includes("/")) {
      exact.add(v);
      return [];
    }
    try {
      return [parseCidr(v, { allowHostBits: true })];
    } catch {
      throw new FilterError(`invalid IP or CIDR "${v}" (IPv6 prefixes are not supported yet)`);
    }
  });
  return (f) => {
    const ip = get(f);
    if (!ip) return false;
    if (exact.has(ip)) return true;
    if (cidrs.length === 0 || !isIpv4(ip)) return false;
    const n = parseIpv4(ip);
    return cidrs.some((c) => cidrContains(c, n));
  };
}

/**
 * "namespace/name-prefix", "namespace/" (every name in the namespace) or "name-prefix" (in
 * namespace "default", as the CLI documents). Used for pods and services.
 */
export function namespacedNameMatcher(values: string[], get: (f: Flow) => { namespace?: string; name?: string } | undefined): FlowPredicate {
  const patterns = values.map((v) => {
    if (v === "") throw new FilterError("empty pod or service name filter");
    const slash = v.indexOf("/");
    return slash < 0 ? { namespace: "default", prefix: v } : { namespace: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (f) => {
    const target = get(f);
    if (!target?.name && !target?.namespace) return false;
    return patterns.some((p) => target.namespace === p.namespace && (target.name ?? "").startsWith(p.prefix));
  };
}

export const podOf = (ep: Endpoint | undefined) => (ep ? { namespace: ep.namespace, name: ep.pod_name } : undefined);
export const serviceOf = (svc: Service | undefined) => (svc ? { namespace: svc.namespace, name: svc.name } : undefined);

export function labelMatcher(values: string[], get: (f: Flow) => Endpoint | undefined): FlowPredicate {
  const selectors = values.map((v) => parseLabelSelector(v));
  return (f) => {
    const labels = get(f)?.labels ?? [];
    return selectors.some((s) => s(labels));
  };
}

export function setMatcher<T>(values: T[], get: (f: Flow) => T | undefined): FlowPredicate {
  const set = new Set(values);
  return (f) => {
    const v = get(f);
    return v !== undefined && set.has(v);
  };
}

function parsePort(v: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new FilterError(`invalid port "${v}"`);
  return Number(v);
}

function ports(f: Flow): { source_port: number; destination_port: number } | undefined {
  return f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
}

export function portMatcher(values: string[], side: "source_port" | "destination_port"): FlowPredicate {
  return setMatcher(values.map(parsePort), (f) => ports(f)?.[side]);
}

const L4_PROTOCOLS = new Set(["tcp", "udp", "sctp", "icmp", "icmpv4", "icmpv6"]);
const L7_PROTOCOLS = new Set(["http", "dns", "kafka"]);

function flowProtocols(f: Flow): string[] {
  const l4 = f.l4;
  if (l4?.TCP) return ["tcp"];
  if (l4?.UDP) return ["udp"];
  if (l4?.SCTP) return ["sctp"];
  if (l4?.ICMPv4) return ["icmp", "icmpv4"];
  if (l4?.ICMPv6) return ["icmp", "icmpv6"];
  return [];
}

export function protocolMatcher(values: string[]): FlowPredicate {
  const wanted = values.map((v) => v.toLowerCase());
  for (const p of wanted) {
    if (!L4_PROTOCOLS.has(p) && !L7_PROTOCOLS.has(p)) throw new FilterError(`unknown protocol "${p}"`);
  }
  // L7 protocols never match: this datapath produces no L7 flows yet.
  return (f) => flowProtocols(f).some((p) => wanted.includes(p));
}

/** A flow matches a TCPFlags value if it has every flag the value sets. */
export function tcpFlagsMatcher(values: TCPFlags[]): FlowPredicate {
  const required = values.map((v) => TCP_FLAG_NAMES.filter((n) => v[n]));
  return (f) => {
    const flags = f.l4?.TCP?.flags;
    if (!flags) return false;
    return required.some((names) => names.every((n) => flags[n]));
  };
}

/** Glob with "*" (no "/" crossing); a pattern "cluster/" or "cluster/glob" names a cluster. */
export function nodeNameMatcher(values: string[]): FlowPredicate {
  const regexes = values.map((v) => {
    if (v === "") throw new FilterError("empty node name filter");
    const slash = v.indexOf("/");
    // Flows carry the bare node name: a cluster part matches only the default cluster's.
    const [cluster, node] = slash < 0 ? ["*", v] : [v.slice(0, slash), v.slice(slash + 1) || "*"];
    const glob = (s: string) => s.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*");
    return { cluster: new RegExp(`^${glob(cluster)}$`), node: new RegExp(`^${glob(node)}$`) };
  });
  return (f) => {
    const name = f.node_name ?? "";
    const slash = name.indexOf("/");
    const [cluster, node] = slash < 0 ? ["default", name] : [name.slice(0, slash), name.slice(slash + 1)];
    return regexes.some((r) => r.cluster.test(cluster) && r.node.test(node));
  };
}

export function eventTypeMatcher(values: { type?: number; match_sub_type?: boolean; sub_type?: number }[]): FlowPredicate {
  return (f) => {
    const t = f.event_type;
    if (!t) return false;
    return values.some((v) => (v.type ?? 0) === t.type && (!v.match_sub_type || (v.sub_type ?? 0) === t.sub_type));
  };
}

/** Matches against is_reply; a flow whose reply state is unknown matches no value. */
export function replyMatcher(values: boolean[]): FlowPredicate {
  return (f) => f.is_reply !== undefined && values.includes(f.is_reply.value);
}

export function interfaceMatcher(values: { index?: number; name?: string }[]): FlowPredicate {
  return (f) => {
    const i = f.interface;
    if (!i) return false;
    return values.some((v) => (!v.index || v.index === i.index) && (!v.name || v.name === i.name));
  };
}

export const never: FlowPredicate = () => false;
