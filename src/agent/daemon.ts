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
import { allowsLocalhost, type AgentConfig } from "./config.ts";
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
import { collectStatus } from "./status.ts";

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
  /** Stops the API, removes the socket, releases the datapath. Idempotent. */
  stop(): Promise<void>;
}

export async function startDaemon({ config, datapath, logger = defaultLogger }: DaemonOptions): Promise<Daemon> {
  const log = logger("daemon");
  log.info(`starting the agent for node ${config.nodeName}, pod CIDR ${config.ipv4Range}`);
  const ipam = Ipam.open(parseCidr(config.ipv4Range), config.stateDir);
  const health = new HealthProblems();
  let monitor: MonitorHub | undefined;
  let conntrackGc: ConntrackGc | undefined;
  try {
    const identityBackend = EmbeddedIdentityBackend.open(config.stateDir);
    await datapath.start(config);
    monitor = new MonitorHub({ datapath, log: logger("monitor") });
    conntrackGc = new ConntrackGc({ bpfRoot: config.bpfRoot, intervalMs: config.conntrackGcInterval ?? 0, maxIntervalMs: config.conntrackGcMaxInterval ?? 0, log: logger("ct-gc") });
    const serial = new Serial();
    const policy = new PolicyManager({
      datapath,
      stateDir: config.stateDir,
      enforcement: config.enablePolicy,
      allowLocalhost: allowsLocalhost(config.allowLocalhost),
      identityBackend,
      serial,
      log: logger("policy"),
    });
    await policy.start();
    const endpoints = new EndpointManager({ ipam, datapath, store: new EndpointStore(config.stateDir), health, log: logger("endpoint-manager"), policy, serial });
    await endpoints.restore();
    await policy.finishRestore();

    const router = new Router();
    addDaemonRoutes(router, { config, status: () => collectStatus({ config, ipam, endpoints, datapath, health, policy, conntrackGc }) });
    addEndpointRoutes(router, endpoints);
    addIpamRoutes(router, { config, ipam, endpoints });
    addPolicyRoutes(router, { policy, endpoints });
    const cniAttachments = new CniAttachments({ ipam, endpoints, mtu: config.mtu });
    addCniRoutes(router, cniAttachments);
    const apiLatency = new ApiLatencyHistogram();
    const api = await startApiServer({ socketPath: config.socketPath, socketGid: config.socketGid, router, metrics: apiLatency, log: logger("api") });
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
      stop: () =>
        (stopping ??= (async () => {
          await api.stop();
          conntrackGc?.stop();
          cniAttachments.close();
          monitor?.close();
          await datapath.stop();
          log.info("agent stopped");
        })()),
    };
  } catch (error) {
    // Release what start() took; the datapath's kernel state stays, as on any stop.
    conntrackGc?.stop();
    monitor?.close();
    await datapath.stop().catch((stopError) => log.warn("the datapath did not stop cleanly", stopError));
    throw error;
  }
}
