/**
 * The allow and deny lists of `hubble observe`, built from filter flags in command-line order as
 * the upstream CLI builds them: values of one flag OR, different flags AND; a flag that names
 * both directions (--ip, --pod, --label, ...) makes two filters, source side and destination
 * side; --not sends the one next filter flag to the deny list. Values are checked here, so a bad
 * one fails before any connection is made.
 */
import type { EventTypeFilter, FlowFilter } from "../filters/flow-filter.ts";
import { tracePointByName } from "../flow/monitor.ts";
import type { TCPFlags } from "../flow/types.ts";
import { TCP_FLAG_NAMES } from "../flow/types.ts";
import { enumSchema } from "../proto/schema.ts";
import { reservedIdentityName } from "../../identity/reserved.ts";

export class FilterFlagError extends Error {
  override name = "FilterFlagError";
}

/** Filter flags that take no value (pflag NoOptDefVal). */
export const VALUELESS_FILTER_FLAGS = new Set(["not", "encrypted", "unencrypted", "ipv4", "ipv6", "all-namespaces", "from-all-namespaces", "to-all-namespaces"]);

export const FILTER_FLAGS = new Set([
  ...VALUELESS_FILTER_FLAGS,
  "uuid",
  "node-name",
  "node-label",
  "from-cluster",
  "cluster",
  "to-cluster",
  "protocol",
  "tcp-flags",
  "type",
  "verdict",
  "drop-reason-desc",
  "http-status",
  "http-method",
  "http-path",
  "http-url",
  "http-header",
  "trace-id",
  "ip-trace-id",
  "from-fqdn",
  "fqdn",
  "to-fqdn",
  "from-ip",
  "snat-ip",
  "ip",
  "to-ip",
  "ip-version",
  "from-pod",
  "pod",
  "to-pod",
  "from-namespace",
  "namespace",
  "to-namespace",
  "from-label",
  "label",
  "to-label",
  "from-service",
  "service",
  "to-service",
  "from-port",
  "port",
  "to-port",
  "from-workload",
  "workload",
  "to-workload",
  "from-identity",
  "identity",
  "to-identity",
  "traffic-direction",
  "cel-expression",
  "interface",
]);

export const FILTER_SHORT_FLAGS: Record<string, string> = { t: "type", n: "namespace", A: "all-namespaces", l: "label", "4": "ipv4", "6": "ipv6" };

/** Flags that cannot be combined within one list (upstream's conflict groups). */
const CONFLICTS: readonly (readonly string[])[] = [
  ["from-fqdn", "from-ip", "ip", "fqdn", "from-namespace", "namespace", "from-all-namespaces", "all-namespaces"],
  ["from-fqdn", "from-ip", "ip", "fqdn", "from-pod", "pod"],
  ["to-fqdn", "to-ip", "ip", "fqdn", "to-namespace", "namespace", "to-all-namespaces", "all-namespaces"],
  ["to-fqdn", "to-ip", "ip", "fqdn", "to-pod", "pod"],
  ["to-pod", "namespace", "all-namespaces"],
  ["from-pod", "namespace", "all-namespaces"],
  ["to-service", "namespace", "all-namespaces"],
  ["from-service", "namespace", "all-namespaces"],
  ["label", "from-label"],
  ["label", "to-label"],
  ["service", "from-service"],
  ["service", "to-service"],
  ["port", "to-port"],
  ["port", "from-port"],
  ["identity", "to-identity"],
  ["identity", "from-identity"],
  ["workload", "to-workload"],
  ["workload", "from-workload"],
  ["encrypted", "unencrypted"],
];

const EVENT_TYPES: Record<string, number> = { drop: 1, debug: 2, capture: 3, trace: 4, "policy-verdict": 5, "trace-sock": 7, l7: 129, agent: 130 };

const AGENT_EVENT_SUBTYPES: Record<string, number> = {
  unspecified: 0,
  message: 1,
  "agent-started": 2,
  "policy-updated": 3,
  "policy-deleted": 4,
  "endpoint-regenerate-success": 5,
  "endpoint-regenerate-failure": 6,
  "endpoint-created": 7,
  "endpoint-deleted": 8,
  "ipcache-upserted": 9,
  "ipcache-deleted": 10,
};

