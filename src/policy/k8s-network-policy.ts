/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1) translated into one rule, as upstream's
 * ParseNetworkPolicy (pkg/k8s/network_policy.go):
 *
 * - podSelector (k8s-source keys) plus the policy's namespace selects the subjects.
 * - Each peer of a rule becomes its own section: podSelector alone means pods of the policy's
 *   namespace; namespaceSelector matches the namespace labels that pods carry as
 *   "k8s:io.cilium.k8s.namespace.labels.<key>" ({} = every namespace), ANDed with podSelector;
 *   ipBlock becomes a CIDR rule with except. The rule's ports apply to every section.
 * - A rule without from/to allows every peer (the wildcard selector, which includes world).
 * - Ports: protocol defaults to TCP; no port means every port of the protocol; endPort makes a range.
 * - policyTypes: with no ingress rules, ingress gets one empty section (default deny, nothing
 *   allowed) when policyTypes names Ingress or does not name Egress; egress gets one when
 *   policyTypes names Egress. As upstream, ingress rules present are translated even when
 *   policyTypes omits Ingress (which errs on the side of enforcing).
 */
import { LabelSet, LabelSource, NAMESPACE_LABELS_PREFIX, PolicyLabelKey, POD_NAMESPACE_KEY, type Label } from "../identity/labels.ts";
import { asObject, at, checkFields, describeType, item, optionalList, type Fields, type Issues } from "./fields.ts";
import type { Direction, PeerRule, PortRule, Rule } from "./rule.ts";
import { EndpointSelector } from "./selector.ts";
import { k8sKey, readCidr, readEndPort, readExcept, readPort, readProtocol, readSelector } from "./values.ts";

export interface PolicyMetadata {
  name: string;
  namespace: string;
  uid?: string;
}

const POLICY_TYPES = ["Ingress", "Egress"];
const PEER_FIELD: Record<Direction, string> = { ingress: "from", egress: "to" };

function readPeer(raw: unknown, path: string, issues: Issues, namespace: string): PeerRule | undefined {
  const obj = asObject(raw, path, issues);
  if (!obj) return undefined;
  checkFields(obj, path, issues, ["podSelector", "namespaceSelector", "ipBlock"]);
  const has = (f: string) => obj[f] !== undefined && obj[f] !== null;
  if (has("ipBlock")) {
    if (has("podSelector") || has("namespaceSelector")) {
      issues.add(path, "ipBlock cannot be combined with podSelector or namespaceSelector");
      return undefined;
    }
    const p = at(path, "ipBlock");
    const block = asObject(obj.ipBlock, p, issues);
    if (!block) return undefined;
    checkFields(block, p, issues, ["cidr", "except"]);
    const cidr = readCidr(block.cidr, at(p, "cidr"), issues);
    const except = readExcept(optionalList(block, "except", p, issues) ?? [], cidr, at(p, "except"), issues);
    return cidr ? { peers: { kind: "cidr", rules: [{ cidr, except }] } } : undefined;
  }
  const pods = has("podSelector") ? readSelector(obj.podSelector, at(path, "podSelector"), issues, k8sKey()) : undefined;
  if (has("namespaceSelector")) {
    const namespaces = readSelector(obj.namespaceSelector, at(path, "namespaceSelector"), issues, k8sKey(NAMESPACE_LABELS_PREFIX));
    if (!namespaces || (has("podSelector") && !pods)) return undefined;
    const scope = namespaces.isWildcard
      ? [{ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: "Exists" as const, values: [] }]
      : namespaces.requirements;
    return { peers: { kind: "endpoints", selectors: [EndpointSelector.of([...scope, ...(pods?.requirements ?? [])])] } };
  }
  if (has("podSelector")) {
    return pods ? { peers: { kind: "endpoints", selectors: [pods.withMatch(LabelSource.k8s, POD_NAMESPACE_KEY, namespace)] } } : undefined;
  }
  issues.add(path, "must have podSelector, namespaceSelector or ipBlock");
  return undefined;
}

