/**
 * The agent daemon: configuration -> datapath start -> IPAM restore -> identities and policy
 * restore -> endpoint restore (same identities, policy re-applied) -> API. The API comes last so
 * that no request sees a half-restored agent. Stopping closes the API and releases the
 * datapath's handles, never its state: pods keep working, and policy keeps being enforced, while
 * the agent is down.
 */
import { logger as defaultLogger, type Logger } from "../logging/index.ts";
import { ApiLatencyHistogram } from "./api/metrics.ts";
import { Router } from "./api/router.ts";
import { addCniRoutes } from "./api/routes/cni.ts";
import { addDaemonRoutes } from "./api/routes/daemon.ts";
import { addEndpointRoutes } from "./api/routes/endpoint.ts";
import { addIpamRoutes } from "./api/routes/ipam.ts";
import { addPolicyRoutes } from "./api/routes/policy.ts";
import { startApiServer } from "./api/server.ts";
import { allowsLocalhost, podMtu, type AgentConfig } from "./config.ts";
import { CniAttachments } from "./cni/attachments.ts";
import { ConntrackGc } from "./conntrack-gc.ts";
import type { EndpointDatapath } from "./endpoint/datapath.ts";
import { EndpointManager } from "./endpoint/manager.ts";
import { Serial } from "./endpoint/serial.ts";
import { EndpointStore } from "./endpoint/store.ts";
import { EmbeddedIdentityBackend } from "../kvstore/index.ts";
import { PolicyManager } from "./policy/manager.ts";
import { HealthProblems } from "./health.ts";
import { parseCidr } from "../net/ipv4.ts";
import { Ipam } from "./ipam/index.ts";
import { MonitorHub, type MonitorEvents } from "./monitor/index.ts";
import { startMonitorServer, type MonitorServer } from "./monitor/server.ts";
import { collectStatus } from "./status.ts";
import type { MetricsServer } from "../metrics/http-server.ts";
import type { AgentHubble } from "./hubble/index.ts";
import type { RunningHubbleMetrics } from "../hubble/metrics/index.ts";
import type { EtcdClusterState } from "./cluster/etcd-state.ts";

export interface DaemonOptions {
  config: AgentConfig;
  datapath: EndpointDatapath;
  /** Logger per subsystem; defaults to the process logger. */
  logger?: (subsys: string) => Logger;
}

export interface Daemon {
  readonly config: AgentConfig;
  readonly ipam: Ipam;
  readonly endpoints: EndpointManager;
  readonly policy: PolicyManager;
  readonly health: HealthProblems;
  /** The datapath's events (drop, trace, policy verdict), for Hubble and `cilium monitor`. */
  readonly monitor: MonitorEvents;
  /** API request latency, for the metrics exporter. */
  readonly apiLatency: ApiLatencyHistogram;
  /** The Hubble server and its flows (onFlow for other consumers); undefined with --enable-hubble=false. */
  readonly hubble?: AgentHubble;
  /** --kvstore etcd: the cluster state (node registry listeners: cluster.addNodeListener). */
  readonly cluster?: EtcdClusterState;
  /** Stops the API, removes the socket, releases the datapath. Idempotent. */
  stop(): Promise<void>;
}