/** Reserved identities by name, the CLI's --identity accepts them besides numbers. */
const RESERVED_IDENTITY_IDS: Record<string, number> = { unknown: 0, "world-ipv4": 9, "world-ipv6": 10 };
for (let id = 1; id <= 8; id++) {
  const name = reservedIdentityName(id);
  if (name) RESERVED_IDENTITY_IDS[name] = id;
}

type ListKey = { [K in keyof FlowFilter]-?: FlowFilter[K] extends unknown[] | undefined ? K : never }[keyof FlowFilter];

function push<K extends ListKey>(f: FlowFilter, key: K, value: NonNullable<FlowFilter[K]>[number]): void {
  ((f[key] ??= []) as unknown[]).push(value);
}

function namespaceOf(name: string): string {
  const parts = name.split("/");
  return parts.length > 1 ? parts[0]! : "";
}

function withNamespaces(names: string[] | undefined, namespaces: readonly string[]): string[] | undefined {
  if (namespaces.length === 0 || names === undefined || names.length === 0) return names;
  return names.flatMap((n) => (n.includes("/") ? [n] : namespaces.map((ns) => `${ns}/${n}`)));
}

/** Deep equality of two filters regardless of key order. */
function sameFilter(a: FlowFilter, b: FlowFilter): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** One list (allow or deny): the source-side and destination-side filter, ORed. */
class FilterTracker {
  left: FlowFilter | undefined;
  right: FlowFilter | undefined;
  readonly ns: string[] = [];
  readonly srcNs: string[] = [];
  readonly dstNs: string[] = [];
  readonly changed: string[] = [];

  applyLeft(update: (f: FlowFilter) => void): void {
    update((this.left ??= {}));
  }

  applyRight(update: (f: FlowFilter) => void): void {
    update((this.right ??= {}));
  }

  apply(update: (f: FlowFilter) => void): void {
    this.applyLeft(update);
    this.applyRight(update);
  }

  /** Records the flag; true the first time it is used in this list. */
  touch(name: string): boolean {
    if (this.changed.includes(name)) return false;
    this.changed.push(name);
    for (const group of CONFLICTS) {
      if (!group.includes(name)) continue;
      const other = group.find((g) => g !== name && this.changed.includes(g));
      if (other !== undefined) throw new FilterFlagError(`filters --${other} and --${name} cannot be combined`);
    }
    return true;
  }

  checkNamespaceConflicts(): void {
    for (const f of [this.left, this.right]) {
      if (!f) continue;
      const conflicts = (namespaces: readonly string[], names: readonly string[] | undefined) => {
        for (const ns of namespaces)
          for (const name of names ?? []) {
            const nn = namespaceOf(name);
            if (nn !== "" && nn !== ns) throw new FilterFlagError(`namespace conflict: "${ns}" does not contain "${name}"`);
          }
      };
      conflicts(this.ns, f.source_pod);
      conflicts(this.ns, f.source_service);
      conflicts(this.ns, f.destination_pod);
      conflicts(this.ns, f.destination_service);
      conflicts(this.srcNs, f.source_pod);
      conflicts(this.srcNs, f.source_service);
      conflicts(this.dstNs, f.destination_pod);
      conflicts(this.dstNs, f.destination_service);
      const inconsistent = (pods: readonly string[] | undefined, services: readonly string[] | undefined) => {
        for (const pod of pods ?? []) {
          const podNs = namespaceOf(pod);
          if (podNs === "") continue;
          for (const svc of services ?? []) if (namespaceOf(svc) !== podNs) throw new FilterFlagError(`namespace of service "${svc}" conflict with pod "${podNs}"`);
        }
      };
      inconsistent(f.source_pod, f.source_service);
      inconsistent(f.destination_pod, f.destination_service);
    }
  }

