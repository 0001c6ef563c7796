/**
 * Label sources from the CNI plugin to the selectors, as upstream: a Kubernetes pod's labels are
 * k8s-sourced; a NetworkPolicy selector key is a k8s key; a CiliumNetworkPolicy key without a
 * source matches any source, one with a source only that source. Labels only Cilium derives
 * (namespace, io.cilium.k8s.*) cannot be given to an endpoint, so no selector can be fooled.
 * Every expected verdict is written out by hand.
 */
import { describe, expect, test } from "bun:test";
import { changeLabels, endpointLabels } from "../../src/agent/endpoint/labels.ts";
import { endpointLabels as cniEndpointLabels } from "../../src/cni/endpoint-request.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { parsePolicyText } from "../../src/policy/parse.ts";
import type { Rule } from "../../src/policy/rule.ts";
import type { EndpointSelector } from "../../src/policy/selector.ts";

/** The labels the agent gives a pod the CNI plugin registers (CNI_ARGS namespace, config labels). */
function cniPod(namespace: string | undefined, labels: Record<string, string>): LabelSet {
  const cniArgs = new Map(namespace ? [["K8S_POD_NAMESPACE", namespace], ["K8S_POD_NAME", "p"]] : []);
  const request = cniEndpointLabels(cniArgs, Object.entries(labels).map(([k, v]) => `${k}=${v}`));
  return LabelSet.parse(endpointLabels(request.labels ?? [], request["k8s-namespace"]));
}

const webShop = cniPod("shop", { app: "web", tier: "front" });
const dbShop = cniPod("shop", { app: "db" });
const plainShop = cniPod("shop", {});
const webBilling = cniPod("billing", { app: "web" });
const webNoK8s = cniPod(undefined, { app: "web" });

const only = (text: string): Rule => {
  const rules = parsePolicyText(text);
  expect(rules).toHaveLength(1);
  return rules[0]!;
};
const ingressPeer = (rule: Rule): EndpointSelector => {
  const peers = rule.ingress[0]!.peers!;
  if (peers.kind !== "endpoints") throw new Error(`expected endpoint peers, got ${peers.kind}`);
  return peers.selectors[0]!;
};
const selects = (selector: EndpointSelector) => ({
  webShop: selector.matches(webShop),
  dbShop: selector.matches(dbShop),
  plainShop: selector.matches(plainShop),
  webBilling: selector.matches(webBilling),
  webNoK8s: selector.matches(webNoK8s),
});

const networkPolicy = (podSelector: string, from = "[{ podSelector: { matchLabels: { app: web } } }]") => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np, namespace: shop }
spec:
  podSelector: ${podSelector}
  ingress: [{ from: ${from} }]
`;
const cnp = (kind: "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy", endpointSelector: string) => `
apiVersion: cilium.io/v2
kind: ${kind}
metadata: { name: cnp${kind === "CiliumNetworkPolicy" ? ", namespace: shop" : ""} }
spec:
  endpointSelector: ${endpointSelector}
  ingress: [{ fromEndpoints: [${endpointSelector}] }]
