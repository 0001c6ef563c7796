/**
 * The relay's view of the cluster: the Hubble servers the Peer service announces, each with a
 * gRPC client kept connected (grpc-js reconnects on its own, with a short backoff so a node that
 * comes back is picked up within seconds).
 */
import { credentials, makeGenericClientConstructor, type Client, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "../../logging/index.ts";
import { PeerChange } from "../peer/service.ts";
import { grpcServiceDefinition } from "../proto/grpc.ts";

type Obj = Record<string, any>;
export type ObserverClient = Client & Record<string, any>;

export interface RelayPeer {
  name: string;
  address: string;
  tlsServerName?: string;
  client: ObserverClient;
}

export interface PeerPoolOptions {
  /** The Peer service: "unix:///var/run/cilium/hubble.sock" or "host:port". */
  peerService: string;
  /** How long a query waits for a node to connect before calling it unavailable. */
  dialTimeoutMs: number;
  /** Wait before opening the Peer service's Notify stream again after it failed. */
  retryMs: number;
  log: Pick<Logger, "info" | "warn" | "debug">;
}

const CHANNEL_OPTIONS = { "grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": 3000 };

let observerConstructor: ReturnType<typeof makeGenericClientConstructor> | undefined;
let peerConstructor: ReturnType<typeof makeGenericClientConstructor> | undefined;

function observerClient(address: string): ObserverClient {
  observerConstructor ??= makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
  return new observerConstructor(address, credentials.createInsecure(), CHANNEL_OPTIONS) as ObserverClient;
}

/** A peer the pool started using ("added") or stopped using ("removed": deleted, or replaced by a new address). */
export type PeerPoolListener = (peer: RelayPeer, change: "added" | "removed") => void;

export class PeerPool {
  private readonly peers = new Map<string, RelayPeer>();
  private readonly listeners = new Set<PeerPoolListener>();
  private notifyClient: (Client & Record<string, any>) | undefined;
  private notifyStream: ClientReadableStream<Obj> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly options: PeerPoolOptions) {}

  start(): void {
    peerConstructor ??= makeGenericClientConstructor(grpcServiceDefinition("peer.Peer"), "Peer");
    this.notifyClient = new peerConstructor(this.options.peerService, credentials.createInsecure(), CHANNEL_OPTIONS) as Client & Record<string, any>;
    this.listen();
  }

  /** Calls `listener` on every change from now on; returns the unsubscribe. */
  subscribe(listener: PeerPoolListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): RelayPeer[] {
    return [...this.peers.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The peers split by whether they connect within the dial timeout. */
  async probe(): Promise<{ connected: RelayPeer[]; unavailable: RelayPeer[] }> {
    const deadline = Date.now() + this.options.dialTimeoutMs;
    const peers = this.list();
    const ready = await Promise.all(peers.map((peer) => new Promise<boolean>((resolve) => peer.client.waitForReady(deadline, (err) => resolve(!err)))));
    return { connected: peers.filter((_, i) => ready[i]), unavailable: peers.filter((_, i) => !ready[i]) };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.notifyStream?.cancel();
    this.notifyClient?.close();
    for (const peer of this.peers.values()) peer.client.close();
    this.peers.clear();
  }

  private listen(): void {
    const stream: ClientReadableStream<Obj> = this.notifyClient!.Notify({});
    this.notifyStream = stream;
    stream.on("data", (change: Obj) => this.apply(change));
    const again = (why: string) => {
      if (this.closed || this.notifyStream !== stream) return;
      this.notifyStream = undefined;
      this.options.log.warn(`the peer service ${this.options.peerService} ${why}; retrying in ${this.options.retryMs} ms`);
      // Peers stay as they are meanwhile: their own connections say whether they are up.
      this.retryTimer = setTimeout(() => this.listen(), this.options.retryMs);
    };
    stream.on("error", (err: ServiceError) => again(`failed: ${err.details || err.message}`));
    stream.on("end", () => again("ended the stream"));
  }

  private apply(change: Obj): void {
    const name = String(change.name ?? "");
    if (!name) return;
    const old = this.peers.get(name);
    if (change.type === PeerChange.PEER_DELETED) {
      if (!old) return;
      this.peers.delete(name);
      this.notify(old, "removed");
      old.client.close();
      this.options.log.info(`peer ${name} removed`);
      return;
    }
    const address = String(change.address ?? "");
    const tlsServerName = change.tls?.server_name as string | undefined;
    if (old && old.address === address) return;
    if (old) this.notify(old, "removed");
    old?.client.close();
    const peer: RelayPeer = { name, address, ...(tlsServerName ? { tlsServerName } : {}), client: observerClient(address) };
    this.peers.set(name, peer);
    this.options.log.info(`peer ${name} at ${address}`);
    this.notify(peer, "added");
  }

  private notify(peer: RelayPeer, change: "added" | "removed"): void {
    for (const listener of this.listeners) listener(peer, change);
  }
}
