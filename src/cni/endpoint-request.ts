/** Who the pod is, for the endpoint the agent creates for an attachment: Kubernetes names and labels. */
import type { CniAttachRequest } from "../agent/api/types.ts";

/** Kubernetes passes the pod's identity in CNI_ARGS (the kubelet/CRI convention). */
const K8S_NAMESPACE_ARG = "K8S_POD_NAMESPACE";
const K8S_POD_NAME_ARG = "K8S_POD_NAME";
/** Upstream's label for a pod's namespace: part of every pod's security identity. */
const K8S_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace";

export type EndpointLabels = Pick<CniAttachRequest, "k8s-namespace" | "k8s-pod-name" | "labels">;

/**
 * Labels: the pod's namespace (source k8s) when Kubernetes names it, and the network config's
 * convention labels. For a Kubernetes pod (CNI_ARGS name its namespace) those are the pod's
 * labels and carry source k8s, as upstream's pod labels do, so that NetworkPolicy podSelectors
 * (k8s keys) and source-less CiliumNetworkPolicy keys (any source) select them; otherwise they
 * are unspec. The pod name is a field, not a label: as a label it would give every pod an
 * identity of its own; the agent looks up the pod's real labels by name.
 */
export function endpointLabels(cniArgs: Map<string, string>, configLabels: string[]): EndpointLabels {
  const fields: EndpointLabels = {};
  const labels: string[] = [];
  const namespace = cniArgs.get(K8S_NAMESPACE_ARG);
  if (namespace) {
    fields["k8s-namespace"] = namespace;
    labels.push(`${K8S_NAMESPACE_LABEL}=${namespace}`);
  }
  const podName = cniArgs.get(K8S_POD_NAME_ARG);
  if (podName) fields["k8s-pod-name"] = podName;
  const source = namespace ? "k8s" : "unspec";
  labels.push(...configLabels.map((label) => `${source}:${label}`));
  if (labels.length > 0) fields.labels = labels;
  return fields;
}