export async function startDaemon({ config, datapath, logger = defaultLogger }: DaemonOptions): Promise<Daemon> {
  const log = logger("daemon");
  log.info(`starting the agent for node ${config.nodeName}${config.ipv4Range ? `, pod CIDR ${config.ipv4Range}` : ""}`);
  const health = new HealthProblems();
  let monitor: MonitorHub | undefined;
  let monitorServer: MonitorServer | undefined;
  let metrics: MetricsServer | undefined;
  let hubble: AgentHubble | undefined;
  let hubbleMetrics: RunningHubbleMetrics | undefined;
  let cluster: EtcdClusterState | undefined;
  let conntrackGc: ConntrackGc | undefined;
  try {
    if (config.kvstore) {
      const { EtcdClusterState } = await import("./cluster/etcd-state.ts");
      cluster = await EtcdClusterState.connect({ kvstore: config.kvstore, nodeName: config.nodeName, podCidr: config.ipv4Range, devices: config.devices, health, logger });
      if (!config.ipv4Range) config = { ...config, ipv4Range: await cluster.awaitPodCidr() };
    }
    if (!config.ipv4Range) throw new Error("no pod CIDR: give --ipv4-range");
    const ipam = Ipam.open(parseCidr(config.ipv4Range), config.stateDir);
    const identityBackend = cluster?.identities ?? EmbeddedIdentityBackend.open(config.stateDir);
    await datapath.start(config);
    monitor = new MonitorHub({ datapath, log: logger("monitor") });
    conntrackGc = new ConntrackGc({ bpfRoot: config.bpfRoot, intervalMs: config.conntrackGcInterval ?? 0, maxIntervalMs: config.conntrackGcMaxInterval ?? 0, log: logger("ct-gc") });
    const serial = new Serial();
    const policy = new PolicyManager({
      datapath: cluster ? cluster.publishing(datapath) : datapath,
      stateDir: config.stateDir,
      enforcement: config.enablePolicy,
      allowLocalhost: allowsLocalhost(config.allowLocalhost),
      identityBackend,
      serial,
      log: logger("policy"),
      ...(cluster ? { clusterPolicy: cluster.policySink } : {}),
    });
    await policy.start();
    const endpoints = new EndpointManager({ ipam, datapath, store: new EndpointStore(config.stateDir), health, log: logger("endpoint-manager"), policy, serial });
    await endpoints.restore();
    await cluster?.startSync({
      datapath,
      policy,
      podOf: (ip) => {
        const endpoint = endpoints.list().find((e) => e.addressing.ipv4 === ip);
        return endpoint?.["k8s-pod-name"] ? { namespace: endpoint["k8s-namespace"] ?? "", podName: endpoint["k8s-pod-name"] } : undefined;
      },
    });
    await policy.finishRestore(cluster ? { keepIpcache: (entry) => cluster!.isRemoteIpcacheEntry(entry) } : {});
    // Endpoints restored while etcd was unreachable get their identities when it answers.
    cluster?.session.onReconnect(() => endpoints.retryIdentities());
    // Other nodes' pod CIDRs: the overlay (tunnel entries) or routes (native mode).
    await cluster?.addNodeListener({
      onNodeUpsert: (node) => (node.ipv4 ? datapath.upsertRemoteNode({ name: node.name, ipv4: node.ipv4, podCidrs: node.podCidrs }) : undefined),
      onNodeDelete: (name) => datapath.deleteRemoteNode(name),
    });

    const router = new Router();
    addDaemonRoutes(router, {
      config,
      status: () => collectStatus({ config, ipam, endpoints, datapath, health, policy, conntrackGc, ...(cluster ? { kvstore: () => cluster!.status() } : {}) }),
    });
    addEndpointRoutes(router, endpoints);
    addIpamRoutes(router, { config, ipam, endpoints });
    addPolicyRoutes(router, { policy, endpoints });
    const cniAttachments = new CniAttachments({ ipam, endpoints, mtu: podMtu(config) });
    addCniRoutes(router, cniAttachments);
    const apiLatency = new ApiLatencyHistogram();
    monitorServer = await startMonitorServer({ socketPath: config.monitorSocketPath, socketGid: config.socketGid, monitor, log: logger("monitor") });
    if (config.prometheusServeAddr !== undefined) {
      const { startAgentMetrics } = await import("./metrics/index.ts");
      metrics = await startAgentMetrics({ address: config.prometheusServeAddr, endpoints, policy, datapath, apiLatency, log: logger("metrics") });
    }
    const api = await startApiServer({ socketPath: config.socketPath, socketGid: config.socketGid, router, metrics: apiLatency, log: logger("api") });
    try {
      // Loaded only when enabled: it brings grpc.
      if (config.hubble.enabled) {
        const [{ startAgentHubble }, { hubblePeers }] = await Promise.all([import("./hubble/index.ts"), import("./hubble/peers.ts")]);
        const peers = await hubblePeers({ config, ...(cluster ? { cluster } : {}) });
        const remoteAddress = cluster ? (ip: string) => cluster!.remoteAddressOf(ip) : undefined;
        hubble = await startAgentHubble({ config, monitor: monitor!, endpoints, policy, log: logger("hubble"), peers, ...(remoteAddress ? { remoteAddress } : {}) });
      }
      if (config.hubbleMetricsServer !== undefined) {
        const flows = hubble;
        if (!flows) throw new Error("--hubble-metrics-server needs Hubble, which --enable-hubble=false turned off");
        const { startHubbleMetrics } = await import("../hubble/metrics/index.ts");
        hubbleMetrics = await startHubbleMetrics({ spec: config.hubbleMetrics ?? [], listen: config.hubbleMetricsServer, onFlow: (listener) => flows.onFlow(listener) });
      }
    } catch (error) {
      await api.stop();
      throw error;
    }
    conntrackGc?.start();

    let stopping: Promise<void> | undefined;
    return {
      config,
      ipam,
      endpoints,
      policy,
      health,
      monitor,
      apiLatency,
      ...(hubble ? { hubble } : {}),
      ...(cluster ? { cluster } : {}),
      stop: () =>
        (stopping ??= (async () => {
          await api.stop();
          monitorServer?.stop();
          await metrics?.stop();
          await hubbleMetrics?.stop();
          await hubble?.stop();
          await cluster?.stop();
          conntrackGc?.stop();
          cniAttachments.close();
          monitor?.close();
          await datapath.stop();
          log.info("agent stopped");
        })()),
    };
  } catch (error) {
    // Release what start() took; the datapath's kernel state stays, as on any stop.
    monitorServer?.stop();
    await metrics?.stop();
    await hubbleMetrics?.stop();
    await hubble?.stop();
    conntrackGc?.stop();
    monitor?.close();
    await cluster?.stop().catch((stopError) => log.warn("the kvstore connection did not close cleanly", stopError));
    await datapath.stop().catch((stopError) => log.warn("the datapath did not stop cleanly", stopError));
    throw error;
  }
}
