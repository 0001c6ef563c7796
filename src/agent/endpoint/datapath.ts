/**
 * What the endpoint manager needs of the kernel side. The agent never touches the kernel itself:
 * src/agent/datapath.ts implements this for real, tests use a recording fake.
 */
import type { Endpoint } from "../api/types.ts";
import type { AgentConfig } from "../config.ts";

export interface EndpointDatapath {
  /** Host plumbing and programs; called once at start, before any endpoint is applied. */
  start(config: AgentConfig): Promise<void>;
  /**
   * Programs one endpoint (map entries, attach to its host veth). Idempotent: restore applies
   * every persisted endpoint again. Throws EndpointGoneError when the endpoint's host interface
   * or network namespace no longer exists, so the agent can drop it instead of reporting a failure.
   */
  applyEndpoint(endpoint: Endpoint): Promise<void>;
  /** Removes what applyEndpoint programmed. Idempotent: parts already gone are fine. */
  removeEndpoint(endpoint: Endpoint): Promise<void>;
  /**
   * Restore clean-up: removes whatever the datapath still programs for endpoints not in `live`
   * (say, the state dir was wiped while pods ran). Answers a description of each thing removed.
   */
  removeStaleEndpoints(live: readonly Endpoint[]): Promise<string[]>;
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
