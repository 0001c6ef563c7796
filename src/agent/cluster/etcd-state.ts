/**
 * The agent's cluster state in etcd (--kvstore etcd), wired to its parts:
 * - identities: the cluster-wide IdentityBackend the policy manager allocates through;
 * - the policy: every change written to etcd first (ClusterPolicySink), every revision in etcd
 *   applied here;
 * - this node in the node registry, other nodes to NodeListeners (the overlay);
 * - this node's endpoints published (publishingDatapath), other nodes' in the ipcache.
 *
 * etcd unreachable: nothing stops; the datapath keeps what it has. The agent is Degraded
 * ("kvstore" problem), allocations of new identities and policy changes fail with a clear error,
 * and on reconnection the session re-publishes everything and re-lists every watch.
 *
 * This module is imported only in etcd mode (it loads etcd3).
 */
import { EtcdClient } from "../../kvstore/etcd/client.ts";
import { EtcdIdentityBackend } from "../../kvstore/etcd/identities.ts";
import { IpcachePublisher, RemoteIpcacheWatch, type PodName } from "../../kvstore/etcd/ipcache.ts";
import { NodeRegistry, type ClusterNode, type NodeListener } from "../../kvstore/etcd/nodes.ts";
import { ClusterPolicyStore } from "../../kvstore/etcd/policy.ts";
import { waitForPodCidr } from "../../kvstore/etcd/pod-cidrs.ts";
import { EtcdSession } from "../../kvstore/etcd/session.ts";
import type { Logger } from "../../logging/index.ts";
import type { SubsystemStatus } from "../api/types.ts";
import type { KvstoreConfig } from "../config.ts";
import type { EndpointDatapath, IpcacheEntry } from "../endpoint/datapath.ts";
import { cidrContains, parseCidr, parseIpv4 } from "../../net/ipv4.ts";
import { errorMessage } from "../errors.ts";
import type { HealthProblems } from "../health.ts";
import type { ClusterPolicySink, PolicyManager } from "../policy/manager.ts";
import { discoverNodeIp } from "./node-ip.ts";
import { publishingDatapath } from "./publishing-datapath.ts";
import { remoteIpcacheHandler, type RemoteAddress } from "./remote-ipcache.ts";

export const KVSTORE_HEALTH_SUBJECT = "kvstore";

/** How long the agent waits for etcd at start before it goes on Degraded. */
const CONNECT_WAIT_MS = 5_000;
/** How often the node's registry entry is checked against the agent's health. */
const NODE_HEALTH_INTERVAL_MS = 2_000;

export interface EtcdStateOptions {
  kvstore: KvstoreConfig;
  nodeName: string;
  /** This node's pod CIDR; "" when the operator allocates it (awaitPodCidr). */
  podCidr: string;
  /** --devices: the first one carries the node IP. */
  devices: readonly string[];
  health: HealthProblems;
  logger: (subsys: string) => Logger;
}

export interface SyncOptions {
  /** The real datapath (remote entries are not published again). */
  datapath: EndpointDatapath;
  policy: PolicyManager;
  /** The pod behind a local address, published with it so other nodes' flows can name it. */
  podOf?: (ip: string) => PodName | undefined;
}