  /** The list's filters, with the namespace flags folded into the pod and service filters. */
  flowFilters(): FlowFilter[] {
    if (!this.left && !this.right && this.ns.length === 0 && this.srcNs.length === 0 && this.dstNs.length === 0) return [];
    const left = (this.left ??= {});
    const right = (this.right ??= {});
    const applySrc = (f: FlowFilter, namespaces: readonly string[]) => {
      if (!f.source_pod?.length && !f.source_service?.length) f.source_pod = [""];
      f.source_pod = withNamespaces(f.source_pod, namespaces);
      f.source_service = withNamespaces(f.source_service, namespaces);
      if (!f.source_service?.length) delete f.source_service;
    };
    const applyDest = (f: FlowFilter, namespaces: readonly string[]) => {
      if (!f.destination_pod?.length && !f.destination_service?.length) f.destination_pod = [""];
      f.destination_pod = withNamespaces(f.destination_pod, namespaces);
      f.destination_service = withNamespaces(f.destination_service, namespaces);
      if (!f.destination_service?.length) delete f.destination_service;
    };
    if (this.dstNs.length > 0) {
      applyDest(left, this.dstNs);
      applyDest(right, this.dstNs);
    }
    if (this.srcNs.length > 0) {
      applySrc(left, this.srcNs);
      applySrc(right, this.srcNs);
    }
    if (this.ns.length > 0) {
      applySrc(left, this.ns);
      applyDest(right, this.ns);
    }
    return sameFilter(left, right) ? [left] : [left, right];
  }
}

function parseTcpFlags(value: string): TCPFlags {
  const flags: TCPFlags = {};
  for (const part of value.split(",")) {
    const name = TCP_FLAG_NAMES.find((n) => n === part.toUpperCase());
    if (name === undefined) throw new FilterFlagError(`unknown tcp flag: ${part}`);
    flags[name] = true;
  }
  return flags;
}

function parseIdentity(value: string): number {
  const reserved = RESERVED_IDENTITY_IDS[value];
  if (reserved !== undefined && reserved !== 0) return reserved;
  if (/^\d+$/.test(value) && Number(value) <= 0xffffffff) return Number(value);
  throw new FilterFlagError(`invalid security identity "${value}", expected one of ${Object.keys(RESERVED_IDENTITY_IDS).join(", ")} or a numeric value`);
}

function parseUint(value: string, max: number): number | undefined {
  return /^\d+$/.test(value) && Number(value) <= max ? Number(value) : undefined;
}

function parseEventType(value: string): EventTypeFilter {
  const sep = value.indexOf(":");
  const [typeText, subText] = sep < 0 ? [value, undefined] : [value.slice(0, sep), value.slice(sep + 1)];
  const type = EVENT_TYPES[typeText] ?? parseUint(typeText, 0xffffffff);
  if (type === undefined) throw new FilterFlagError(`unable to parse type '${typeText}', not a known type name (${Object.keys(EVENT_TYPES).join(", ")}) and not a number`);
  const filter: EventTypeFilter = { type };
  if (subText === undefined) return filter;
  let sub: number | undefined;
  if (type === EVENT_TYPES.trace) sub = tracePointByName(subText);
  else if (type === EVENT_TYPES.agent) sub = AGENT_EVENT_SUBTYPES[subText];
  sub ??= parseUint(subText, 0xffffffff);
  if (sub === undefined) throw new FilterFlagError(`unable to parse event sub-type '${subText}', not a known sub-type name and not a number`);
  return { type, match_sub_type: true, sub_type: sub };
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function validIPv4(s: string): boolean {
  const m = IPV4.exec(s);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255 && (o.length === 1 || o[0] !== "0"));
}

function validIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.split("::").length > 2) return false;
  let groups = s.split(":");
  const last = groups[groups.length - 1]!;
  let count = 0;
  if (last.includes(".")) {
    if (!validIPv4(last)) return false;
    count += 2;
    groups = groups.slice(0, -1);
  }
  const compressed = s.includes("::");
  const parts = groups.filter((g) => g !== "");
  if (!parts.every((g) => g.length <= 4)) return false;
  count += parts.length;
  return compressed ? count < 8 : count === 8;
}