function readPorts(list: unknown[], path: string, issues: Issues): PortRule[] {
  return list.flatMap((raw, i) => {
    const p = item(path, i);
    const obj = asObject(raw, p, issues);
    if (!obj) return [];
    checkFields(obj, p, issues, ["protocol", "port", "endPort"]);
    const protocol = readProtocol(obj.protocol, at(p, "protocol"), issues, ["TCP", "UDP", "SCTP"], "TCP");
    const port = obj.port === undefined || obj.port === null ? 0 : readPort(obj.port, at(p, "port"), issues);
    let endPort: number | undefined;
    if (obj.endPort !== undefined && obj.endPort !== null) {
      if (obj.port === undefined || obj.port === null) issues.add(at(p, "endPort"), "needs port: the first port of the range");
      else endPort = readEndPort(obj.endPort, port, at(p, "endPort"), issues);
    }
    if (protocol === undefined || port === undefined) return [];
    return [{ ports: [endPort === undefined || endPort === port ? { port, protocol } : { port, endPort, protocol }] }];
  });
}

function readRules(spec: Fields, direction: Direction, path: string, issues: Issues, namespace: string): PeerRule[] {
  const field = direction;
  return (optionalList(spec, field, path, issues) ?? []).flatMap((raw, i) => {
    const p = item(at(path, field), i);
    const obj = asObject(raw, p, issues);
    if (!obj) return [];
    const other = PEER_FIELD[direction === "ingress" ? "egress" : "ingress"];
    checkFields(obj, p, issues, [PEER_FIELD[direction], "ports"], { [other]: `unknown field: an ${direction} rule has ${PEER_FIELD[direction]}, not ${other}` });
    const peerList = optionalList(obj, PEER_FIELD[direction], p, issues) ?? [];
    const ports = readPorts(optionalList(obj, "ports", p, issues) ?? [], at(p, "ports"), issues);
    const sections: PeerRule[] =
      peerList.length === 0
        ? [{ peers: { kind: "endpoints", selectors: [EndpointSelector.wildcard] } }]
        : peerList.map((peer, j) => readPeer(peer, item(at(p, PEER_FIELD[direction]), j), issues, namespace)).filter((s) => s !== undefined);
    return ports.length > 0 ? sections.map((s) => ({ ...s, toPorts: ports })) : sections;
  });
}

function policyLabels(meta: PolicyMetadata): LabelSet {
  const k8s = (key: string, value: string): Label => ({ source: LabelSource.k8s, key, value });
  const labels = [k8s(PolicyLabelKey.derivedFrom, "NetworkPolicy"), k8s(PolicyLabelKey.name, meta.name), k8s(PolicyLabelKey.namespace, meta.namespace)];
  if (meta.uid) labels.push(k8s(PolicyLabelKey.uid, meta.uid));
  return LabelSet.of(labels);
}

/** The rule for a NetworkPolicy's spec; undefined when it reported problems. */
export function networkPolicyRule(value: unknown, path: string, issues: Issues, meta: PolicyMetadata): Rule | undefined {
  const spec = asObject(value, path, issues);
  if (!spec) return undefined;
  const before = issues.list.length;
  checkFields(spec, path, issues, ["podSelector", "ingress", "egress", "policyTypes"]);
  let subject: EndpointSelector | undefined;
  if (spec.podSelector === undefined || spec.podSelector === null) issues.add(at(path, "podSelector"), "required: the pods this policy applies to ({} selects all)");
  else subject = readSelector(spec.podSelector, at(path, "podSelector"), issues, k8sKey());
  const types = (optionalList(spec, "policyTypes", path, issues) ?? []).filter((t, i) => {
    if (POLICY_TYPES.includes(t as string)) return true;
    issues.add(item(at(path, "policyTypes"), i), `must be Ingress or Egress, not ${describeType(t)}`);
    return false;
  });
  let ingress = readRules(spec, "ingress", path, issues, meta.namespace);
  let egress = readRules(spec, "egress", path, issues, meta.namespace);
  if (issues.list.length !== before || !subject) return undefined;

  if (ingress.length === 0 && (types.includes("Ingress") || !types.includes("Egress"))) ingress = [{}];
  if (egress.length === 0 && types.includes("Egress")) egress = [{}];
  return {
    endpointSelector: subject.withMatch(LabelSource.k8s, POD_NAMESPACE_KEY, meta.namespace),
    ingress,
    ingressDeny: [],
    egress,
    egressDeny: [],
    defaultDeny: { ingress: ingress.length > 0, egress: egress.length > 0 },
    labels: policyLabels(meta),
  };
}
