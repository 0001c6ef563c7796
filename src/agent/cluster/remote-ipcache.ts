/**
 * Other nodes' endpoints into this node's datapath (kvstore mode): each remote address's
 * identity enters the policy manager (with its labels from etcd, so rules select it) before the
 * address maps to it in the ipcache, with its node as tunnel endpoint; a departing address
 * leaves the ipcache before its identity leaves the policies.
 */
import type { LabelSet } from "../../identity/labels.ts";
import type { PodName, RemoteIpcacheHandler } from "../../kvstore/etcd/ipcache.ts";
import type { Logger } from "../../logging/index.ts";
import type { EndpointDatapath } from "../endpoint/datapath.ts";
import type { PolicyManager } from "../policy/manager.ts";

export interface RemoteIpcacheOptions {
  datapath: EndpointDatapath;
  policy: Pick<PolicyManager, "addRemoteIdentity" | "releaseRemoteIdentity">;
  /** The labels of a cluster-wide identity, from etcd. */
  labelsOf(id: number): Promise<LabelSet | undefined>;
  log: Logger;
}

/** A remote address as this node knows it: its identity and, for a pod, its names. */
export interface RemoteAddress {
  identity: number;
  pod?: PodName;
}

export function remoteIpcacheHandler({ datapath, policy, labelsOf, log }: RemoteIpcacheOptions): RemoteIpcacheHandler & {
  entries(): Map<string, number>;
  address(ip: string): RemoteAddress | undefined;
} {
  /** Remote address -> the identity this node mapped it to, whether the policy manager counts it, and the pod's names. */
  const mapped = new Map<string, { identity: number; counted: boolean; pod?: PodName }>();
  const release = async (previous: { identity: number; counted: boolean } | undefined) => {
    if (previous?.counted) await policy.releaseRemoteIdentity(previous.identity);
  };
  return {
    entries: () => new Map([...mapped].map(([ip, m]) => [ip, m.identity])),
    address: (ip) => mapped.get(ip),
    async upsert(ip, identity, hostIp, node, pod) {
      const previous = mapped.get(ip);
      let counted = previous?.identity === identity && previous.counted;
      if (previous?.identity !== identity) {
        const labels = await labelsOf(identity).catch(() => undefined);
        if (labels) {
          await policy.addRemoteIdentity(identity, labels);
          counted = true;
        } else if (identity >= 256) {
          log.warn(`${ip} on node ${node}: identity ${identity} has no labels in etcd; policy cannot select it by labels`);
        }
      }
      await datapath.upsertIpcache(`${ip}/32`, identity, hostIp ? { tunnelEndpoint: hostIp } : {});
      mapped.set(ip, { identity, counted, ...(pod ? { pod } : {}) });
      if (previous && previous.identity !== identity) await release(previous);
    },
    async delete(ip) {
      const previous = mapped.get(ip);
      if (previous === undefined) return;
      await datapath.deleteIpcache(`${ip}/32`);
      mapped.delete(ip);
      await release(previous);
    },
  };
}
