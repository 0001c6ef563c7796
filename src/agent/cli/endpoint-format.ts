/**
 * `cilium endpoint list` as upstream lays it out: a two-line header, one row per endpoint with
 * its first label, one more row for each further label (Go tabwriter, minwidth 5, padding 3).
 */
import type { Endpoint } from "../api/types.ts";
import { tabwrite } from "./tabwriter.ts";

const HEADER = ["ENDPOINT", "POLICY (ingress)", "POLICY (egress)", "IDENTITY", "LABELS (source:key[=value])", "IPv6", "IPv4", "STATUS"];
const SUBHEADER = ["", "ENFORCEMENT", "ENFORCEMENT", "", "", "", "", ""];
/** Whether the datapath enforces the direction (an endpoint whose policy was never written: Disabled). */
const enforcement = (enforced: boolean | undefined) => (enforced ? "Enabled" : "Disabled");

export function formatEndpointList(endpoints: readonly Endpoint[], options: { headers: boolean }): string {
  const rows: string[][] = options.headers ? [HEADER, SUBHEADER] : [];
  for (const endpoint of [...endpoints].sort((a, b) => a.id - b.id)) {
    const [first, ...more] = endpoint.labels.length > 0 ? [...endpoint.labels].sort() : ["no labels"];
    const identity = endpoint.identity === undefined ? "<no label id>" : String(endpoint.identity);
    const policy = endpoint.policy;
    rows.push([String(endpoint.id), enforcement(policy?.["ingress-enforced"]), enforcement(policy?.["egress-enforced"]), identity, first!, "", endpoint.addressing.ipv4, endpoint.state]);
    for (const label of more) rows.push(["", "", "", "", label, "", "", ""]);
  }
  if (rows.length === 0) return "";
  // Every cell ends with a tab, as upstream writes them: all eight are aligned columns.
  return tabwrite(rows.map((cells) => `${cells.join("\t")}\t\n`).join(""), { minWidth: 5, padding: 3 });
}
