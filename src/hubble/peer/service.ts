/**
 * The Peer service each agent serves next to its observer: Notify sends every known Hubble
 * server as PEER_ADDED, then each change as it happens. The relay finds the nodes through it.
 */
import { Metadata, type ServerWritableStream, type UntypedServiceImplementation } from "@grpc/grpc-js";

/** peer.ChangeNotificationType */
export const PeerChange = { PEER_ADDED: 1, PEER_DELETED: 2, PEER_UPDATED: 3 } as const;

export interface HubblePeer {
  /** Node name. */
  name: string;
  /** host:port of the node's observer. */
  address: string;
  /** TLS server name to verify; absent: plaintext. */
  tlsServerName?: string;
}

export type PeerListener = (type: (typeof PeerChange)[keyof typeof PeerChange], peer: HubblePeer) => void;

/** The known Hubble servers of the cluster, kept up to date by the node registry. */
export class PeerRegistry {
  private readonly peers = new Map<string, HubblePeer>();
  private readonly listeners = new Set<PeerListener>();

  list(): HubblePeer[] {
    return [...this.peers.values()];
  }

  upsert(peer: HubblePeer): void {
    const old = this.peers.get(peer.name);
    if (old && old.address === peer.address && old.tlsServerName === peer.tlsServerName) return;
    this.peers.set(peer.name, { ...peer });
    this.emit(old ? PeerChange.PEER_UPDATED : PeerChange.PEER_ADDED, peer);
  }

  delete(name: string): void {
    const old = this.peers.get(name);
    if (!old) return;
    this.peers.delete(name);
    this.emit(PeerChange.PEER_DELETED, old);
  }

  subscribe(listener: PeerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(type: (typeof PeerChange)[keyof typeof PeerChange], peer: HubblePeer): void {
    for (const listener of this.listeners) listener(type, peer);
  }
}

function notification(type: number, peer: HubblePeer) {
  return {
    name: peer.name,
    address: peer.address,
    type,
    ...(peer.tlsServerName !== undefined ? { tls: { server_name: peer.tlsServerName } } : {}),
  };
}

export function peerImplementation(registry: PeerRegistry): UntypedServiceImplementation {
  return {
    Notify: (call: ServerWritableStream<unknown, unknown>) => {
      // Headers first: a client on Bun's HTTP/2 never sees a stream that has no peers yet otherwise.
      call.sendMetadata(new Metadata());
      // Changes are small and rare: no back-pressure handling beyond grpc-js's own buffering.
      const unsubscribe = registry.subscribe((type, peer) => call.write(notification(type, peer)));
      call.on("cancelled", unsubscribe);
      call.on("close", unsubscribe);
      for (const peer of registry.list()) call.write(notification(PeerChange.PEER_ADDED, peer));
    },
  };
}
