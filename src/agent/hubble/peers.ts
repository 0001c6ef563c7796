/**
 * What this agent's Peer service announces: its own Hubble server and, with etcd, every node of
 * the registry, each at its node IP and this agent's Hubble port (as upstream, every node's
 * Hubble listens on the same port). Without a TCP listener there is nothing a relay could dial,
 * and the list stays empty.
 */
import { PeerRegistry } from "../../hubble/peer/index.ts";
import type { EtcdClusterState } from "../cluster/etcd-state.ts";
import type { AgentConfig } from "../config.ts";

const ANY_ADDRESS = new Set(["", "0.0.0.0", "[::]", "::"]);

/** Upstream's TLS server name of a node's Hubble server. */
export const hubbleServerName = (node: string) => `${node}.default.hubble-grpc.cilium.io`;

export async function hubblePeers({ config, cluster }: { config: AgentConfig; cluster?: EtcdClusterState }): Promise<PeerRegistry> {
  const peers = new PeerRegistry();
  const listen = config.hubble.listenAddress;
  const colon = listen.lastIndexOf(":");
  if (!listen || colon < 0) return peers;
  const port = listen.slice(colon + 1);
  const host = listen.slice(0, colon);
  const tls = config.hubble.tls !== undefined;
  const peer = (name: string, ip: string) => ({ name, address: `${ip}:${port}`, ...(tls ? { tlsServerName: hubbleServerName(name) } : {}) });
  peers.upsert(peer(config.nodeName, ANY_ADDRESS.has(host) ? (cluster?.nodeAddress ?? "127.0.0.1") : host));
  await cluster?.addNodeListener({
    onNodeUpsert: (node) => {
      if (node.ipv4) peers.upsert(peer(node.name, node.ipv4));
    },
    onNodeDelete: (name) => peers.delete(name),
  });
  return peers;
}
