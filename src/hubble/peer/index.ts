/** The Peer service: which Hubble servers the cluster has. */
export { PeerChange, peerImplementation, PeerRegistry, type HubblePeer, type PeerListener } from "./service.ts";