`;

describe("the labels a pod registered by the CNI plugin gets", () => {
  test("a Kubernetes pod: k8s labels and the namespace, as `cilium endpoint list` shows upstream", () => {
    expect(webShop.toStrings()).toEqual(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop", "k8s:tier=front"]);
    expect(plainShop.toStrings()).toEqual(["k8s:io.kubernetes.pod.namespace=shop"]);
  });

  test("outside Kubernetes (no namespace in CNI_ARGS): unspec labels, no namespace", () => {
    expect(webNoK8s.toStrings()).toEqual(["unspec:app=web"]);
  });
});

describe("NetworkPolicy selectors select CNI pods by their k8s labels", () => {
  test("podSelector matchLabels: the pods of its namespace with the label, nothing else", () => {
    const rule = only(networkPolicy("{ matchLabels: { app: web } }"));
    expect(selects(rule.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
  });

  test("peer podSelector: pods of the policy's namespace only", () => {
    const rule = only(networkPolicy("{}"));
    expect(selects(ingressPeer(rule))).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
  });

  test("podSelector {}: every pod of the namespace, not endpoints outside Kubernetes", () => {
    const rule = only(networkPolicy("{}"));
    expect(selects(rule.endpointSelector)).toEqual({ webShop: true, dbShop: true, plainShop: true, webBilling: false, webNoK8s: false });
  });

  test("matchExpressions: NotIn also selects pods without the key (Kubernetes semantics); Exists and DoesNotExist", () => {
    const notIn = only(networkPolicy("{ matchExpressions: [{ key: app, operator: NotIn, values: [db] }] }"));
    expect(selects(notIn.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: true, webBilling: false, webNoK8s: false });
    const exists = only(networkPolicy("{ matchExpressions: [{ key: tier, operator: Exists }] }"));
    expect(selects(exists.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
    const absent = only(networkPolicy("{ matchExpressions: [{ key: app, operator: DoesNotExist }] }"));
    expect(selects(absent.endpointSelector)).toEqual({ webShop: false, dbShop: false, plainShop: true, webBilling: false, webNoK8s: false });
  });

  test("namespaceSelector {}: pods of every namespace; a namespace label no endpoint can carry selects nothing (fails closed)", () => {
    const any = only(networkPolicy("{}", "[{ namespaceSelector: {}, podSelector: { matchLabels: { app: web } } }]"));
    expect(selects(ingressPeer(any))).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: true, webNoK8s: false });
    const labelled = only(networkPolicy("{}", "[{ namespaceSelector: { matchLabels: { team: blue } } }]"));
    expect(selects(ingressPeer(labelled))).toEqual({ webShop: false, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
  });

  test("an endpoint with the same key from another source is not a Kubernetes pod's label", () => {
    const rule = only(networkPolicy("{ matchLabels: { app: web } }"));
    const unspecInShop = LabelSet.parse(endpointLabels(["unspec:app=web"], "shop"));
    const containerInShop = LabelSet.parse(endpointLabels(["container:app=web"], "shop"));
    expect(rule.endpointSelector.matches(unspecInShop)).toBe(false);
    expect(rule.endpointSelector.matches(containerInShop)).toBe(false);
  });
});

describe("CiliumNetworkPolicy keys: no source means any source", () => {
  test("namespaced, key without source: k8s pods of its namespace", () => {
    const rule = only(cnp("CiliumNetworkPolicy", "{ matchLabels: { app: web } }"));
    expect(selects(rule.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
    expect(selects(ingressPeer(rule))).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: false, webNoK8s: false });
  });

  test("k8s:app selects the k8s label; unspec:app and container:app do not select a Kubernetes pod", () => {
    expect(selects(only(cnp("CiliumNetworkPolicy", '{ matchLabels: { "k8s:app": web } }')).endpointSelector).webShop).toBe(true);
    expect(selects(only(cnp("CiliumNetworkPolicy", '{ matchLabels: { "unspec:app": web } }')).endpointSelector).webShop).toBe(false);
    expect(selects(only(cnp("CiliumNetworkPolicy", '{ matchLabels: { "container:app": web } }')).endpointSelector).webShop).toBe(false);
  });

  test("clusterwide, key without source: every endpoint with the label, of any source and namespace", () => {
    const rule = only(cnp("CiliumClusterwideNetworkPolicy", "{ matchLabels: { app: web } }"));
    expect(selects(rule.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: true, webNoK8s: true });
    // Peers of a clusterwide policy are pods (the namespace label exists): not the endpoint outside Kubernetes.
    expect(selects(ingressPeer(rule))).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: true, webNoK8s: false });
  });

  test("clusterwide with k8s:app: Kubernetes pods only", () => {
    const rule = only(cnp("CiliumClusterwideNetworkPolicy", '{ matchLabels: { "k8s:app": web } }'));
    expect(selects(rule.endpointSelector)).toEqual({ webShop: true, dbShop: false, plainShop: false, webBilling: true, webNoK8s: false });
  });
});

describe("labels only Cilium sets cannot be given to an endpoint", () => {
  test("the namespace under another source (a source-less selector key would take it for the namespace)", () => {
    expect(() => endpointLabels(["io.kubernetes.pod.namespace=kube-system"])).toThrow(
      'labels[0] "io.kubernetes.pod.namespace=kube-system": the pod namespace is only ever the k8s:io.kubernetes.pod.namespace label (from k8s-namespace)',
    );
    expect(() => endpointLabels(["container:io.kubernetes.pod.namespace=kube-system"], "shop")).toThrow(/only ever the k8s:io.kubernetes.pod.namespace label/);
    // The k8s one must agree with the endpoint's namespace.
    expect(() => endpointLabels(["k8s:io.kubernetes.pod.namespace=kube-system"], "shop")).toThrow(/contradicts k8s-namespace "shop"/);
    expect(endpointLabels(["k8s:io.kubernetes.pod.namespace=shop"], "shop")).toEqual(["k8s:io.kubernetes.pod.namespace=shop"]);
  });

  test("io.cilium.k8s.* keys (namespace labels, service account, policy names), from any source", () => {
    for (const text of ["k8s:io.cilium.k8s.namespace.labels.team=blue", "io.cilium.k8s.policy.serviceaccount=admin", "container:io.cilium.k8s.policy.cluster=default"]) {
      expect(() => endpointLabels([text], "shop")).toThrow(`labels[0] ${JSON.stringify(text)}: keys under io.cilium.k8s. are derived by Cilium from Kubernetes objects, not given to an endpoint`);
    }
  });

  test("a pod whose CNI config labels try it is refused, so no policy sees it", () => {
    expect(() => cniPod("shop", { "io.cilium.k8s.namespace.labels.team": "blue" })).toThrow(/keys under io.cilium.k8s\./);
    expect(() => cniPod("shop", { "io.kubernetes.pod.namespace": "kube-system" })).toThrow(/k8s:io.kubernetes.pod.namespace is given twice with different values/);
    expect(() => cniPod(undefined, { "io.kubernetes.pod.namespace": "kube-system" })).toThrow(/only ever the k8s:io.kubernetes.pod.namespace label/);
  });

  test("nor added later through the labels API", () => {
    const current = endpointLabels(["k8s:app=web"], "shop");
    expect(() => changeLabels(current, { add: ["io.cilium.k8s.policy.serviceaccount=admin"] }, "shop")).toThrow(
      'add[0] "io.cilium.k8s.policy.serviceaccount=admin": keys under io.cilium.k8s. are derived by Cilium from Kubernetes objects, not given to an endpoint',
    );
    expect(() => changeLabels(current, { add: ["unspec:io.kubernetes.pod.namespace=kube-system"] }, "shop")).toThrow(/add\[0\].*only ever the k8s:io.kubernetes.pod.namespace label/);
    expect(changeLabels(current, { add: ["k8s:app=api"] }, "shop")).toEqual(["k8s:app=api", "k8s:io.kubernetes.pod.namespace=shop"]);
  });
});
