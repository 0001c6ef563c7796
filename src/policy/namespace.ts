/**
 * Namespace scoping of CiliumNetworkPolicy, as upstream's ParseToCiliumRule
 * (pkg/k8s/apis/cilium.io/utils/utils.go):
 *
 * - A namespaced policy's endpointSelector always gets "k8s:io.kubernetes.pod.namespace=<ns>"
 *   (replacing a namespace the user wrote: the policy only applies in its own namespace).
 * - Peer selectors (fromEndpoints/toEndpoints) that do not name the namespace label themselves
 *   (as "k8s:" or source-less key) get the policy's namespace; in a clusterwide policy they get
 *   "the namespace label exists" instead, so `{}` means every pod, not every identity.
 * - Peer selectors on reserved labels ("reserved:host") are left alone.
 * - A rule whose endpointSelector names "reserved:init" applies to endpoints that have no labels
 *   yet (hence no namespace): neither its selector nor its peers are scoped.
 */
import { LabelSource, POD_NAMESPACE_KEY } from "../identity/labels.ts";
import type { PeerRule, Rule } from "./rule.ts";
import type { EndpointSelector } from "./selector.ts";

export type PolicyScope = { kind: "namespaced"; namespace: string } | { kind: "clusterwide" };

function scopePeer(selector: EndpointSelector, scope: PolicyScope): EndpointSelector {
  if (selector.hasSource(LabelSource.reserved)) return selector;
  if (selector.hasKey(LabelSource.k8s, POD_NAMESPACE_KEY) || selector.hasKey(LabelSource.any, POD_NAMESPACE_KEY)) return selector;
  return scope.kind === "namespaced"
    ? selector.withMatch(LabelSource.k8s, POD_NAMESPACE_KEY, scope.namespace)
    : selector.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: "Exists", values: [] });
}

function scopeSection(section: PeerRule, scope: PolicyScope): PeerRule {
  if (section.peers?.kind !== "endpoints") return section;
  return { ...section, peers: { kind: "endpoints", selectors: section.peers.selectors.map((s) => scopePeer(s, scope)) } };
}

export function scopeRule(rule: Rule, scope: PolicyScope): Rule {
  if (rule.endpointSelector.hasKey(LabelSource.reserved, "init")) return rule;
  const scoped = (list: PeerRule[]) => list.map((s) => scopeSection(s, scope));
  return {
    ...rule,
    endpointSelector:
      scope.kind === "namespaced" ? rule.endpointSelector.withMatch(LabelSource.k8s, POD_NAMESPACE_KEY, scope.namespace) : rule.endpointSelector,
    ingress: scoped(rule.ingress),
    ingressDeny: scoped(rule.ingressDeny),
    egress: scoped(rule.egress),
    egressDeny: scoped(rule.egressDeny),
  };
}