export class EtcdClusterState {
  readonly identities: EtcdIdentityBackend;
  readonly nodes: NodeRegistry;
  private readonly publisher: IpcachePublisher;
  private readonly policyStore: ClusterPolicyStore;
  private remote: RemoteIpcacheWatch | undefined;
  private remoteEntries: (() => Map<string, number>) | undefined;
  private remoteAddress: ((ip: string) => RemoteAddress | undefined) | undefined;
  private podOf: ((ip: string) => PodName | undefined) | undefined;
  private policy: PolicyManager | undefined;
  private nodeIp: string | undefined;
  private podCidr: string;
  private healthTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    readonly session: EtcdSession,
    private readonly options: EtcdStateOptions,
  ) {
    this.podCidr = options.podCidr;
    const log = options.logger("kvstore");
    session.onStateChange((state, message) => {
      if (state === "ok") options.health.clear(KVSTORE_HEALTH_SUBJECT);
      else options.health.set(KVSTORE_HEALTH_SUBJECT, `etcd (${session.client.endpoints.join(", ")}) is unreachable: ${message}; the datapath keeps its state, new identities and policy changes wait for it`);
    });
    this.identities = new EtcdIdentityBackend({
      session,
      node: options.nodeName,
      log: options.logger("identity-etcd"),
      onConflict: (_id, _labels, problem) => options.health.set(`identity conflict ${_id}`, problem),
    });
    this.nodes = new NodeRegistry(session, () => this.self(), options.logger("nodes"));
    this.publisher = new IpcachePublisher(session, options.nodeName, () => this.nodeIp, (ip) => this.podOf?.(ip));
    this.policyStore = new ClusterPolicyStore(session, (policy) => this.policy?.applyClusterPolicy(policy) ?? Promise.resolve(), log);
  }

  /** Connects (waiting a while for etcd) and follows the identities. Unreachable etcd: Degraded, not fatal. */
  static async connect(options: EtcdStateOptions): Promise<EtcdClusterState> {
    const log = options.logger("kvstore");
    const client = await EtcdClient.connect(options.kvstore.etcd);
    const session = new EtcdSession(client, options.kvstore.leaseTtlMs, log);
    const state = new EtcdClusterState(session, options);
    options.health.set(KVSTORE_HEALTH_SUBJECT, `connecting to etcd (${client.endpoints.join(", ")})`);
    await session.start(CONNECT_WAIT_MS);
    await state.identities.start().catch((error) => log.warn(`identities: ${errorMessage(error)} (following them once etcd answers)`));
    return state;
  }

  /** Where the policy manager writes changes of the policy. */
  get policySink(): ClusterPolicySink {
    return { publish: (policy) => this.policyStore.publish(policy) };
  }

  /** The datapath for the policy manager: its endpoint ipcache writes are also published. */
  publishing(datapath: EndpointDatapath): EndpointDatapath {
    return publishingDatapath(datapath, this.podCidr, this.publisher);
  }

  /**
   * After the agent restored its endpoints: the cluster's policy (or this node's, into an empty
   * store), this node in the registry, its endpoints republished, other nodes' endpoints followed.
   */
  async startSync({ datapath, policy, podOf }: SyncOptions): Promise<void> {
    const log = this.options.logger("kvstore");
    this.policy = policy;
    this.podOf = podOf;
    this.nodeIp = await discoverNodeIp(datapath, this.options.devices);
    const steps: [string, () => Promise<unknown>][] = [
      [
        "policy",
        async () => {
          const inEtcd = await this.policyStore.start();
          const local = policy.policyJson();
          if (!inEtcd && local.rules.length > 0) await this.policyStore.publish(local);
        },
      ],
      ["endpoints", () => this.publisher.republish({ complete: true })],
      ["node registry", () => this.nodes.start()],
      [
        "ipcache",
        () => {
          const handler = remoteIpcacheHandler({ datapath, policy, labelsOf: (id) => this.identities.lookup(id), log: this.options.logger("ipcache-sync") });
          this.remoteEntries = handler.entries;
          this.remoteAddress = handler.address;
          this.remote = new RemoteIpcacheWatch(this.session, this.options.nodeName, handler, this.options.logger("ipcache-sync"));
          return this.remote.start();
        },
      ],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (error) {
        // Redone when the session reconnects (its handlers re-publish and re-list).
        log.warn(`${what}: ${errorMessage(error)}`);
        this.session.reportFailure(error);
      }
    }
    // The registry carries the agent's health: rewritten when it changes.
    this.healthTimer = setInterval(() => {
      if (this.session.state === "ok") void this.nodes.update();
    }, NODE_HEALTH_INTERVAL_MS);
  }

  /**
   * Whether an ipcache entry the agent finds at restart is another node's endpoint: one etcd
   * holds now, or, while etcd is unreachable, any address outside this node's pod CIDR with a
   * tunnel endpoint (kept rather than have those pods' traffic judged as world until etcd returns).
   */
  isRemoteIpcacheEntry(entry: IpcacheEntry): boolean {
    const address = entry.cidr.endsWith("/32") ? entry.cidr.slice(0, -3) : undefined;
    if (address === undefined) return false;
    if (this.remoteEntries?.().has(address)) return true;
    return this.session.state !== "ok" && entry.tunnelEndpoint !== undefined && !cidrContains(parseCidr(this.podCidr), parseIpv4(address));
  }

  /**
   * No --ipv4-range: registers this node without a pod CIDR and waits for the one the operator
   * allocates from its cluster pool (etcd unreachable meanwhile: waits for it too).
   */
  async awaitPodCidr(): Promise<string> {
    await this.nodes.update();
    this.podCidr = await waitForPodCidr(this.session.client, this.options.nodeName, this.options.logger("ipam"));
    this.options.logger("ipam").info(`pod CIDR ${this.podCidr} allocated by the operator`);
    return this.podCidr;
  }

  /** This node's address between nodes, once startSync found it. */
  get nodeAddress(): string | undefined {
    return this.nodeIp;
  }

  /** Another node's address as this node knows it (identity, pod names), for Hubble. */
  remoteAddressOf(ip: string): RemoteAddress | undefined {
    return this.remoteAddress?.(ip);
  }

  /** Hears of every other node (now and on each change): the overlay's input. */
  addNodeListener(listener: NodeListener): Promise<void> {
    return this.nodes.addListener(listener);
  }

  /** What `cilium status` shows as KVStore. */
  status(): SubsystemStatus {
    const state = this.session.state;
    const nodes = this.nodes.nodes().length;
    return {
      state: state === "ok" ? "Ok" : state === "connecting" ? "Warning" : "Failure",
      msg: `${this.session.describe()}${state === "ok" ? `, ${nodes} other node${nodes === 1 ? "" : "s"}` : ""}`,
    };
  }

  /** Stops following etcd. The lease is left to lapse: endpoints keep working across a restart. */
  async stop(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.remote?.close();
    this.nodes.close();
    this.policyStore.close();
    this.identities.close();
    await this.session.stop();
    this.session.client.close();
  }

  private self(): ClusterNode {
    return {
      name: this.options.nodeName,
      ...(this.nodeIp ? { ipv4: this.nodeIp } : {}),
      podCidrs: this.podCidr ? [this.podCidr] : [],
      health: this.options.health.list().some((p) => !p.startsWith(`${KVSTORE_HEALTH_SUBJECT}:`)) ? "Degraded" : "Ok",
    };
  }
}
