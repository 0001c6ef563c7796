/**
 * Hubble Relay: the cluster-wide observer API (default :4245) over every node's Hubble server,
 * which it finds through the Peer service.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "../../logging/index.ts";
import { grpcServiceDefinition } from "../proto/grpc.ts";
import { healthImplementation } from "../server/health.ts";
import { RelayObserver } from "./observer.ts";
import { PeerPool } from "./peers.ts";

export interface RelayOptions {
  /** ":port" (every address), "host:port" or "unix:///path". */
  listenAddress: string;
  peerService: string;
  version: string;
  sortBufferMaxLength: number;
  sortBufferDrainTimeoutMs: number;
  dialTimeoutMs: number;
  retryTimeoutMs: number;
  log: Pick<Logger, "info" | "warn" | "debug">;
}

export interface Relay {
  /** The TCP port bound (useful with port 0). */
  port: number;
  stop(): Promise<void>;
}

/** ":4245" (every address), "host:port", or "unix:///path". */
export function listenTarget(address: string): string {
  if (address.startsWith("unix:")) return address;
  if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/.test(address)) throw new Error(`listen address ${JSON.stringify(address)}: expected host:port, :port or unix:///path`);
  return address.startsWith(":") ? `0.0.0.0${address}` : address;
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const target = listenTarget(options.listenAddress);
  const pool = new PeerPool({ peerService: options.peerService, dialTimeoutMs: options.dialTimeoutMs, retryMs: options.retryTimeoutMs, log: options.log });
  const observer = new RelayObserver({
    pool,
    version: options.version,
    sortBufferMaxLength: options.sortBufferMaxLength,
    sortBufferDrainTimeoutMs: options.sortBufferDrainTimeoutMs,
    callTimeoutMs: options.dialTimeoutMs,
  });
  const server = new Server();
  server.addService(grpcServiceDefinition("observer.Observer"), observer.implementation());
  server.addService(grpcServiceDefinition("grpc.health.v1.Health"), healthImplementation());
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(target, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(new Error(`cannot listen on ${options.listenAddress}: ${err.message}`)) : resolve(bound))),
    );
  } catch (error) {
    server.forceShutdown();
    throw error;
  }
  pool.start();
  options.log.info(`relay listening on ${options.listenAddress}, peers from ${options.peerService}`);
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        pool.close();
        const timer = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
