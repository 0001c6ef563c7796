/**
 * A rule of the repository back to its JSON form: what `GET /v1/policy` answers and what the
 * agent persists. The form is upstream's bare rule (as `cilium policy get` prints it), written so
 * that importing it again gives the very same rule:
 *
 * - selectors name every key with its source ("k8s:app", "any:app"), so namespace scoping that
 *   was applied at import (a CiliumNetworkPolicy's namespace) is kept as written requirements;
 * - default deny is always explicit (enableDefaultDeny), since its default depends on sections;
 * - an explicitly empty peer list stays an empty list (it selects nothing);
 * - CIDR peers are written as toCIDRSet/fromCIDRSet with their excepts.
 *
 * The policy store (store.ts) checks that round trip and refuses to persist a rule that fails it.
 */
import { formatCidr } from "../../net/ipv4.ts";
import type { Direction, PeerRule, PortRule, Rule } from "../../policy/rule.ts";
import type { EndpointSelector } from "../../policy/selector.ts";

export type RuleJson = Record<string, unknown>;

const PEER_FIELDS: Record<Direction, { endpoints: string; cidrSet: string; entities: string }> = {
  ingress: { endpoints: "fromEndpoints", cidrSet: "fromCIDRSet", entities: "fromEntities" },
  egress: { endpoints: "toEndpoints", cidrSet: "toCIDRSet", entities: "toEntities" },
};

export function selectorJson(selector: EndpointSelector): RuleJson {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: RuleJson[] = [];
  for (const r of selector.requirements) {
    const key = `${r.source}:${r.key}`;
    if (r.operator === "In" && r.values.length === 1 && !(key in matchLabels)) {
      matchLabels[key] = r.values[0]!;
      continue;
    }
    const expression: RuleJson = { key, operator: r.operator };
    if (r.operator === "In" || r.operator === "NotIn") expression.values = [...r.values];
    matchExpressions.push(expression);
  }
  const out: RuleJson = {};
  if (Object.keys(matchLabels).length > 0) out.matchLabels = matchLabels;
  if (matchExpressions.length > 0) out.matchExpressions = matchExpressions;
  return out;
}

function portRuleJson(rule: PortRule): RuleJson {
  return {
    ports: rule.ports.map((p) => {
      const port: RuleJson = { port: String(p.port), protocol: p.protocol };
      if (p.endPort !== undefined) port.endPort = p.endPort;
      return port;
    }),
  };
}

function sectionJson(section: PeerRule, direction: Direction): RuleJson {
  const out: RuleJson = {};
  const fields = PEER_FIELDS[direction];
  const peers = section.peers;
  if (peers?.kind === "endpoints") out[fields.endpoints] = peers.selectors.map(selectorJson);
  if (peers?.kind === "cidr") {
    out[fields.cidrSet] = peers.rules.map((c) => (c.except.length > 0 ? { cidr: formatCidr(c.cidr), except: c.except.map(formatCidr) } : { cidr: formatCidr(c.cidr) }));
  }
  if (peers?.kind === "entities") out[fields.entities] = [...peers.entities];
  if (section.toPorts) out.toPorts = section.toPorts.map(portRuleJson);
  if (section.icmps) out.icmps = section.icmps.map((r) => ({ fields: r.fields.map((f) => ({ family: f.family, type: f.type })) }));
  return out;
}

export function ruleToJson(rule: Rule): RuleJson {
  const out: RuleJson = { endpointSelector: selectorJson(rule.endpointSelector) };
  if (rule.ingress.length > 0) out.ingress = rule.ingress.map((s) => sectionJson(s, "ingress"));
  if (rule.ingressDeny.length > 0) out.ingressDeny = rule.ingressDeny.map((s) => sectionJson(s, "ingress"));
  if (rule.egress.length > 0) out.egress = rule.egress.map((s) => sectionJson(s, "egress"));
  if (rule.egressDeny.length > 0) out.egressDeny = rule.egressDeny.map((s) => sectionJson(s, "egress"));
  out.enableDefaultDeny = { ingress: rule.defaultDeny.ingress, egress: rule.defaultDeny.egress };
  out.labels = rule.labels.toStrings();
  if (rule.description !== undefined) out.description = rule.description;
  return out;
}

/** Canonical text of a rule's JSON, for comparing two rules. */
export function ruleJsonText(rule: Rule): string {
  return JSON.stringify(ruleToJson(rule));
}
