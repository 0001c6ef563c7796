/**
 * Hubble in the agent: the monitor hub's records become flows enriched from the agent's caches
 * (FlowPipeline, AgentEndpointResolver), kept in a ring of --hubble-event-buffer-capacity, and
 * served by the observer API on --hubble-socket-path (0660, root and the API socket's group) and
 * optionally --hubble-listen-address (TLS unless disabled). The daemon imports this module only
 * when Hubble is enabled: it pulls in grpc.
 */
import { chmodSync, chownSync, readFileSync, rmSync } from "node:fs";
import type { Logger } from "../../logging/index.ts";
import type { FlowRing } from "../../hubble/ring.ts";
import type { PeerRegistry } from "../../hubble/peer/index.ts";
import { startHubbleServer, type HubbleServer } from "../../hubble/server/index.ts";
import { VERSION } from "../../version.ts";
import { prepareSocketPath, SOCKET_MODE } from "../api/socket.ts";
import type { AgentConfig } from "../config.ts";
import type { MonitorEvents } from "../monitor/index.ts";
import { agentFlowPath, type FlowListener, type FlowPipelineStats } from "./pipeline.ts";
import type { AgentResolverSources } from "./resolver.ts";

export type { FlowListener, FlowPipelineStats } from "./pipeline.ts";

export interface AgentHubble {
  readonly ring: FlowRing;
  /** Hubble's unix socket. */
  readonly socketPath: string;
  /** The TCP port bound for --hubble-listen-address, if any. */
  readonly tcpPort?: number;
  /** Every flow as it is stored, for other consumers (Hubble metrics); returns the unsubscribe. */
  onFlow(listener: FlowListener): () => void;
  stats(): FlowPipelineStats;
  /** Stops serving and reading events; removes the socket. */
  stop(): Promise<void>;
}

export interface AgentHubbleOptions extends AgentResolverSources {
  config: AgentConfig;
  monitor: MonitorEvents;
  log: Logger;
  /** The cluster's Hubble servers, served as the Peer service (the relay finds the nodes there). */
  peers?: PeerRegistry;
}

function readPem(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${option} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function tlsMaterial(tls: NonNullable<AgentConfig["hubble"]["tls"]>): { cert: Buffer; key: Buffer; clientCAs?: Buffer } {
  const cert = readPem(tls.certFile, "--hubble-tls-cert-file");
  const key = readPem(tls.keyFile, "--hubble-tls-key-file");
  if (tls.clientCaFiles.length === 0) return { cert, key };
  return { cert, key, clientCAs: Buffer.concat(tls.clientCaFiles.map((file) => readPem(file, "--hubble-tls-client-ca-files"))) };
}

export async function startAgentHubble(options: AgentHubbleOptions): Promise<AgentHubble> {
  const { config, log } = options;
  const { socketPath, listenAddress, eventBufferCapacity } = config.hubble;
  const tls = config.hubble.tls && tlsMaterial(config.hubble.tls);
  await prepareSocketPath(socketPath, { flag: "--hubble-socket-path", what: "the Hubble socket" });

  const { pipeline, ring, close } = agentFlowPath({ nodeName: config.nodeName, capacity: eventBufferCapacity, sources: options, log });
  const unsubscribe = options.monitor.subscribe(pipeline);

  let server: HubbleServer;
  try {
    server = await startHubbleServer({
      ring,
      nodeName: config.nodeName,
      version: VERSION,
      socketPath,
      flowsRate: () => pipeline.flowsRate(),
      ...(listenAddress ? { listenAddress, address: listenAddress.startsWith(":") ? `0.0.0.0${listenAddress}` : listenAddress } : {}),
      ...(tls ? { tls } : {}),
      ...(options.peers ? { peers: options.peers } : {}),
    });
    chownSync(socketPath, process.getuid?.() ?? 0, config.socketGid);
    chmodSync(socketPath, SOCKET_MODE);
  } catch (error) {
    unsubscribe();
    close();
    rmSync(socketPath, { force: true });
    throw error;
  }
  log.info(`Hubble serving on ${socketPath}${listenAddress ? ` and ${listenAddress}${tls ? " (TLS)" : ""}` : ""}, ring of ${eventBufferCapacity} flows`);

  let stopping: Promise<void> | undefined;
  return {
    ring,
    socketPath,
    ...(server.tcpPort !== undefined ? { tcpPort: server.tcpPort } : {}),
    onFlow: (listener) => pipeline.onFlow(listener),
    stats: () => pipeline.stats,
    stop: () =>
      (stopping ??= (async () => {
        unsubscribe();
        close();
        await server.stop();
        rmSync(socketPath, { force: true });
      })()),
  };
}
