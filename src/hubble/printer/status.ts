/**
 * `hubble status` and `hubble list nodes|namespaces` output, as the upstream CLI prints it:
 * numbers with thousands separators, Go duration text, tab-aligned tables.
 */
import { toJsonValue } from "../proto/json.ts";
import { alignColumns } from "./printer.ts";

export interface ServerStatus {
  num_flows?: number;
  max_flows?: number;
  seen_flows?: number;
  uptime_ns?: number;
  num_connected_nodes?: { value?: number };
  num_unavailable_nodes?: { value?: number };
  unavailable_nodes?: string[];
  version?: string;
  flows_rate?: number;
}

export interface NodeInfo {
  name?: string;
  version?: string;
  address?: string;
  state?: number;
  tls?: { enabled?: boolean };
  uptime_ns?: number;
  num_flows?: number;
  max_flows?: number;
  seen_flows?: number;
}

export interface NamespaceInfo {
  cluster?: string;
  namespace?: string;
}

/** 1234567 -> "1,234,567" */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Go's time.Duration.String() of `ns` nanoseconds: "1h2m3.5s", "250ms", "0s". */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let n = Math.abs(ns);
  if (n < 1e9) {
    const [unit, scale] = n < 1e3 ? ["ns", 1] : n < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    return `${sign}${trimFraction(n / scale)}${unit}`;
  }
  const h = Math.floor(n / 3600e9);
  n -= h * 3600e9;
  const m = Math.floor(n / 60e9);
  n -= m * 60e9;
  const s = `${trimFraction(Math.floor(n) / 1e9)}s`;
  if (h > 0) return `${sign}${h}h${m}m${s}`;
  if (m > 0) return `${sign}${m}m${s}`;
  return `${sign}${s}`;
}

function trimFraction(v: number): string {
  return v.toFixed(9).replace(/\.?0+$/, "");
}

export type StatusFormat = "compact" | "dict" | "json" | "table";

export function formatServerStatus(res: ServerStatus, format: StatusFormat): string {
  const num = res.num_flows ?? 0;
  const max = res.max_flows ?? 0;
  const seen = res.seen_flows ?? 0;
  const uptime = res.uptime_ns ?? 0;
  const connected = res.num_connected_nodes;
  const unavailable = res.num_unavailable_nodes;
  let flowsPerSec = (res.flows_rate ?? 0) > 0 ? res.flows_rate!.toFixed(2) : "N/A";
  switch (format) {
    case "json":
      return `${JSON.stringify(toJsonValue("observer.ServerStatusResponse", res))}\n`;
    case "table":
      return alignColumns([
        ["NUM FLOWS", "MAX FLOWS", "SEEN FLOWS", "FLOWS PER SECOND", "UPTIME", "NUM CONNECTED NODES", "NUM UNAVAILABLE NODES", "VERSION"],
        [thousands(num), thousands(max), thousands(seen), flowsPerSec, goDuration(uptime), connected ? String(connected.value ?? 0) : "N/A", unavailable ? String(unavailable.value ?? 0) : "N/A", res.version ?? ""],
      ]);
    case "dict":
      return [
        `          NUM FLOWS: ${thousands(num)}`,
        `          MAX FLOWS: ${thousands(max)}`,
        `         SEEN FLOWS: ${thousands(seen)}`,
        `   FLOWS PER SECOND: ${flowsPerSec}`,
        `             UPTIME: ${goDuration(uptime)}`,
        `NUM CONNECTED NODES: ${connected ? (connected.value ?? 0) : "N/A"}`,
        ` NUM UNAVAIL. NODES: ${unavailable ? (unavailable.value ?? 0) : "N/A"}`,
        `            VERSION: ${res.version ?? ""}`,
        "",
      ].join("\n");
    case "compact": {
      const lines: string[] = [];
      const ratio = max > 0 ? ` (${((num / max) * 100).toFixed(2)}%)` : "";
      lines.push(`Current/Max Flows: ${thousands(num)}/${thousands(max)}${ratio}`);
      if (flowsPerSec === "N/A" && uptime > 0) flowsPerSec = (seen / (uptime / 1e9)).toFixed(2);
      lines.push(`Flows/s: ${flowsPerSec}`);
      if (connected) {
        const total = unavailable ? `/${(unavailable.value ?? 0) + (connected.value ?? 0)}` : "";
        lines.push(`Connected Nodes: ${connected.value ?? 0}${total}`);
      }
      const nUnavailable = unavailable?.value ?? 0;
      if (nUnavailable > 0) {
        const names = [...(res.unavailable_nodes ?? [])].sort();
        if (names.length === 0) lines.push(`Unavailable Nodes: ${nUnavailable}`);
        else {
          if (nUnavailable > names.length) names.push(`and ${nUnavailable - names.length} more...`);
          lines.push(`Unavailable Nodes: ${nUnavailable}`, ...names.map((n) => `  - ${n}`));
        }
      }
      return lines.map((l) => `${l}\n`).join("");
    }
  }
}

const NODE_STATES = ["Unknown", "Connected", "Unavailable", "Gone", "Error"];

export type ListFormat = "json" | "table" | "wide";

export function formatNodes(nodes: readonly NodeInfo[], format: ListFormat): string {
  const sorted = [...nodes].sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -1 : (a.name ?? "") > (b.name ?? "") ? 1 : 0));
  if (format === "json") return `${JSON.stringify(sorted.map((n) => toJsonValue("observer.Node", n)), null, 2)}\n`;
  const wide = format === "wide";
  const rows = [["NAME", "STATUS", "AGE", "FLOWS/S", "CURRENT/MAX-FLOWS", ...(wide ? ["VERSION", "ADDRESS", "TLS"] : [])]];
  for (const n of sorted) {
    const uptimeS = Math.round((n.uptime_ns ?? 0) / 1e9);
    const age = uptimeS > 0 ? goDuration(uptimeS * 1e9) : "N/A";
    const flowsPerSec = uptimeS > 0 ? ((n.seen_flows ?? 0) / uptimeS).toFixed(2) : "N/A";
    const max = n.max_flows ?? 0;
    const ratio = max > 0 ? `${n.num_flows ?? 0}/${max} (${((100 * (n.num_flows ?? 0)) / max).toFixed(2).padStart(6)}%)` : "N/A";
    const row = [n.name ?? "", NODE_STATES[n.state ?? 0] ?? "Unknown", age, flowsPerSec, ratio];
    if (wide) row.push(n.version || "N/A", n.address ?? "", n.tls ? (n.tls.enabled ? "Enabled" : "Disabled") : "N/A");
    rows.push(row);
  }
  return alignColumns(rows);
}

export function formatNamespaces(namespaces: readonly NamespaceInfo[], format: ListFormat): string {
  if (format === "json") return `${JSON.stringify(namespaces.map((n) => toJsonValue("observer.Namespace", n)), null, 2)}\n`;
  const wide = format === "wide";
  const rows = [wide ? ["NAMESPACE", "CLUSTER"] : ["NAMESPACE"]];
  for (const ns of namespaces) rows.push(wide && ns.cluster ? [ns.namespace ?? "", ns.cluster] : [ns.namespace ?? ""]);
  return alignColumns(rows);
}
