/**
 * Pod CIDRs the operator hands to nodes (cluster-pool IPAM), kept in etcd without a lease: an
 * allocation outlives its node's agent restarts and is released only by the operator, once the
 * node has been gone for its node GC interval.
 *
 *   cilium/state/ipam/v1/<cluster>/nodes/<node>     -> "10.200.1.0/24"
 *   cilium/state/ipam/v1/<cluster>/cidrs/<cidr>     -> <node>   ("/" written as "_")
 *
 * Both keys are written and deleted together in one transaction, so a CIDR has one owner.
 */
import type { Logger } from "../../logging/index.ts";
import type { EtcdClient } from "./client.ts";
import { CLUSTER_NAME } from "./keys.ts";

export const POD_CIDR_NODES_PREFIX = `cilium/state/ipam/v1/${CLUSTER_NAME}/nodes/`;
export const POD_CIDRS_PREFIX = `cilium/state/ipam/v1/${CLUSTER_NAME}/cidrs/`;

export const podCidrNodeKey = (node: string) => `${POD_CIDR_NODES_PREFIX}${node}`;
export const podCidrKey = (cidr: string) => `${POD_CIDRS_PREFIX}${cidr.replace("/", "_")}`;

/**
 * The pod CIDR the operator allocated to `node`, waiting for it (polling) until `signal` aborts.
 * An unreachable etcd is waited out too: the agent cannot pick addresses without its CIDR.
 */
export async function waitForPodCidr(client: EtcdClient, node: string, log: Pick<Logger, "info" | "warn">, signal?: AbortSignal, pollMs = 500): Promise<string> {
  let told = false;
  while (!signal?.aborted) {
    try {
      const entry = await client.get(podCidrNodeKey(node));
      if (entry) return entry.value;
      if (!told) log.info(`waiting for the operator to allocate a pod CIDR to node ${node} (no --ipv4-range given)`);
    } catch (error) {
      if (!told) log.warn(`waiting for etcd to learn this node's pod CIDR: ${(error as Error).message}`);
    }
    told = true;
    await Bun.sleep(pollMs);
  }
  throw new Error(`stopped while waiting for node ${node}'s pod CIDR`);
}
