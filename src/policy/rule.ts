/**
 * The policy rule model: what validate.ts produces from CiliumNetworkPolicy, bare rule lists and
 * (through k8s-network-policy.ts) Kubernetes NetworkPolicy, and what the repository stores.
 * Values are already checked and parsed (selectors, CIDRs, port numbers), so a Rule cannot hold
 * an invalid value; namespace scoping (namespace.ts) is already applied to its selectors.
 *
 * Ingress and egress sections share one shape: `peers` is fromX for ingress and toX for egress.
 */
import { PolicyLabelKey, type LabelSet } from "../identity/labels.ts";
import type { Ipv4Cidr } from "../net/ipv4.ts";
import type { EndpointSelector } from "./selector.ts";

export type Direction = "ingress" | "egress";
export const DIRECTIONS: readonly Direction[] = ["ingress", "egress"];

/** Entities as upstream (pkg/policy/api/entity.go), minus world-ipv4/-ipv6 (IPv4 only here). */
export const ENTITIES = ["all", "world", "cluster", "host", "remote-node", "init", "health", "unmanaged", "kube-apiserver", "ingress", "none"] as const;
export type Entity = (typeof ENTITIES)[number];

export type L4Protocol = "TCP" | "UDP" | "SCTP" | "ANY";

export interface PortProtocol {
  /** 0 = every port of the protocol. */
  port: number;
  /** Last port of a range; absent for one port. */
  endPort?: number;
  protocol: L4Protocol;
}

export interface PortRule {
  ports: PortProtocol[];
}

export interface IcmpField {
  family: "IPv4" | "IPv6";
  /** ICMP type number (names are resolved by the parser). */
  type: number;
}

export interface IcmpRule {
  fields: IcmpField[];
}

export interface CidrRule {
  cidr: Ipv4Cidr;
  /** Prefixes inside `cidr` that are not selected. */
  except: Ipv4Cidr[];
}

/**
 * The L3 peers of one section: upstream allows one kind per section. An explicit empty list
 * (`fromEndpoints: []`) selects nothing, as upstream; a section without peers is L3-wildcard when
 * it has ports or ICMP types, and selects nothing otherwise (`ingress: [{}]`).
 */
export type Peers =
  | { kind: "endpoints"; selectors: EndpointSelector[] }
  | { kind: "cidr"; rules: CidrRule[] }
  | { kind: "entities"; entities: Entity[] };

export interface PeerRule {
  peers?: Peers;
  toPorts?: PortRule[];
  icmps?: IcmpRule[];
}

export interface Rule {
  endpointSelector: EndpointSelector;
  ingress: PeerRule[];
  ingressDeny: PeerRule[];
  egress: PeerRule[];
  egressDeny: PeerRule[];
  /**
   * Whether the rule puts its subjects in default-deny, per direction; resolved as upstream's
   * Rule.Sanitize: when not given, true iff the rule has allow or deny sections in that direction.
   */
  defaultDeny: { ingress: boolean; egress: boolean };
  /** Identify the rule for deletion, replacement and traces (CNP-derived rules get upstream's). */
  labels: LabelSet;
  description?: string;
}

export function sections(rule: Rule, direction: Direction): { allow: PeerRule[]; deny: PeerRule[] } {
  return direction === "ingress" ? { allow: rule.ingress, deny: rule.ingressDeny } : { allow: rule.egress, deny: rule.egressDeny };
}

/** A short name for messages: namespace/name of its policy, its labels, description or selector. */
export function ruleName(rule: Rule): string {
  const name = rule.labels.labels.find((l) => l.key === PolicyLabelKey.name);
  const namespace = rule.labels.labels.find((l) => l.key === PolicyLabelKey.namespace);
  if (name) return namespace ? `${namespace.value}/${name.value}` : name.value;
  if (rule.labels.size > 0) return rule.labels.toString();
  if (rule.description) return JSON.stringify(rule.description);
  return `(unlabelled rule for ${rule.endpointSelector})`;
}
