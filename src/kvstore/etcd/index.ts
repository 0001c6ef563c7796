/**
 * The etcd backend of the cluster state (--kvstore etcd). Importing this loads no etcd3: the
 * client loads it on connect. The operator's identity collection is collectUnusedIdentities.
 */
export * from "./client.ts";
export * from "./identities.ts";
export * from "./identity-gc.ts";
export * from "./ipcache.ts";
export * from "./keys.ts";
export * from "./nodes.ts";
export * from "./options.ts";
export * from "./policy.ts";
export * from "./prefix-watch.ts";
export * from "./session.ts";
