/**
 * The Hubble server of one node: observer.Observer and grpc.health.v1 on a unix socket
 * (/var/run/cilium/hubble.sock, plaintext: file permissions guard it) and/or TCP (:4244), with
 * TLS (and client certificates when CAs are given) when asked, as upstream.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { rmSync } from "node:fs";
import { grpcServiceDefinition } from "../proto/grpc.ts";
import { peerImplementation, type PeerRegistry } from "../peer/service.ts";
import { healthImplementation } from "./health.ts";
import { Observer, type ObserverOptions } from "./observer.ts";

export interface HubbleServerOptions extends ObserverOptions {
  /** Path of the unix socket; a stale socket file there is removed first. */
  socketPath?: string;
  /** "host:port" for TCP, e.g. ":4244" (all addresses) or "127.0.0.1:4244". */
  listenAddress?: string;
  /** When set, the Peer service is served too, listing these Hubble servers (for the relay). */
  peers?: PeerRegistry;
  /** TLS for the TCP listener: PEM certificate chain and key; client CAs make client certificates mandatory. */
  tls?: { cert: Buffer; key: Buffer; clientCAs?: Buffer };
}

export interface HubbleServer {
  /** The TCP port actually bound (useful with port 0), if TCP was asked for. */
  tcpPort?: number;
  stop(): Promise<void>;
}

function tcpTarget(address: string): string {
  // grpc-js wants a host; ":4244" means every address, as in Go.
  return address.startsWith(":") ? `0.0.0.0${address}` : address;
}

function bind(server: Server, target: string, credentials = ServerCredentials.createInsecure()): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function tlsCredentials(tls: NonNullable<HubbleServerOptions["tls"]>): ServerCredentials {
  return ServerCredentials.createSsl(tls.clientCAs ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCAs !== undefined);
}

export async function startHubbleServer(opts: HubbleServerOptions): Promise<HubbleServer> {
  if (!opts.socketPath && !opts.listenAddress) throw new Error("the Hubble server needs a unix socket path or a TCP address");
  const server = new Server();
  server.addService(grpcServiceDefinition("observer.Observer"), new Observer({ ...opts, tlsEnabled: opts.tls !== undefined }).implementation());
  server.addService(grpcServiceDefinition("grpc.health.v1.Health"), healthImplementation());
  if (opts.peers) server.addService(grpcServiceDefinition("peer.Peer"), peerImplementation(opts.peers));
  try {
    if (opts.socketPath) {
      rmSync(opts.socketPath, { force: true });
      await bind(server, `unix:${opts.socketPath}`);
    }
    const tcpPort = opts.listenAddress ? await bind(server, tcpTarget(opts.listenAddress), opts.tls && tlsCredentials(opts.tls)) : undefined;
    return {
      ...(tcpPort !== undefined ? { tcpPort } : {}),
      stop: () =>
        new Promise<void>((resolve) => {
          // Followers never end on their own: give in-flight calls a moment, then cut them.
          const timer = setTimeout(() => server.forceShutdown(), 1000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        }),
    };
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
}
