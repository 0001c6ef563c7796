/**
 * `cilium status` text, laid out as upstream's (tab-separated, through Go's tabwriter with
 * minwidth 2 and padding 3). Brief: the subsystems, the node, IPAM and endpoint counts. Verbose:
 * also the kernel and the datapath's own report, every allocated address with its owner,
 * endpoint ids by state and the health verdict.
 */
import type { EndpointState, StatusResponse } from "../api/types.ts";
import { tabwrite } from "./tabwriter.ts";

/** Endpoint states in lifecycle order, for stable output. */
const STATE_ORDER: EndpointState[] = ["waiting-for-identity", "not-ready", "regenerating", "ready", "disconnecting", "disconnected"];

export function formatStatus(status: StatusResponse, verbose: boolean): string {
  const lines: string[] = [];
  lines.push(`KVStore:\t${status.kvstore.state}\t${status.kvstore.msg}`);
  lines.push(`Kubernetes:\t${status.kubernetes.state}\t${status.kubernetes.msg}`);
  lines.push(`Cilium:\t${status.cilium.state}   ${status.cilium.msg}`);
  lines.push(`NodeName:\t${status["node-name"]}`);
  if (verbose) lines.push(...datapathLines(status));
  lines.push(`IPAM:\t${status.ipam.status}`);
  if (verbose) {
    lines.push("Allocated addresses:");
    for (const [address, owner] of Object.entries(status.ipam.allocations)) lines.push(`  ${address} (${owner})`);
  }
  lines.push(`Endpoints:\t${endpointSummary(status)}`);
  if (verbose) {
    for (const state of STATE_ORDER) {
      const ids = status.endpoints["by-state"][state];
      if (ids?.length) lines.push(`  ${state}:\t${ids.join(", ")}`);
    }
    if (status.policy) {
      const { revision, rules, enforcement } = status.policy;
      lines.push(`Policy:\trevision ${revision}, ${plural(rules, "rule")}, enforcement ${enforcement}`);
    }
    const gc = status["conntrack-gc"];
    if (gc) {
      const last = gc.last ? `; last: ${gc.last["ct-deleted"]}/${gc.last["ct-entries"]} conntrack, ${gc.last["nat-deleted"]}/${gc.last["nat-entries"]} NAT entries deleted` : "";
      const failed = gc.error ? `; failing: ${gc.error}` : "";
      lines.push(`Conntrack GC:\tinterval ${gc.interval}${gc.dynamic ? " (dynamic)" : ""}, ${plural(gc.runs, "run")}, ${gc["total-deleted"]} entries deleted${last}${failed}`);
    }
    lines.push(`Health:\t${status.problems.length === 0 ? "Ok" : `${status.cilium.state}, ${plural(status.problems.length, "problem")}`}`);
  }
  if (status.problems.length > 0) {
    lines.push("Problems:");
    for (const problem of status.problems) lines.push(`  ${problem}`);
  }
  return tabwrite(`${lines.join("\n")}\n`, { minWidth: 2, padding: 3 });
}

/** "3 (2 ready, 1 regenerating)", or "0". */
function endpointSummary(status: StatusResponse): string {
  const parts = STATE_ORDER.flatMap((state) => {
    const count = status.endpoints["by-state"][state]?.length ?? 0;
    return count > 0 ? [`${count} ${state}`] : [];
  });
  return parts.length === 0 ? "0" : `${status.endpoints.total} (${parts.join(", ")})`;
}

function datapathLines(status: StatusResponse): string[] {
  const { details } = status.datapath;
  const lines = [`Kernel:\t${typeof details.kernel === "string" ? details.kernel : status.kernel}`];
  lines.push(`Datapath:\t${status.datapath.state}${status.datapath.msg ? `   ${status.datapath.msg}` : ""}`);
  for (const [key, value] of Object.entries(details)) {
    if (key !== "kernel") lines.push(`${label(key)}:\t${describe(value)}`);
  }
  return lines;
}

/** "attach-mode" -> "Attach mode" */
function label(key: string): string {
  const words = key.replaceAll(/[-_]/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map((item) => (typeof item === "string" ? item : JSON.stringify(item))).join(", ");
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
