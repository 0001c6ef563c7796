/** Datapath events in the agent: one ring reader, many listeners. */
export { MonitorHub, type MonitorEvents, type MonitorHubOptions, type MonitorListener } from "./hub.ts";