/** An IP address or CIDR as the server's source/destination IP filters accept them. */
function checkIpOrCidr(flag: string, value: string): void {
  const slash = value.indexOf("/");
  const ip = slash < 0 ? value : value.slice(0, slash);
  const v4 = validIPv4(ip);
  if (!v4 && !validIPv6(ip)) throw new FilterFlagError(`invalid --${flag} value "${value}": not an IP address or CIDR`);
  if (slash < 0) return;
  const bits = parseUint(value.slice(slash + 1), v4 ? 32 : 128);
  if (bits === undefined) throw new FilterFlagError(`invalid --${flag} value "${value}": bad prefix length`);
}

function checkPort(flag: string, value: string): void {
  if (parseUint(value, 65535) === undefined) throw new FilterFlagError(`invalid --${flag} value "${value}": not a port number (0-65535)`);
}

function ipVersion(value: string): number {
  switch (value.toLowerCase()) {
    case "4":
    case "v4":
    case "ipv4":
    case "ip4":
      return 1;
    case "6":
    case "v6":
    case "ipv6":
    case "ip6":
      return 2;
  }
  return 0;
}

function parseWorkload(value: string): { kind: string; name: string } {
  const slash = value.indexOf("/");
  return slash < 0 ? { kind: "", name: value } : { kind: value.slice(0, slash), name: value.slice(slash + 1) };
}

export class FlowFilterBuilder {
  private readonly allow = new FilterTracker();
  private readonly deny = new FilterTracker();
  private negateNext = false;

  /** Applies one filter flag (its long name) with its value, in command-line order. */
  set(name: string, value: string): void {
    if (name === "not") {
      if (this.negateNext) throw new FilterFlagError("consecutive --not statements");
      this.negateNext = true;
      return;
    }
    const deny = this.negateNext;
    this.negateNext = false;
    const t = deny ? this.deny : this.allow;
    const first = t.touch(name);
    applyFlag(t, name, value, first);
    t.checkNamespaceConflicts();
  }

  /** The request's whitelist and blacklist; fails on a trailing --not. */
  build(): { whitelist: FlowFilter[]; blacklist: FlowFilter[] } {
    if (this.negateNext) throw new FilterFlagError("trailing --not found in the arguments");
    return { whitelist: this.allow.flowFilters(), blacklist: this.deny.flowFilters() };
  }
}

