/**
 * `cilium monitor` output: each datapath record printed as upstream's monitor prints it
 * (pkg/monitor DropNotify/TraceNotify/PolicyVerdictNotify DumpInfo, DumpVerbose, DumpJSON; the
 * connection summary of pkg/monitor/dissect.go). Pure: records in, lines out.
 *
 * Where we differ: the verbose packet dump is our own one-line-per-layer text (upstream prints
 * gopacket's layer dumps); with -j, policy verdicts and lost counts are JSON objects too
 * (upstream prints its text line for them), so that every line of -j output parses.
 */
import type { EventRecord } from "../../hubble/parser/record.ts";
import { decodePacket, type DecodedPacket } from "../../hubble/parser/packet.ts";
import { icmpTypeCodeText } from "../../hubble/parser/summary.ts";
import { dropReasonText, tracePointName } from "../../hubble/flow/monitor.ts";
import { formatIpv4 } from "../../net/ipv4.ts";

export type MonitorVerbosity = "info" | "debug" | "verbose" | "json";

/** `-t` names of the event types this datapath writes, with their monitor message types. */
export const MONITOR_EVENT_TYPES = { drop: 1, trace: 4, "policy-verdict": 5 } as const;
export type MonitorEventTypeName = keyof typeof MONITOR_EVENT_TYPES;

export interface MonitorFilter {
  /** Message types to show; empty: all. */
  types: readonly number[];
  /** Endpoint ids: the event's source or destination must be one of them; empty: any. */
  relatedTo: readonly number[];
  from: readonly number[];
  to: readonly number[];
}

export interface MonitorFormatOptions {
  verbosity: MonitorVerbosity;
  /** -n: identities as numbers, also reserved ones. */
  numeric: boolean;
  /** Interface name of an ifindex, undefined when unknown (then printed as the number). */
  ifname?: (ifindex: number) => string | undefined;
}

const SEPARATOR = "------------------------------------------------------------------------------";
/** Upstream prints a per-CPU prefix; our ring is one for all CPUs. */
const CPU_PREFIX = "CPU 00:";

const RESERVED_IDENTITY_NAMES: Record<number, string> = {
  0: "unknown",
  1: "host",
  2: "world",
  3: "unmanaged",
  4: "health",
  5: "init",
  6: "remote-node",
  7: "kube-apiserver",
  8: "ingress",
};

const CONN_STATES: Record<number, string> = { 0: "new", 1: "established", 2: "reply", 3: "related", 4: "reopened", 5: "unknown" };

/** Upstream's PolicyMatchType strings. */
const MATCH_TYPES: Record<number, string> = { 0: "none", 1: "L3-Only", 2: "L3-L4", 3: "L4-Only", 4: "all", 5: "L3-Proto", 6: "Proto-Only" };

/** ICMPv4 type and code names as gopacket's ICMPv4TypeCode.String() gives them. */
/** gopacket's ICMPv4 type/code text, as upstream's monitor prints it. */
export function icmp4TypeCode(type: number, code: number): string {
  return icmpTypeCodeText("ICMPv4", type, code);
}

/** Whether `record` passes `-t`, `--from`, `--to` and `--related-to` (upstream's match()). */
export function matchesFilter(record: EventRecord, filter: MonitorFilter): boolean {
  if (filter.types.length > 0 && !filter.types.includes(record.type)) return false;
  const source = record.sourceEndpoint;
  const destination = record.dstEndpoint;
  if (filter.from.length > 0 && !filter.from.includes(source)) return false;
  if (filter.to.length > 0 && !filter.to.includes(destination)) return false;
  if (filter.relatedTo.length > 0 && !filter.relatedTo.includes(source) && !filter.relatedTo.includes(destination)) return false;
  return true;
}

/** The text of one record (one or more lines, newline-terminated); "" for types we do not print. */
export function formatMonitorRecord(record: EventRecord, options: MonitorFormatOptions): string {
  switch (record.type) {
    case MONITOR_EVENT_TYPES.drop:
      return formatDrop(record, options);
    case MONITOR_EVENT_TYPES.trace:
      return formatTrace(record, options);
    case MONITOR_EVENT_TYPES["policy-verdict"]:
      return formatPolicyVerdict(record, options);
    default:
      return options.verbosity === "json" ? `${JSON.stringify({ cpu: CPU_PREFIX, type: "unknown", eventType: record.type })}\n` : `${CPU_PREFIX} Unknown event: type ${record.type}\n`;
  }
}

/** Upstream's lost-events line; with -j a JSON object. */
export function formatLost(count: number, where: "datapath" | "client", verbosity: MonitorVerbosity): string {
  if (verbosity === "json") return `${JSON.stringify({ cpu: CPU_PREFIX, type: "lost", lost: count, where })}\n`;
  return `${CPU_PREFIX} Lost ${count} events\n`;
}

/* ---- drop --------------------------------------------------------------------------------- */

