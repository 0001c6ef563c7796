/**
 * Who is behind an address, from the agent's caches, for every flow: local endpoints by address
 * (id, identity, labels, and pod name and namespace from the CNI arguments K8S_POD_NAME and
 * K8S_POD_NAMESPACE), other nodes' pods by the names their node published in etcd, and the labels of any identity the datapath reports (allocated, CIDR or
 * reserved: world, host, remote-node...). Answers are cached and shared by the flows that carry
 * them; the caches are dropped when an endpoint or the policy changes.
 */
import type { Endpoint } from "../api/types.ts";
import type { EndpointChangeListener } from "../endpoint/manager.ts";
import type { EndpointInfo, EndpointResolver } from "../../hubble/parser/index.ts";
import { reservedIdentityLabels } from "../../identity/index.ts";

export interface AgentResolverSources {
  endpoints: { list(): Endpoint[]; onChange(listener: EndpointChangeListener): () => void };
  policy?: { readonly revision: number; identity(id: number): { labels: string[] } | undefined };
  /** Other nodes' pods (etcd mode): the answer object changes whenever the address's entry does. */
  remoteAddress?: (ip: string) => { identity: number; pod?: { namespace: string; podName: string } } | undefined;
}

function endpointInfo(endpoint: Endpoint): EndpointInfo {
  return {
    id: endpoint.id,
    identity: endpoint.identity ?? 0,
    namespace: endpoint["k8s-namespace"] ?? "",
    podName: endpoint["k8s-pod-name"] ?? "",
    labels: Object.freeze([...endpoint.labels]),
  };
}

export class AgentEndpointResolver implements EndpointResolver {
  private byIp: Map<string, EndpointInfo> | undefined;
  private readonly identityLabelsCache = new Map<number, readonly string[] | null>();
  /** Other nodes' pods, by the entry they were built from. */
  private readonly remoteInfo = new WeakMap<object, EndpointInfo>();
  private policyRevision = -1;
  private readonly unsubscribe: () => void;

  /** `onRemoved` hears of each deleted endpoint (RecentEndpoints keeps its name for late flows). */
  constructor(
    private readonly sources: AgentResolverSources,
    onRemoved: (ip: string, info: EndpointInfo) => void = () => undefined,
  ) {
    this.unsubscribe = sources.endpoints.onChange((endpoint, removed) => {
      const known = this.byIp?.get(endpoint.addressing.ipv4);
      this.byIp = undefined;
      this.identityLabelsCache.clear();
      if (removed && known?.id === endpoint.id) onRemoved(endpoint.addressing.ipv4, known);
    });
  }

  endpointByIp(ip: string): EndpointInfo | undefined {
    const local = (this.byIp ??= this.index()).get(ip);
    if (local !== undefined) return local;
    const remote = this.sources.remoteAddress?.(ip);
    if (remote?.pod === undefined) return undefined;
    let info = this.remoteInfo.get(remote);
    if (info === undefined) {
      info = { id: 0, identity: remote.identity, namespace: remote.pod.namespace, podName: remote.pod.podName, labels: this.identityLabels(remote.identity) ?? [] };
      this.remoteInfo.set(remote, info);
    }
    return info;
  }

  identityLabels(identity: number): readonly string[] | undefined {
    const revision = this.sources.policy?.revision ?? 0;
    if (revision !== this.policyRevision) {
      // CIDR identities come and go with the rules.
      this.identityLabelsCache.clear();
      this.policyRevision = revision;
    }
    let labels = this.identityLabelsCache.get(identity);
    if (labels === undefined) {
      const found = this.sources.policy?.identity(identity)?.labels ?? reservedIdentityLabels(identity)?.toStrings();
      labels = found === undefined ? null : Object.freeze(found);
      this.identityLabelsCache.set(identity, labels);
    }
    return labels ?? undefined;
  }

  close(): void {
    this.unsubscribe();
  }

  private index(): Map<string, EndpointInfo> {
    const byIp = new Map<string, EndpointInfo>();
    for (const endpoint of this.sources.endpoints.list()) byIp.set(endpoint.addressing.ipv4, endpointInfo(endpoint));
    return byIp;
  }
}
