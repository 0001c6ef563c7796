/**
 * L3 peers as selectors over identities:
 *
 * - fromEndpoints/toEndpoints: the selectors themselves; `{}` selects every identity.
 * - fromCIDR/fromCIDRSet: "cidr:<prefix>" minus DoesNotExist "cidr:<except>" for each except
 *   (see identity/cidr.ts for the labels). 0.0.0.0/0 is the world: "reserved:world", which
 *   selects the world identity and every CIDR identity, minus the excepts. As upstream, CIDR
 *   peers never select cluster identities (pods, host, nodes) whatever their addresses.
 * - Entities, as upstream's EntitySelectorMapping: "all" is every identity; "world" the world
 *   and CIDR identities; "cluster" everything but those (host, remote-node, kube-apiserver,
 *   health, init, unmanaged, ingress and every allocated identity; upstream matches the
 *   cluster-name label pods carry, which is the same set in one cluster); "none" nothing; the
 *   others their reserved label.
 */
import { cidrLabel } from "../identity/cidr.ts";
import { LabelSource } from "../identity/labels.ts";
import type { CidrRule, Entity, Peers } from "./rule.ts";
import { EndpointSelector, reservedSelector } from "./selector.ts";

/** Every identity: the map's identity 0. */
export type AllPeers = "all";

const WORLD = "world";

const ENTITY_SELECTORS: Record<Exclude<Entity, "all">, EndpointSelector[]> = {
  world: [reservedSelector(WORLD)],
  cluster: [EndpointSelector.of([{ source: LabelSource.reserved, key: WORLD, operator: "DoesNotExist", values: [] }])],
  host: [reservedSelector("host")],
  "remote-node": [reservedSelector("remote-node")],
  init: [reservedSelector("init")],
  health: [reservedSelector("health")],
  unmanaged: [reservedSelector("unmanaged")],
  "kube-apiserver": [reservedSelector("kube-apiserver")],
  ingress: [reservedSelector("ingress")],
  none: [],
};

function cidrSelector(rule: CidrRule): EndpointSelector {
  const base = rule.cidr.prefixLength === 0 ? reservedSelector(WORLD) : EndpointSelector.fromLabels([cidrLabel(rule.cidr)]);
  return EndpointSelector.of([
    ...base.requirements,
    ...rule.except.map((e) => ({ source: LabelSource.cidr, key: cidrLabel(e).key, operator: "DoesNotExist" as const, values: [] })),
  ]);
}

/** The union of identities the peers select: "all", or selectors (empty: none). */
export function peerSelectors(peers: Peers): AllPeers | EndpointSelector[] {
  let selectors: EndpointSelector[];
  switch (peers.kind) {
    case "endpoints":
      selectors = peers.selectors;
      break;
    case "cidr":
      selectors = peers.rules.map(cidrSelector);
      break;
    case "entities":
      if (peers.entities.includes("all")) return "all";
      selectors = peers.entities.flatMap((e) => ENTITY_SELECTORS[e as Exclude<Entity, "all">]);
      break;
  }
  if (selectors.some((s) => s.isWildcard)) return "all";
  const distinct = new Map(selectors.map((s) => [s.key, s]));
  return [...distinct.values()];
}
