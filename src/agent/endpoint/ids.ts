/**
 * Numeric endpoint ids, 1-65535. Handed out round robin after the last one, so an id that just
 * went away is not reused at once (a stale `cilium endpoint get 7` must not find another pod).
 * Live ids are persisted as the endpoints' own state files; restore takes them back.
 */
import { AgentError } from "../errors.ts";
import { MAX_ENDPOINT_ID } from "./reference.ts";

export class EndpointIds {
  private readonly live = new Set<number>();
  private last = 0;

  /** Marks an id as in use (restore, or a client that chose it). */
  take(id: number): void {
    this.live.add(id);
    this.last = Math.max(this.last, id);
  }

  release(id: number): void {
    this.live.delete(id);
  }

  next(): number {
    for (let step = 1; step <= MAX_ENDPOINT_ID; step++) {
      const candidate = ((this.last + step - 1) % MAX_ENDPOINT_ID) + 1;
      if (this.live.has(candidate)) continue;
      this.take(candidate);
      this.last = candidate;
      return candidate;
    }
    throw new AgentError("exhausted", `no free endpoint ID: all ${MAX_ENDPOINT_ID} are in use`);
  }
}
