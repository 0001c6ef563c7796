/**
 * A rule in the form resolution needs: per section, which peers (selectors, or "all") and which
 * protocol/port prefixes, allowed or denied. Computed once when the rule enters the repository.
 *
 * Upstream's semantics (pkg/policy/rule.go, mergeIngress/mergeEgress):
 * - A section with peers and no toPorts/icmps is L3-only: every protocol and port.
 * - A section with toPorts or icmps and no peers is L3-wildcard: every identity on those ports.
 * - A section with neither (`{}`) selects nothing; so do explicitly empty peer lists.
 * - Protocol ANY with a port is TCP, UDP and SCTP on that port; port 0 is every port.
 */
import type { Ipv4Cidr } from "../net/ipv4.ts";
import { peerSelectors, type AllPeers } from "./peers.ts";
import { ALL_PORTS, IpProtocol, portPrefixKey, portRangePrefixes, type PortPrefix } from "./ports.ts";
import { DIRECTIONS, sections, type Direction, type L4Protocol, type PeerRule, type Rule } from "./rule.ts";
import type { EndpointSelector } from "./selector.ts";

/** A port prefix with its portPrefixKey, computed once: resolution uses it per identity. */
export interface KeyedPortPrefix extends PortPrefix {
  key: string;
}

/** One section of a rule, ready to expand into map entries. */
export interface Contribution {
  rule: Rule;
  direction: Direction;
  deny: boolean;
  peers: AllPeers | readonly EndpointSelector[];
  ports: readonly KeyedPortPrefix[];
}

export interface CompiledRule {
  rule: Rule;
  contributions: readonly Contribution[];
  /** Distinct non-wildcard peer selectors, for the selector cache. */
  selectors: readonly EndpointSelector[];
  /** Every prefix named (CIDRs and excepts, not 0.0.0.0/0): each needs a CIDR identity. */
  cidrs: readonly Ipv4Cidr[];
}

const PROTOCOLS: Record<L4Protocol, number[]> = {
  TCP: [IpProtocol.tcp],
  UDP: [IpProtocol.udp],
  SCTP: [IpProtocol.sctp],
  ANY: [IpProtocol.tcp, IpProtocol.udp, IpProtocol.sctp],
};

function sectionPorts(section: PeerRule): KeyedPortPrefix[] {
  if (!section.toPorts && !section.icmps) return [{ ...ALL_PORTS, key: portPrefixKey(ALL_PORTS) }];
  const out = new Map<string, KeyedPortPrefix>();
  const add = (p: PortPrefix) => {
    const key = portPrefixKey(p);
    out.set(key, { ...p, key });
  };
  for (const rule of section.toPorts ?? []) {
    for (const pp of rule.ports) {
      for (const protocol of PROTOCOLS[pp.protocol]) {
        if (pp.port === 0) add({ protocol, port: 0, prefixLength: 0 });
        else for (const block of portRangePrefixes(pp.port, pp.endPort ?? pp.port)) add({ protocol, ...block });
      }
    }
  }
  for (const rule of section.icmps ?? []) {
    for (const field of rule.fields) add({ protocol: field.family === "IPv6" ? IpProtocol.icmpv6 : IpProtocol.icmp, port: field.type, prefixLength: 16 });
  }
  return [...out.values()];
}

function sectionPeers(section: PeerRule): AllPeers | EndpointSelector[] {
  if (section.peers) return peerSelectors(section.peers);
  return section.toPorts || section.icmps ? "all" : [];
}

export function compileRule(rule: Rule): CompiledRule {
  const contributions: Contribution[] = [];
  const selectors = new Map<string, EndpointSelector>();
  const cidrs = new Map<string, Ipv4Cidr>();
  for (const direction of DIRECTIONS) {
    const { allow, deny } = sections(rule, direction);
    for (const [list, isDeny] of [[allow, false], [deny, true]] as const) {
      for (const section of list) {
        if (section.peers?.kind === "cidr") {
          for (const c of section.peers.rules) for (const p of [c.cidr, ...c.except]) if (p.prefixLength > 0) cidrs.set(`${p.network}/${p.prefixLength}`, p);
        }
        const peers = sectionPeers(section);
        if (peers !== "all" && peers.length === 0) continue;
        if (peers !== "all") for (const s of peers) selectors.set(s.key, s);
        contributions.push({ rule, direction, deny: isDeny, peers, ports: sectionPorts(section) });
      }
    }
  }
  return { rule, contributions, selectors: [...selectors.values()], cidrs: [...cidrs.values()] };
}
