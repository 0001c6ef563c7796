/** The endpoint the plugin registers with the agent for an attachment (PUT /v1/endpoint/{id}). */
import type { EndpointChangeRequest } from "../agent/api/types.ts";
import type { Attachment } from "./attachment.ts";

export interface AttachedInterfaces {
  host: { name: string; index: number; mac: string };
  pod: { mac: string };
}

/** Kubernetes passes the pod's identity in CNI_ARGS (the kubelet/CRI convention). */
const K8S_NAMESPACE_ARG = "K8S_POD_NAMESPACE";
const K8S_POD_NAME_ARG = "K8S_POD_NAME";
/** Upstream's label for a pod's namespace: part of every pod's security identity. */
const K8S_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace";

/**
 * Labels: the pod's namespace (source k8s) when Kubernetes names it, and the network config's
 * convention labels. For a Kubernetes pod (CNI_ARGS name its namespace) those are the pod's
 * labels and carry source k8s, as upstream's pod labels do, so that NetworkPolicy podSelectors
 * (k8s keys) and source-less CiliumNetworkPolicy keys (any source) select them; otherwise they
 * are unspec. The pod name is a field, not a label: as a label it would give every pod an
 * identity of its own; the agent looks up the pod's real labels by name.
 */
export function endpointRequest(
  attachment: Attachment,
  options: { netnsPath: string; ip: string; interfaces: AttachedInterfaces; cniArgs: Map<string, string>; labels: string[] },
): EndpointChangeRequest {
  const request: EndpointChangeRequest = {
    "container-id": attachment.containerId,
    "container-interface-name": attachment.ifname,
    "interface-name": options.interfaces.host.name,
    "interface-index": options.interfaces.host.index,
    mac: options.interfaces.pod.mac,
    "host-mac": options.interfaces.host.mac,
    addressing: { ipv4: options.ip },
    "netns-path": options.netnsPath,
  };
  const labels: string[] = [];
  const namespace = options.cniArgs.get(K8S_NAMESPACE_ARG);
  if (namespace) {
    request["k8s-namespace"] = namespace;
    labels.push(`${K8S_NAMESPACE_LABEL}=${namespace}`);
  }
  const podName = options.cniArgs.get(K8S_POD_NAME_ARG);
  if (podName) request["k8s-pod-name"] = podName;
  const source = namespace ? "k8s" : "unspec";
  labels.push(...options.labels.map((label) => `${source}:${label}`));
  if (labels.length > 0) request.labels = labels;
  return request;
}