function formatDrop(r: EventRecord, o: MonitorFormatOptions): string {
  const reason = dropReasonText(r.subtype);
  const packet = decodePacket(r.packet);
  if (o.verbosity === "json") {
    return `${JSON.stringify({
      cpu: CPU_PREFIX,
      type: "drop",
      mark: hex(r.hash),
      reason,
      source: r.sourceEndpoint,
      bytes: r.origLength,
      srcLabel: r.srcIdentity,
      dstLabel: r.dstIdentity,
      dstID: r.dstEndpoint,
      Line: r.file?.line ?? 0,
      File: fileId(r),
      ExtError: 0,
      Ifindex: r.ifindex,
      ...summaryField(packet),
    })}\n`;
  }
  if (o.verbosity === "verbose") {
    let line = `${CPU_PREFIX} MARK ${hex(r.hash)} FROM ${r.sourceEndpoint} DROP: ${r.origLength} bytes, reason ${reason}`;
    if (r.srcIdentity !== 0 || r.dstIdentity !== 0) line += identities(r, o);
    line += r.dstEndpoint !== 0 ? `, to endpoint ${r.dstEndpoint}` : "";
    return `${SEPARATOR}\n${line}\n${dissect(packet)}`;
  }
  const file = r.file ? `${r.file.name}:${r.file.line}` : `<unknown-id-${fileId(r)}>:0`;
  return `xx drop (${reason}) flow ${hex(r.hash)} to endpoint ${r.dstEndpoint}, ifindex ${r.ifindex}, file ${file}, ${identities(r, o)}: ${connectionSummary(packet)}\n`;
}

function fileId(r: EventRecord): number {
  return r.file?.name === "bpf_lxc.c" ? 1 : r.file?.name === "bpf_host.c" ? 2 : 0;
}

/* ---- trace -------------------------------------------------------------------------------- */

function traceSummary(r: EventRecord): string {
  switch (r.subtype) {
    case 0:
      return `-> endpoint ${r.dstEndpoint}`;
    case 1:
      return r.dstEndpoint !== 0 ? `-> proxy port ${r.dstEndpoint}` : "-> proxy";
    case 2:
      return "-> host from";
    case 3:
      return "-> stack";
    case 4:
      return "-> overlay";
    case 11:
      return "-> network";
    case 5:
      return `<- endpoint ${r.sourceEndpoint}`;
    case 6:
      return "<- proxy";
    case 7:
      return "<- host";
    case 8:
      return "<- stack";
    case 9:
      return "<- overlay";
    case 10:
      return "<- network";
    default:
      return "unknown trace";
  }
}

function formatTrace(r: EventRecord, o: MonitorFormatOptions): string {
  const packet = decodePacket(r.packet);
  const state = CONN_STATES[r.reason] ?? String(r.reason);
  const ifname = interfaceName(r.ifindex, o);
  const origIp = formatIpv4(r.origIp4);
  if (o.verbosity === "json") {
    return `${JSON.stringify({
      cpu: CPU_PREFIX,
      type: "trace",
      mark: hex(r.hash),
      ifindex: ifname,
      state,
      observationPoint: tracePointName(r.subtype),
      traceSummary: traceSummary(r),
      source: r.sourceEndpoint,
      bytes: r.origLength,
      srcLabel: r.srcIdentity,
      dstLabel: r.dstIdentity,
      dstID: r.dstEndpoint,
      ...summaryField(packet),
    })}\n`;
  }
  if (o.verbosity === "verbose") {
    let line = `${CPU_PREFIX} MARK ${hex(r.hash)} FROM ${r.sourceEndpoint} ${tracePointName(r.subtype)}: ${r.origLength} bytes (${r.packet.length} captured), state ${state}`;
    if (r.ifindex !== 0) line += `, interface ${ifname}`;
    if (r.srcIdentity !== 0 || r.dstIdentity !== 0) line += `, ${identities(r, o)}`;
    line += `, orig-ip ${origIp}`;
    if (r.dstEndpoint !== 0) line += `, to ${r.subtype === 1 ? "proxy-port" : "endpoint"} ${r.dstEndpoint}`;
    return `${SEPARATOR}\n${line}\n${dissect(packet)}`;
  }
  return `${traceSummary(r)} flow ${hex(r.hash)} ${identities(r, o)} state ${state} ifindex ${ifname} orig-ip ${origIp}: ${connectionSummary(packet)}\n`;
}

/* ---- policy verdict ----------------------------------------------------------------------- */

