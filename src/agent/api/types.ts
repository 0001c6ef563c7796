/**
 * The agent's REST API (v1) over its unix socket: request and response bodies. Field names follow
 * upstream Cilium's API where it has the concept (kebab-case JSON), so tooling reads naturally.
 * Every body that enters the agent is validated against src/agent/api/schemas.ts.
 */

export type EndpointState = "waiting-for-identity" | "not-ready" | "regenerating" | "ready" | "disconnecting" | "disconnected";

/** POST /v1/ipam?owner=<owner>[&family=ipv4] */
export interface IpamResponse {
  address: { ipv4: string };
  ipv4: {
    ip: string;
    /** Pod CIDR of the node, e.g. "10.200.0.0/24". */
    cidrs: string[];
    gateway: string;
    /** The interface MTU pods should use. */
    mtu: number;
  };
  "host-addressing": { ipv4: { ip: string; enabled: boolean } };
}

/** PUT /v1/endpoint/{id} (id: numeric, or 0 / omitted to let the agent choose via cni-attachment-id:...). */
export interface EndpointChangeRequest {
  "container-id": string;
  "container-interface-name": string;
  /** Host-side veth. */
  "interface-name": string;
  "interface-index": number;
  /** Pod-side MAC and host-side MAC. */
  mac: string;
  "host-mac": string;
  addressing: { ipv4: string };
  "netns-path"?: string;
  "k8s-namespace"?: string;
  "k8s-pod-name"?: string;
  /** "source:key=value" or "key=value" (source k8s when from K8S_* args, else unspec). */
  labels?: string[];
}

/**
 * PUT /v1/cni/attachment/{container-id}:{ifname}: the CNI plugin's ADD, carried out by the agent
 * (IP, veth pair into the pod, endpoint). See src/agent/cni/attachments.ts for why.
 */
export interface CniAttachRequest {
  "netns-path": string;
  /** Overrides the agent's MTU (the network config's "mtu"). */
  mtu?: number;
  "k8s-namespace"?: string;
  "k8s-pod-name"?: string;
  labels?: string[];
}

/** The answer to a CniAttachRequest: the endpoint (host veth, MACs, address) and the pod's gateway and MTU. */
export interface CniAttachment {
  endpoint: Endpoint;
  gateway: string;
  mtu: number;
}

/**
 * The error body of the /v1/cni routes: ApiError plus the CNI error code the plugin answers
 * with, and what a rollback could not undo.
 */
export interface CniApiError extends ApiError {
  "cni-code": number;
  details?: string;
}

export interface Endpoint {
  id: number;
  state: EndpointState;
  "container-id": string;
  "container-interface-name": string;
  "interface-name": string;
  "interface-index": number;
  mac: string;
  "host-mac": string;
  addressing: { ipv4: string };
  "netns-path"?: string;
  "k8s-namespace"?: string;
  "k8s-pod-name"?: string;
  labels: string[];
  /** The security identity of its labels (absent until allocated). */
  identity?: number;
  /** Its policy as the datapath enforces it (absent until first written). */
  policy?: EndpointPolicyStatus;
  "created-at": string;
}

/** An endpoint's policy in the datapath. */
export interface EndpointPolicyStatus {
  /** The policy revision the endpoint enforces (0: none yet). */
  "realized-revision": number;
  /** Whether the datapath enforces each direction (consults the policy map). */
  "ingress-enforced": boolean;
  "egress-enforced": boolean;
  /** Why the last write failed; the endpoint is then not-ready and fails closed. */
  error?: string;
}

/** PATCH /v1/endpoint/{id}/labels */
export interface EndpointLabelsChange {
  /** "source:key=value" or "key=value" (source unspec); replaces a label of the same source and key. */
  add?: string[];
  /** "source:key", "key" (any source) or "source:key=value" (only with that value). */
  delete?: string[];
}

/** GET /v1/policy */
export interface PolicyResponse {
  revision: number;
  /** The rules in force, as bare rules (JSON), in import order. */
  policy: Record<string, unknown>[];
}

/** PUT and DELETE /v1/policy */
export interface PolicyRevision {
  revision: number;
  /** DELETE: how many rules went. */
  deleted?: number;
}

/** GET /v1/identity, GET /v1/identity/{id} */
export interface IdentityModel {
  id: number;
  labels: string[];
}

/** One side of POST /v1/policy/resolve: labels, or an endpoint's (its ID or any endpoint reference). */
export type TraceEndpoint = { labels: string[] } | { endpoint: string | number };

/** POST (or GET with a body) /v1/policy/resolve */
export interface PolicyTraceRequest {
  from: TraceEndpoint;
  to: TraceEndpoint;
  /** Destination port (ICMP: type), or "80/TCP". */
  dport?: number | string;
  /** TCP (default), UDP, SCTP, ICMP. */
  protocol?: string;
}

export interface PolicyDirectionTrace {
  direction: "ingress" | "egress";
  verdict: "allowed" | "denied";
  reason: string;
  enforced: boolean;
  "selecting-rules": string[];
  "deciding-rules": string[];
}

export interface PolicyTraceResponse {
  verdict: "allowed" | "denied";
  from: string[];
  to: string[];
  protocol: string;
  dport: number;
  egress: PolicyDirectionTrace;
  ingress: PolicyDirectionTrace;
}

export interface ApiError {
  code: number;
  message: string;
}

/** Ok: all is well. Degraded: serving, with problems listed. Failure: the datapath is unusable. */
export type AgentHealthState = "Ok" | "Degraded" | "Failure";

/** A subsystem's state ("Ok", "Disabled", ...) and a message, as upstream reports them. */
export interface SubsystemStatus {
  state: string;
  msg: string;
}

/**
 * GET /v1/healthz: upstream's StatusResponse for what this agent has. HTTP 200 while Ok or
 * Degraded; 503 when Failure, with this body plus `code` and `message`.
 */
export interface StatusResponse {
  /** The agent itself; msg is its version. */
  cilium: { state: AgentHealthState; msg: string };
  kvstore: SubsystemStatus;
  kubernetes: SubsystemStatus;
  "node-name": string;
  kernel: string;
  /** details: what the datapath reports of itself ("attach-mode", "programs", ...). */
  datapath: { state: "Ok" | "Failure"; msg: string; details: Record<string, unknown> };
  ipam: {
    /** "IPv4: 3/254 allocated from 10.200.0.0/24" */
    status: string;
    ipv4: { cidr: string; gateway: string; used: number; free: number; capacity: number };
    /** Address -> owner, the router's included. */
    allocations: Record<string, string>;
  };
  endpoints: { total: number; "by-state": Partial<Record<EndpointState, number[]>> };
  /** The policy repository: its revision, its rule count, --enable-policy. */
  policy?: { revision: number; rules: number; enforcement: string };
  /** Conntrack and masquerade garbage collection. */
  "conntrack-gc"?: ConntrackGcStatus;
  /** Why the agent is not Ok, one line each. */
  problems: string[];
}

/** The conntrack GC's interval (current, when dynamic), passes so far and what the last one found and deleted. */
export interface ConntrackGcStatus {
  interval: string;
  dynamic: boolean;
  runs: number;
  "total-deleted": number;
  "last-run"?: string;
  last?: { "ct-entries": number; "ct-deleted": number; "nat-entries": number; "nat-deleted": number };
  error?: string;
}

/** GET /v1/config: the effective configuration, by upstream option name. */
export type AgentConfiguration = Record<string, string | number | boolean | string[]>;
