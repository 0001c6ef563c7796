/**
 * A recording stand-in for the agent's datapath: remembers every call and what is "programmed",
 * and can be told to fail a call or to find an endpoint's interface gone.
 */
import { appendFileSync } from "node:fs";
import type { Endpoint } from "../../src/agent/api/types.ts";
import type { AgentConfig } from "../../src/agent/config.ts";
import { EndpointGoneError, type EndpointDatapath } from "../../src/agent/endpoint/datapath.ts";
import type { Logger } from "../../src/logging/index.ts";

export type DatapathCall = "start" | "applyEndpoint" | "removeEndpoint" | "removeStaleEndpoints" | "status" | "stop";

export class RecordingDatapath implements EndpointDatapath {
  /** "applyEndpoint 3", "stop", ... in call order. */
  readonly calls: string[] = [];
  /** What is programmed now, by endpoint id. */
  readonly programmed = new Map<number, Endpoint>();
  /** A call listed here throws this message instead of working. */
  readonly failures = new Map<DatapathCall, string>();
  /** Host interface names whose interface has vanished. */
  readonly goneInterfaces = new Set<string>();
  /** Ids the datapath holds beyond what the agent will restore (removed by removeStaleEndpoints). */
  readonly strays = new Set<number>();
  /** When set, every call is also appended to this file (for an agent in another process). */
  private readonly journal: string | undefined;

  constructor(options: { journal?: string } = {}) {
    this.journal = options.journal;
  }

  async start(config: AgentConfig): Promise<void> {
    this.record("start", config.nodeName);
  }

  async applyEndpoint(endpoint: Endpoint): Promise<void> {
    this.record("applyEndpoint", endpoint.id);
    if (this.goneInterfaces.has(endpoint["interface-name"])) throw new EndpointGoneError(`host interface ${endpoint["interface-name"]} no longer exists`);
    // A partial apply, as a real failure might leave: the manager must roll it back.
    this.programmed.set(endpoint.id, endpoint);
    this.failIfTold("applyEndpoint");
  }

  async removeEndpoint(endpoint: Endpoint): Promise<void> {
    this.record("removeEndpoint", endpoint.id);
    this.failIfTold("removeEndpoint");
    this.programmed.delete(endpoint.id);
  }

  async removeStaleEndpoints(live: readonly Endpoint[]): Promise<string[]> {
    this.record("removeStaleEndpoints", live.map((endpoint) => endpoint.id).join(","));
    const keep = new Set(live.map((endpoint) => endpoint.id));
    const removed = [...this.strays].filter((id) => !keep.has(id));
    for (const id of removed) this.strays.delete(id);
    return removed.map((id) => `lxc entry of endpoint ${id}`);
  }

  async status(): Promise<Record<string, unknown>> {
    this.failIfTold("status");
    return { "attach-mode": "tcx", programs: ["cil_from_container", "cil_to_container"], kernel: "6.18.0-fake" };
  }

  async stop(): Promise<void> {
    this.record("stop");
  }

  callsOf(method: DatapathCall): string[] {
    return this.calls.filter((call) => call.split(" ")[0] === method);
  }

  private record(method: DatapathCall, detail?: unknown): void {
    const call = detail === undefined ? method : `${method} ${detail}`;
    this.calls.push(call);
    if (this.journal) appendFileSync(this.journal, `${call}\n`);
  }

  private failIfTold(method: DatapathCall): void {
    const message = this.failures.get(method);
    if (message !== undefined) throw new Error(message);
  }
}

/** Loggers that keep quiet but remember ("level message"), for assertions on what was logged. */
export function quietLogger(lines: string[] = []): (subsys: string) => Logger {
  const keep = (level: string) => (message: unknown) => void lines.push(`${level} ${String(message)}`);
  return () => ({ debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") }) as unknown as Logger;
}