function applyFlag(t: FilterTracker, name: string, val: string, first: boolean): void {
  const both = <K extends ListKey>(key: K, v: NonNullable<FlowFilter[K]>[number]) => t.apply((f) => push(f, key, v));
  const split = <K extends ListKey, L extends ListKey>(src: K, dst: L, v: NonNullable<FlowFilter[K]>[number] & NonNullable<FlowFilter[L]>[number]) => {
    t.applyLeft((f) => push(f, src, v));
    t.applyRight((f) => push(f, dst, v));
  };
  switch (name) {
    case "uuid":
      return both("uuid", val);
    case "fqdn":
      return split("source_fqdn", "destination_fqdn", val);
    case "from-fqdn":
      return both("source_fqdn", val);
    case "to-fqdn":
      return both("destination_fqdn", val);
    case "pod":
      return split("source_pod", "destination_pod", val);
    case "from-pod":
      return both("source_pod", val);
    case "to-pod":
      return both("destination_pod", val);
    case "ip":
      checkIpOrCidr(name, val);
      return split("source_ip", "destination_ip", val);
    case "from-ip":
      checkIpOrCidr(name, val);
      return both("source_ip", val);
    case "snat-ip":
      checkIpOrCidr(name, val);
      return both("source_ip_xlated", val);
    case "to-ip":
      checkIpOrCidr(name, val);
      return both("destination_ip", val);
    case "ipv4":
      return both("ip_version", 1);
    case "ipv6":
      return both("ip_version", 2);
    case "ip-version":
      return both("ip_version", ipVersion(val));
    case "label":
      return split("source_label", "destination_label", val);
    case "from-label":
      return both("source_label", val);
    case "to-label":
      return both("destination_label", val);
    case "namespace":
      t.ns.push(val);
      return;
    case "from-namespace":
      t.srcNs.push(val);
      return;
    case "to-namespace":
      t.dstNs.push(val);
      return;
    case "all-namespaces":
      t.ns.push("");
      return;
    case "from-all-namespaces":
      t.srcNs.push("");
      return;
    case "to-all-namespaces":
      t.dstNs.push("");
      return;
    case "service":
      return split("source_service", "destination_service", val);
    case "from-service":
      return both("source_service", val);
    case "to-service":
      return both("destination_service", val);
    case "port":
      checkPort(name, val);
      return split("source_port", "destination_port", val);
    case "from-port":
      checkPort(name, val);
      return both("source_port", val);
    case "to-port":
      checkPort(name, val);
      return both("destination_port", val);
    case "trace-id":
      return both("trace_id", val);
    case "ip-trace-id": {
      const id = /^\d+$/.test(val) ? BigInt(val) : undefined;
      if (id === undefined || id === 0n || id >= 2n ** 64n) throw new FilterFlagError(`invalid --ip-trace-id value "${val}": must be a number greater than 0`);
      return both("ip_trace_id", id.toString());
    }
    case "verdict": {
      const v = enumSchema("flow.Verdict").values[val];
      if (v === undefined) throw new FilterFlagError(`invalid --verdict value: ${val} (one of FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED)`);
      if (first) t.apply((f) => delete f.verdict);
      return both("verdict", v);
    }
    case "drop-reason-desc": {
      if (val === "") throw new FilterFlagError("empty --drop-reason-desc value");
      const v = enumSchema("flow.DropReason").values[val];
      if (v === undefined) throw new FilterFlagError(`invalid --drop-reason-desc value: ${val}`);
      return both("drop_reason_desc", v);
    }
    case "http-status":
      return both("http_status_code", val);
    case "http-method":
      return both("http_method", val);
    case "http-path":
      return both("http_path", val);
    case "http-url":
      return both("http_url", val);
    case "http-header": {
      const colon = val.indexOf(":");
      if (colon < 0) throw new FilterFlagError(`invalid http-header value "${val}", expected name:value`);
      return both("http_header", { key: val.slice(0, colon), value: val.slice(colon + 1) });
    }
    case "type": {
      const filter = parseEventType(val);
      if (first) t.apply((f) => delete f.event_type);
      return both("event_type", filter);
    }
    case "protocol":
      return both("protocol", val);
    case "workload":
      return split("source_workload", "destination_workload", parseWorkload(val));
    case "from-workload":
      return both("source_workload", parseWorkload(val));
    case "to-workload":
      return both("destination_workload", parseWorkload(val));
    case "identity":
      return split("source_identity", "destination_identity", parseIdentity(val));
    case "from-identity":
      return both("source_identity", parseIdentity(val));
    case "to-identity":
      return both("destination_identity", parseIdentity(val));
    case "node-name":
      return both("node_name", val);
    case "node-label":
      return both("node_labels", val);
    case "cluster":
      return split("source_cluster_name", "destination_cluster_name", val);
    case "from-cluster":
      return both("source_cluster_name", val);
    case "to-cluster":
      return both("destination_cluster_name", val);
    case "tcp-flags":
      return both("tcp_flags", parseTcpFlags(val));
    case "traffic-direction": {
      const td = val.toLowerCase();
      if (td !== "ingress" && td !== "egress") throw new FilterFlagError(`${td}: invalid traffic direction, expected ingress or egress`);
      return both("traffic_direction", td === "ingress" ? 1 : 2);
    }
    case "cel-expression":
      return t.apply((f) => ((f.experimental ??= {}).cel_expression ??= []).push(val));
    case "interface":
      return both("interface", { name: val });
    case "encrypted":
      return both("encrypted", true);
    case "unencrypted":
      return both("encrypted", false);
  }
  throw new FilterFlagError(`unknown filter flag --${name}`);
}
