/**
 * The node registry: each agent registers its node (name, node IP, pod CIDRs, health) under its
 * lease and follows every other node's entry. A node whose agent stops heartbeating disappears
 * when its lease lapses; listeners hear onNodeDelete then. After an outage the node is
 * registered again and the others re-listed (the watch), so listeners see what changed meanwhile.
 */
import type { Logger } from "../../logging/index.ts";
import { NODES_PREFIX } from "./keys.ts";
import { PrefixWatch } from "./prefix-watch.ts";
import type { EtcdSession } from "./session.ts";

/** A node as the registry holds it. */
export interface ClusterNode {
  name: string;
  /** The node's IPv4 address on the network between nodes (the tunnel endpoint). */
  ipv4?: string;
  /** The node's pod CIDRs ("10.200.1.0/24"). */
  podCidrs: string[];
  /** The agent's own health when it last wrote its entry. */
  health: "Ok" | "Degraded";
}

/** What the datapath (overlay, routes) is told about other nodes. Errors are logged, not retried. */
export interface NodeListener {
  onNodeUpsert(node: { name: string; ipv4?: string; podCidrs: string[] }): void | Promise<void>;
  onNodeDelete(name: string): void | Promise<void>;
}

export const nodeKey = (name: string) => `${NODES_PREFIX}${name}`;

export class NodeRegistry {
  private readonly watch: PrefixWatch;
  private readonly listeners: NodeListener[] = [];
  private readonly others = new Map<string, ClusterNode>();
  /** This node's entry as last written. */
  private written: string | undefined;

  constructor(
    private readonly session: EtcdSession,
    /** This node as it should be registered now. */
    private readonly self: () => ClusterNode,
    private readonly log: Logger,
  ) {
    this.watch = new PrefixWatch(
      session.client,
      NODES_PREFIX,
      {
        upsert: (name, value) => this.upserted(name, value),
        delete: (name) => this.deleted(name),
      },
      log,
    );
  }

  /** Registers this node and lists the others; throws when etcd is unreachable (the session retries). */
  async start(): Promise<void> {
    this.session.onReconnect(async () => {
      await this.register();
      await this.watch.resync();
    });
    await this.register();
    await this.watch.start();
  }

  /** Writes this node's entry again if it changed (health, addresses); a failure waits for the reconnection. */
  async update(): Promise<void> {
    if (JSON.stringify(this.self()) === this.written) return;
    try {
      await this.register();
    } catch (error) {
      this.session.reportFailure(error);
    }
  }

  /** Hears of every other node known now, then of each change. */
  async addListener(listener: NodeListener): Promise<void> {
    this.listeners.push(listener);
    for (const node of this.others.values()) await this.notify(listener, "upsert", node);
  }

  /** The other nodes, by name. */
  nodes(): ClusterNode[] {
    return [...this.others.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  close(): void {
    this.watch.close();
  }

  private async register(): Promise<void> {
    const node = this.self();
    const text = JSON.stringify(node);
    await this.session.client.put(nodeKey(node.name), text, this.session.lease());
    this.written = text;
  }

  private async upserted(name: string, value: string): Promise<void> {
    if (name === this.self().name) return;
    let node: ClusterNode;
    try {
      node = parseNode(name, value);
    } catch (error) {
      this.log.warn(`ignoring node entry ${name}: ${(error as Error).message}`);
      return;
    }
    const previous = this.others.get(name);
    this.others.set(name, node);
    if (previous && JSON.stringify(previous) === JSON.stringify(node)) return;
    this.log.info(`node ${name} ${previous ? "updated" : "joined"}: ${node.ipv4 ?? "no IPv4"}, pods ${node.podCidrs.join(", ")}`);
    for (const listener of this.listeners) await this.notify(listener, "upsert", node);
  }

  private async deleted(name: string): Promise<void> {
    if (!this.others.delete(name)) return;
    this.log.info(`node ${name} left (deleted, or its lease lapsed)`);
    for (const listener of this.listeners) await this.notify(listener, "delete", { name, podCidrs: [], health: "Ok" });
  }

  private async notify(listener: NodeListener, change: "upsert" | "delete", node: ClusterNode): Promise<void> {
    try {
      if (change === "upsert") await listener.onNodeUpsert({ name: node.name, ...(node.ipv4 ? { ipv4: node.ipv4 } : {}), podCidrs: [...node.podCidrs] });
      else await listener.onNodeDelete(node.name);
    } catch (error) {
      this.log.warn(`a node listener failed on ${change} of ${node.name}: ${(error as Error).message}`);
    }
  }
}

function parseNode(name: string, value: string): ClusterNode {
  const record = JSON.parse(value) as Partial<ClusterNode>;
  if (record.name !== name) throw new Error(`its name ${JSON.stringify(record.name)} is not its key`);
  if (record.ipv4 !== undefined && typeof record.ipv4 !== "string") throw new Error("ipv4 must be an address");
  if (!Array.isArray(record.podCidrs) || record.podCidrs.some((c) => typeof c !== "string")) throw new Error("podCidrs must be a list of CIDRs");
  return { name, ...(record.ipv4 ? { ipv4: record.ipv4 } : {}), podCidrs: record.podCidrs, health: record.health === "Degraded" ? "Degraded" : "Ok" };
}