function formatPolicyVerdict(r: EventRecord, o: MonitorFormatOptions): string {
  const p = r.policy!;
  const direction = r.direction === 1 ? "ingress" : "egress";
  const action = p.dropReason !== 0 ? "deny" : "allow";
  const match = MATCH_TYPES[p.matchType] ?? String(p.matchType);
  const packet = decodePacket(r.packet);
  if (o.verbosity === "json") {
    return `${JSON.stringify({
      cpu: CPU_PREFIX,
      type: "policy-verdict",
      mark: hex(r.hash),
      source: r.sourceEndpoint,
      remoteLabel: p.remoteIdentity,
      proto: p.proto,
      dstPort: p.dport,
      direction,
      action,
      ...(p.dropReason !== 0 ? { reason: dropReasonText(p.dropReason) } : {}),
      auth: "disabled",
      match,
      bytes: r.origLength,
      ...summaryField(packet),
    })}\n`;
  }
  return `Policy verdict log: flow ${hex(r.hash)} local EP ID ${r.sourceEndpoint}, remote ID ${identity(p.remoteIdentity, o)}, proto ${p.proto}, ${direction}, action ${action}, auth: disabled, match ${match}, ${connectionSummary(packet)}\n`;
}

/* ---- shared pieces ------------------------------------------------------------------------ */

/** Go's %#x. */
function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

function identity(id: number, o: MonitorFormatOptions): string {
  return o.numeric ? String(id) : (RESERVED_IDENTITY_NAMES[id] ?? String(id));
}

/** Upstream's dumpIdentity(), leading comma included. */
function identities(r: EventRecord, o: MonitorFormatOptions): string {
  return `, identity ${identity(r.srcIdentity, o)}->${identity(r.dstIdentity, o)}`;
}

function interfaceName(ifindex: number, o: MonitorFormatOptions): string {
  return o.ifname?.(ifindex) ?? String(ifindex);
}

function tcpFlagText(packet: DecodedPacket): string {
  const f = packet.l4?.TCP?.flags ?? {};
  return [f.SYN && "SYN", f.ACK && "ACK", f.RST && "RST", f.FIN && "FIN"].filter(Boolean).join(", ");
}

/** Go's net.JoinHostPort. */
function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** dissect.go GetConnectionSummary. */
export function connectionSummary(packet: DecodedPacket): string {
  const { ip, l4, ethernet } = packet;
  const icmp = l4?.ICMPv4 ?? l4?.ICMPv6;
  if (ip && icmp) {
    const code = l4?.ICMPv4 ? icmp4TypeCode(icmp.type, icmp.code) : `${icmp.type}(${icmp.code})`;
    return `${ip.source} -> ${ip.destination} ${code}`;
  }
  const ports = l4?.TCP ?? l4?.UDP ?? l4?.SCTP;
  if (ip && ports) {
    const proto = l4?.TCP ? "tcp" : l4?.UDP ? "udp" : "sctp";
    const text = `${hostPort(ip.source, ports.source_port)} -> ${hostPort(ip.destination, ports.destination_port)} ${proto}`;
    return l4?.TCP ? `${text} ${tcpFlagText(packet)}` : text;
  }
  if (ip) return `${ip.source} -> ${ip.destination}`;
  if (ethernet) return `${ethernet.source} -> ${ethernet.destination}`;
  return "[unknown]";
}

/** dissect.go DissectSummary's flows (l2, l3, l4), under "summary". */
function summaryField(packet: DecodedPacket): { summary?: Record<string, { src: string; dst: string }> } {
  const summary: Record<string, { src: string; dst: string }> = {};
  if (packet.ethernet) summary.l2 = { src: packet.ethernet.source, dst: packet.ethernet.destination };
  if (packet.ip) summary.l3 = { src: packet.ip.source, dst: packet.ip.destination };
  const ports = packet.l4?.TCP ?? packet.l4?.UDP ?? packet.l4?.SCTP;
  if (ports) summary.l4 = { src: String(ports.source_port), dst: String(ports.destination_port) };
  return Object.keys(summary).length > 0 ? { summary } : {};
}

/** One line per decoded layer, for -vv. */
function dissect(packet: DecodedPacket): string {
  const lines: string[] = [];
  if (packet.ethernet) lines.push(`Ethernet\t{SrcMAC=${packet.ethernet.source} DstMAC=${packet.ethernet.destination}}`);
  if (packet.ip) lines.push(`${packet.ip.ipVersion === 2 ? "IPv6" : "IPv4"}\t{SrcIP=${packet.ip.source} DstIP=${packet.ip.destination}}`);
  const l4 = packet.l4;
  if (l4?.TCP) lines.push(`TCP\t{SrcPort=${l4.TCP.source_port} DstPort=${l4.TCP.destination_port} Flags=${tcpFlagText(packet)}}`);
  if (l4?.UDP) lines.push(`UDP\t{SrcPort=${l4.UDP.source_port} DstPort=${l4.UDP.destination_port}}`);
  if (l4?.SCTP) lines.push(`SCTP\t{SrcPort=${l4.SCTP.source_port} DstPort=${l4.SCTP.destination_port}}`);
  if (l4?.ICMPv4) lines.push(`ICMPv4\t{TypeCode=${icmp4TypeCode(l4.ICMPv4.type, l4.ICMPv4.code)}}`);
  if (l4?.ICMPv6) lines.push(`ICMPv6\t{Type=${l4.ICMPv6.type} Code=${l4.ICMPv6.code}}`);
  return lines.map((l) => `${l}\n`).join("");
}
