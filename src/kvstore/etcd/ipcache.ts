/**
 * The ipcache shared through etcd: every agent publishes its endpoints (address -> security
 * identity, and the node hosting them) under its lease, and follows everyone's, handing the
 * other nodes' entries to a RemoteIpcacheHandler (which writes them to the datapath's ipcache
 * with the host node as tunnel endpoint). An agent that dies takes its entries with its lease.
 */
import type { Logger } from "../../logging/index.ts";
import { IPCACHE_PREFIX } from "./keys.ts";
import { PrefixWatch } from "./prefix-watch.ts";
import type { EtcdSession } from "./session.ts";

/** One address's entry, in upstream's field names (identity.IPIdentityPair). */
export interface IpcacheEntryJson {
  IP: string;
  ID: number;
  /** The node IP of the node hosting the address. */
  HostIP?: string;
  /** The name of that node (whose lease the entry lives under). */
  Node: string;
  /** The pod behind the address, if it is one (so other nodes' flows can name it). */
  K8sNamespace?: string;
  K8sPodName?: string;
}

/** A pod's names, as flows show them. */
export interface PodName {
  namespace: string;
  podName: string;
}

export interface RemoteIpcacheHandler {
  upsert(ip: string, identity: number, hostIp: string | undefined, node: string, pod?: PodName): Promise<void> | void;
  delete(ip: string, identity: number): Promise<void> | void;
}

export const ipcacheKey = (ip: string) => `${IPCACHE_PREFIX}${ip}`;

/** This node's endpoints in etcd. Writes that fail during an outage are made on reconnection. */
export class IpcachePublisher {
  private readonly published = new Map<string, number>();
  /** Until the agent has restored its endpoints, "every current entry" is not known yet. */
  private complete = false;

  constructor(
    private readonly session: EtcdSession,
    private readonly node: string,
    private readonly hostIp: () => string | undefined,
    private readonly podOf: (ip: string) => PodName | undefined = () => undefined,
  ) {
    session.onReconnect(() => this.republish());
  }

  async upsert(ip: string, identity: number): Promise<void> {
    if (this.published.get(ip) === identity) return;
    this.published.set(ip, identity);
    await this.write(() => this.session.client.put(ipcacheKey(ip), this.entry(ip, identity), this.session.lease()));
  }

  async delete(ip: string): Promise<void> {
    if (!this.published.delete(ip)) return;
    await this.write(() => this.session.client.delete(ipcacheKey(ip)));
  }

  /**
   * Every current entry again; entries of this node that are no longer current go. The first
   * call marks the set complete (the agent restored its endpoints); reconnections before it
   * change nothing, so a restarting agent never withdraws its running pods.
   */
  async republish(options: { complete?: boolean } = {}): Promise<void> {
    if (options.complete) this.complete = true;
    if (!this.complete) return;
    const lease = this.session.lease();
    const { entries } = await this.session.client.range(IPCACHE_PREFIX);
    for (const entry of entries) {
      const ip = entry.key.slice(IPCACHE_PREFIX.length);
      if (this.published.has(ip)) continue;
      if (parseEntry(entry.value)?.Node === this.node) await this.session.client.delete(entry.key);
    }
    for (const [ip, identity] of this.published) await this.session.client.put(ipcacheKey(ip), this.entry(ip, identity), lease);
  }

  private entry(ip: string, identity: number): string {
    const hostIp = this.hostIp();
    const pod = this.podOf(ip);
    const json: IpcacheEntryJson = {
      IP: ip,
      ID: identity,
      ...(hostIp ? { HostIP: hostIp } : {}),
      Node: this.node,
      ...(pod ? { K8sNamespace: pod.namespace, K8sPodName: pod.podName } : {}),
    };
    return JSON.stringify(json);
  }

  private async write(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      // The datapath has the entry already; etcd gets it with the next republish.
      this.session.reportFailure(error);
    }
  }
}

/** Follows every node's entries; hands those of other nodes to the handler. */
export class RemoteIpcacheWatch {
  private readonly watch: PrefixWatch;

  constructor(
    private readonly session: EtcdSession,
    node: string,
    handler: RemoteIpcacheHandler,
    log: Logger,
  ) {
    this.watch = new PrefixWatch(
      session.client,
      IPCACHE_PREFIX,
      {
        upsert: async (ip, value) => {
          const entry = parseEntry(value);
          if (!entry || entry.IP !== ip) {
            log.warn(`ignoring ipcache entry ${ip}: ${value}`);
            return;
          }
          const pod = typeof entry.K8sPodName === "string" && typeof entry.K8sNamespace === "string" ? { namespace: entry.K8sNamespace, podName: entry.K8sPodName } : undefined;
          if (entry.Node !== node) await handler.upsert(ip, entry.ID, entry.HostIP, entry.Node, pod);
        },
        delete: async (ip, value) => {
          const entry = parseEntry(value);
          if (entry && entry.Node !== node) await handler.delete(ip, entry.ID);
        },
      },
      log,
    );
  }

  start(): Promise<void> {
    this.session.onReconnect(() => this.watch.resync());
    return this.watch.start();
  }

  drained(): Promise<void> {
    return this.watch.drained();
  }

  close(): void {
    this.watch.close();
  }
}

function parseEntry(value: string): IpcacheEntryJson | undefined {
  try {
    const entry = JSON.parse(value) as IpcacheEntryJson;
    if (typeof entry.IP !== "string" || !Number.isInteger(entry.ID) || typeof entry.Node !== "string") return undefined;
    if (entry.HostIP !== undefined && typeof entry.HostIP !== "string") return undefined;
    return entry;
  } catch {
    return undefined;
  }
}
