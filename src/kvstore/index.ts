/**
 * State backends shared by the nodes of a cluster. For now the embedded one (single node, files
 * under the agent's state dir); etcd and Kubernetes (CRDs) implement the same interfaces later.
 */
export * from "./embedded-identities.ts";
