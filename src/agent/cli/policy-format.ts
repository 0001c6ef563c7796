/**
 * Text output of `cilium policy trace`, `cilium identity list|get` and `cilium bpf policy get`,
 * laid out as upstream's (Go tabwriter tables, "Final verdict: ALLOWED").
 */
import { parseDurationMs } from "../../duration.ts";
import type { IdentityModel, PolicyDirectionTrace, PolicyTraceResponse } from "../api/types.ts";
import type { DatapathPolicy, PolicyRule } from "../endpoint/datapath.ts";
import { tabwrite } from "./tabwriter.ts";

const list = (items: readonly string[]) => (items.length === 0 ? "none" : items.join(", "));

function directionLines(trace: PolicyDirectionTrace, side: string): string[] {
  return [
    `${trace.direction === "egress" ? "Egress" : "Ingress"} of the ${side}: ${trace.verdict.toUpperCase()}`,
    `  ${trace.reason}`,
    `  enforced: ${trace.enforced ? "yes" : "no"}; rules selecting the ${side}: ${list(trace["selecting-rules"])}`,
    ...(trace["deciding-rules"].length > 0 ? [`  deciding rules: ${list(trace["deciding-rules"])}`] : []),
  ];
}

export function formatTrace(trace: PolicyTraceResponse): string {
  const port = trace.protocol === "ICMP" || trace.protocol === "ICMPv6" ? `type ${trace.dport}/${trace.protocol}` : `${trace.dport}/${trace.protocol}`;
  return [
    "----------------------------------------------------------------",
    `Tracing From: [${trace.from.join(", ")}] => To: [${trace.to.join(", ")}] Ports: [${port}]`,
    "",
    ...directionLines(trace.egress, "source"),
    "",
    ...directionLines(trace.ingress, "destination"),
    "",
    `Final verdict: ${trace.verdict.toUpperCase()}`,
    "",
  ].join("\n");
}

/** upstream's `cilium identity list`: ID and LABELS, one label per line. */
export function formatIdentities(identities: readonly IdentityModel[]): string {
  const rows: string[][] = [["ID", "LABELS"]];
  for (const identity of identities) {
    const [first, ...more] = identity.labels.length > 0 ? identity.labels : ["(no labels)"];
    rows.push([String(identity.id), first!]);
    for (const label of more) rows.push(["", label]);
  }
  return tabwrite(rows.map((cells) => `${cells.join("\t")}\n`).join(""), { minWidth: 5, padding: 3 });
}

const RESERVED_NAMES: Record<number, string> = {
  0: "any",
  1: "reserved:host",
  2: "reserved:world",
  3: "reserved:unmanaged",
  4: "reserved:health",
  5: "reserved:init",
  6: "reserved:remote-node",
  7: "reserved:kube-apiserver",
  8: "reserved:ingress",
};

const PROTOCOL_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };

/** "ANY", "TCP" (every port), "80/TCP", "80-83/TCP". */
export function formatPortProtocol(rule: Pick<PolicyRule, "protocol" | "port" | "prefixLength">): string {
  if (rule.protocol === 0) return "ANY";
  const protocol = PROTOCOL_NAMES[rule.protocol] ?? String(rule.protocol);
  if (rule.prefixLength === 0) return `ANY/${protocol}`;
  const last = rule.port + 2 ** (16 - rule.prefixLength) - 1;
  return `${rule.port}${last === rule.port ? "" : `-${last}`}/${protocol}`;
}

/** `cilium bpf policy get`: the enforcement bits, then one row per entry. */
export function formatBpfPolicy(endpointId: number, policy: DatapathPolicy & { endpointFound?: boolean }): string {
  const enabled = (on: boolean) => (on ? "Enabled" : "Disabled");
  const head = [
    `Endpoint ${endpointId}${policy.endpointFound === false ? " (no endpoint map entry)" : ""}`,
    `Ingress policy enforcement: ${enabled(policy.ingressEnforced)}`,
    `Egress policy enforcement:  ${enabled(policy.egressEnforced)}`,
  ];
  const rows: string[][] = [["POLICY", "DIRECTION", "IDENTITY", "PORT/PROTO", "PREFIX"]];
  for (const rule of policy.entries) {
    const name = RESERVED_NAMES[rule.identity];
    rows.push([
      rule.deny ? "Deny" : "Allow",
      rule.direction === "ingress" ? "Ingress" : "Egress",
      name ? `${rule.identity} (${name})` : String(rule.identity),
      formatPortProtocol(rule),
      String(rule.protocol === 0 ? 0 : 8 + rule.prefixLength),
    ]);
  }
  const table = policy.entries.length === 0 ? "No policy entries\n" : tabwrite(rows.map((cells) => `${cells.join("\t")}\n`).join(""), { minWidth: 5, padding: 3 });
  return `${head.join("\n")}\n${table}`;
}

/** A Go duration ("30s", "500ms", "1m30s") or plain seconds, in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) * 1000 : parseDurationMs(text);
  if (ms === undefined) throw new Error(`${flag} ${JSON.stringify(text)}: expected a duration such as 30s, 500ms or 2m`);
  return ms;
}

/**
 * Values of a repeatable flag ("-s a -s b", "--src=a,b"), from the raw arguments: citty keeps
 * only the last. Comma-separated values are split, as upstream's string slices.
 */
export function repeatedFlag(rawArgs: readonly string[], names: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === "--") break;
    const name = names.find((n) => arg === n || arg.startsWith(`${n}=`));
    if (!name) continue;
    const value = arg === name ? rawArgs[++i] : arg.slice(name.length + 1);
    if (value === undefined) throw new Error(`${name} needs a value`);
    values.push(...value.split(",").filter((v) => v !== ""));
  }
  return values;
}
