/** Hubble Relay: one observer API over every node's Hubble server. */
export { startRelay, type Relay, type RelayOptions } from "./server.ts";
