/** The node's Hubble gRPC server. */
export { startHubbleServer, type HubbleServer, type HubbleServerOptions } from "./server.ts";
export { Observer, type ObserverOptions } from "./observer.ts";
export { healthImplementation, OBSERVER_HEALTH_SERVICE } from "./health.ts";
