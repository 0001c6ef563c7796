/**
 * What the endpoint and policy managers need of the kernel side. The agent never touches the
 * kernel itself: src/agent/datapath.ts implements this for real, tests use a recording fake.
 */
import type { IpcacheEntry } from "../../datapath/maps/ipcache.ts";
import type { EndpointPolicy as DatapathPolicy, PolicyRule } from "../../datapath/maps/policy.ts";
import type { Endpoint } from "../api/types.ts";
import type { AgentConfig } from "../config.ts";

export type { DatapathPolicy, IpcacheEntry, PolicyRule };

/** Directions whose policy the datapath enforces for an endpoint. */
export interface PolicyEnforcement {
  ingress: boolean;
  egress: boolean;
}

export interface ApplyOptions {
  /** Enforcement to program with the endpoint (what setEndpointPolicy last wrote for it). */
  policyEnforcement?: PolicyEnforcement;
}

/** The datapath's event stream (cilium_events), as opened by openEvents. */
export interface DatapathEvents {
  /** Events the kernel could not write because the ring was full, since the datapath was created. */
  lost(): number;
  /** Stops delivering records. Idempotent. */
  close(): void;
}

export interface EndpointDatapath {
  /** Host plumbing and programs; called once at start, before any endpoint is applied. */
  start(config: AgentConfig): Promise<void>;
  /**
   * Programs one endpoint (map entries with its security identity, attach to its host veth).
   * Idempotent: restore applies every persisted endpoint again. Throws EndpointGoneError when the
   * endpoint's host interface or network namespace no longer exists, so the agent can drop it
   * instead of reporting a failure.
   */
  applyEndpoint(endpoint: Endpoint, options?: ApplyOptions): Promise<void>;
  /** Removes what applyEndpoint programmed, its policy entries included. Idempotent. */
  removeEndpoint(endpoint: Endpoint): Promise<void>;
  /**
   * Restore clean-up: removes whatever the datapath still programs for endpoints not in `live`
   * (say, the state dir was wiped while pods ran). Answers a description of each thing removed.
   */
  removeStaleEndpoints(live: readonly Endpoint[]): Promise<string[]>;
  /**
   * Makes the endpoint's policy in the kernel `policy` (enforcement per direction and entries),
   * writing the difference only; the endpoint need not be applied yet. Throws when the policy
   * cannot be written; the datapath has then left the endpoint failing closed (enforced, new
   * allows left out).
   */
  setEndpointPolicy(endpointId: number, policy: DatapathPolicy): Promise<void>;
  /**
   * Sets the security identity of a prefix ("a.b.c.d/n") in the ipcache; `tunnelEndpoint`: the
   * node IP hosting it, for another node's endpoint (kvstore mode).
   */
  upsertIpcache(cidr: string, identity: number, tunnelEndpoint?: string): Promise<void>;
  /** Removes a prefix from the ipcache; one that is not there is fine. */
  deleteIpcache(cidr: string): Promise<void>;
  /** The ipcache as the kernel holds it. */
  listIpcache(): Promise<IpcacheEntry[]>;
  /**
   * Starts delivering the datapath's event records (drop, trace, policy verdict; the layout of
   * bpf/lib/events.h) to `onRecord`, which may keep each one. Called after start().
   */
  openEvents(onRecord: (record: Uint8Array) => void): DatapathEvents;
  /**
   * Facts for `cilium status --verbose`. Keys the CLI knows: "kernel" (string), "attach-mode"
   * (string, e.g. "tcx"), "programs" (string[]); any other key is printed as it is.
   */
  status(): Promise<Record<string, unknown>>;
  /** Releases the agent's handles. Must NOT tear the datapath down: pods keep working across agent restarts. */
  stop(): Promise<void>;
}

/** The endpoint's interface or namespace vanished (the pod is gone): nothing left to program. */
export class EndpointGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EndpointGoneError";
  }
}
