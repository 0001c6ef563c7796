/**
 * Cluster-pool IPAM and node garbage collection, run by the leading operator. Every pass reads
 * the node registry and the allocations:
 * - a registered node without an allocation gets the CIDR it already uses (an agent started
 *   with --ipv4-range), or else the lowest free one of the pool;
 * - an allocation whose node has been gone (its heartbeat lease lapsed) for the node GC
 *   interval is released, and only then can its CIDR go to another node.
 * Each write is a transaction that requires both keys to be as read, so two operators that both
 * believe they lead cannot hand one CIDR to two nodes.
 */
import type { Logger } from "../logging/index.ts";
import type { EtcdClient } from "../kvstore/etcd/client.ts";
import { NODES_PREFIX } from "../kvstore/etcd/keys.ts";
import { podCidrKey, podCidrNodeKey, POD_CIDR_NODES_PREFIX } from "../kvstore/etcd/pod-cidrs.ts";
import { formatCidr } from "../net/ipv4.ts";
import type { ClusterPool } from "./cluster-pool.ts";

export interface PodCidrAllocatorOptions {
  client: EtcdClient;
  pool: ClusterPool;
  /** How long a node must be gone before its CIDR is released. */
  nodeGcIntervalMs: number;
  log: Pick<Logger, "info" | "warn">;
  now?: () => number;
}

export interface AllocationPass {
  allocated: { node: string; cidr: string }[];
  released: { node: string; cidr: string }[];
  /** Nodes left without a CIDR because the pool is exhausted. */
  starved: string[];
}

export class PodCidrAllocator {
  /** When each node holding an allocation was first seen missing from the registry. */
  private readonly goneSince = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: PodCidrAllocatorOptions) {
    this.now = opts.now ?? Date.now;
  }

  async pass(): Promise<AllocationPass> {
    const { client, pool, log } = this.opts;
    const [registry, allocations] = await Promise.all([client.range(NODES_PREFIX), client.range(POD_CIDR_NODES_PREFIX)]);
    const registered = new Map<string, string[]>();
    for (const entry of registry.entries) {
      const name = entry.key.slice(NODES_PREFIX.length);
      registered.set(name, podCidrsOf(entry.value));
    }
    const owner = new Map<string, string>(); // cidr -> node
    const held = new Map<string, string>(); // node -> cidr
    for (const entry of allocations.entries) {
      const node = entry.key.slice(POD_CIDR_NODES_PREFIX.length);
      held.set(node, entry.value);
      owner.set(entry.value, node);
    }
    const result: AllocationPass = { allocated: [], released: [], starved: [] };

    for (const [node, cidr] of held) {
      if (registered.has(node)) {
        this.goneSince.delete(node);
        continue;
      }
      const since = this.goneSince.get(node) ?? this.now();
      this.goneSince.set(node, since);
      if (this.now() - since < this.opts.nodeGcIntervalMs) continue;
      const done = await client.txn(
        [{ key: podCidrNodeKey(node), target: "value", result: "equal", value: cidr }],
        [{ delete: { key: podCidrNodeKey(node) } }, { delete: { key: podCidrKey(cidr) } }],
      );
      if (!done.succeeded) continue;
      this.goneSince.delete(node);
      held.delete(node);
      owner.delete(cidr);
      result.released.push({ node, cidr });
      log.info(`node ${node} is gone: released its pod CIDR ${cidr}`);
    }
    for (const node of this.goneSince.keys()) if (!held.has(node)) this.goneSince.delete(node);

    for (const [node, inUse] of [...registered].sort(([a], [b]) => a.localeCompare(b))) {
      if (held.has(node)) continue;
      // An agent that was given its range keeps it, if it is the pool's and nobody else's.
      const wanted = inUse.find((cidr) => pool.contains(cidr) && !owner.has(cidr));
      const cidr = wanted ?? pool.next(new Set(owner.keys()));
      if (cidr === undefined) {
        result.starved.push(node);
        log.warn(`the cluster pool ${formatCidr(pool.cidr)} has no pod CIDR left for node ${node}`);
        continue;
      }
      const done = await client.txn(
        [
          { key: podCidrNodeKey(node), target: "create", result: "equal", revision: 0 },
          { key: podCidrKey(cidr), target: "create", result: "equal", revision: 0 },
        ],
        [{ put: { key: podCidrNodeKey(node), value: cidr } }, { put: { key: podCidrKey(cidr), value: node } }],
      );
      if (!done.succeeded) continue; // someone else wrote meanwhile: the next pass sees it
      owner.set(cidr, node);
      held.set(node, cidr);
      result.allocated.push({ node, cidr });
      log.info(`allocated pod CIDR ${cidr} to node ${node}`);
    }
    return result;
  }
}

function podCidrsOf(value: string): string[] {
  try {
    const record = JSON.parse(value) as { podCidrs?: unknown };
    return Array.isArray(record.podCidrs) ? record.podCidrs.filter((c): c is string => typeof c === "string") : [];
  } catch {
    return [];
  }
}
