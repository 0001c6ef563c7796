/**
 * A recording stand-in for the agent's datapath: remembers every call and what is "programmed"
 * (endpoints, each endpoint's policy, the ipcache), and can be told to fail a call, to find an
 * endpoint's interface gone, or to hold only so many policy entries.
 */
import { appendFileSync } from "node:fs";
import type { Endpoint } from "../../src/agent/api/types.ts";
import type { AgentConfig } from "../../src/agent/config.ts";
import {
  EndpointGoneError,
  type ApplyOptions,
  type DatapathEvents,
  type DatapathPolicy,
  type EndpointDatapath,
  type IpcacheEntry,
  type MapFill,
  type MetricsCounter,
  type PolicyEnforcement,
  type PolicyRule,
  type RemoteNode,
} from "../../src/agent/endpoint/datapath.ts";
import type { Logger } from "../../src/logging/index.ts";

export type DatapathCall =
  | "start"
  | "applyEndpoint"
  | "removeEndpoint"
  | "removeStaleEndpoints"
  | "status"
  | "stop"
  | "setEndpointPolicy"
  | "upsertIpcache"
  | "deleteIpcache"
  | "listIpcache"
  | "upsertRemoteNode"
  | "deleteRemoteNode";

const POLICY_CALLS = new Set<DatapathCall>(["setEndpointPolicy", "upsertIpcache", "deleteIpcache", "listIpcache"]);
/** Like policy calls, node calls are in `sequence` only. */
const NODE_CALLS = new Set<DatapathCall>(["upsertRemoteNode", "deleteRemoteNode"]);

const ruleKey = (r: PolicyRule) => `${r.direction}:${r.identity}:${r.protocol}:${r.port}/${r.prefixLength}`;

export class RecordingDatapath implements EndpointDatapath {
  /** Endpoint calls: "applyEndpoint 3", "stop", ... in call order (policy and ipcache calls are in `sequence`). */
  readonly calls: string[] = [];
  /** Every call, policy and ipcache ones included: "setEndpointPolicy 3", "upsertIpcache 10.0.0.2/32 256", "applyEndpoint 3". */
  readonly sequence: string[] = [];
  /** What is programmed now, by endpoint id. */
  readonly programmed = new Map<number, Endpoint>();
  /** The enforcement each endpoint was last applied with (undefined: applied without). */
  readonly appliedEnforcement = new Map<number, PolicyEnforcement | undefined>();
  /** Each endpoint's policy as "the kernel" holds it. */
  readonly policies = new Map<number, DatapathPolicy>();
  /** Every policy written, in order (what setEndpointPolicy was asked). */
  readonly written: { endpointId: number; policy: DatapathPolicy }[] = [];
  /** The ipcache: prefix -> identity. */
  readonly ipcache = new Map<string, number>();
  /** Tunnel endpoints of ipcache prefixes that have one: prefix -> node IP. */
  readonly tunnelEndpoints = new Map<string, string>();
  /** Other nodes as upsertRemoteNode left them, by name. */
  readonly remoteNodes = new Map<string, RemoteNode>();
  /** When set, the most policy entries all endpoints together may hold (as --bpf-policy-map-max). */
  policyLimit: number | undefined;
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

  async applyEndpoint(endpoint: Endpoint, options: ApplyOptions = {}): Promise<void> {
    this.record("applyEndpoint", endpoint.id);
    this.appliedEnforcement.set(endpoint.id, options.policyEnforcement && { ...options.policyEnforcement });
    if (this.goneInterfaces.has(endpoint["interface-name"])) throw new EndpointGoneError(`host interface ${endpoint["interface-name"]} no longer exists`);
    // A partial apply, as a real failure might leave: the manager must roll it back.
    this.programmed.set(endpoint.id, endpoint);
    this.failIfTold("applyEndpoint");
  }

  async removeEndpoint(endpoint: Endpoint): Promise<void> {
    this.record("removeEndpoint", endpoint.id);
    this.failIfTold("removeEndpoint");
    this.programmed.delete(endpoint.id);
    this.policies.delete(endpoint.id);
  }

  async removeStaleEndpoints(live: readonly Endpoint[]): Promise<string[]> {
    this.record("removeStaleEndpoints", live.map((endpoint) => endpoint.id).join(","));
    const keep = new Set(live.map((endpoint) => endpoint.id));
    const removed = [...this.strays].filter((id) => !keep.has(id));
    for (const id of removed) this.strays.delete(id);
    const stalePolicies = [...this.policies.keys()].filter((id) => !keep.has(id));
    for (const id of stalePolicies) this.policies.delete(id);
    return [...removed.map((id) => `lxc entry of endpoint ${id}`), ...stalePolicies.map((id) => `policy entries of endpoint ${id}`)];
  }

  /**
   * As the real one: enforcement as asked, then the entries; when they do not fit under
   * policyLimit it fails closed (the desired denies and the allows the endpoint already had that
   * are still wanted) and throws.
   */
  async setEndpointPolicy(endpointId: number, policy: DatapathPolicy): Promise<void> {
    this.record("setEndpointPolicy", endpointId);
    this.failIfTold("setEndpointPolicy");
    const others = [...this.policies].filter(([id]) => id !== endpointId).reduce((n, [, p]) => n + p.entries.length, 0);
    const desired = policy.entries.map((e) => ({ ...e }));
    this.written.push({ endpointId, policy: { ...policy, entries: policy.entries.map((e) => ({ ...e })) } });
    if (this.policyLimit !== undefined && others + desired.length > this.policyLimit) {
      const had = new Set((this.policies.get(endpointId)?.entries ?? []).filter((e) => !e.deny).map(ruleKey));
      const kept = desired.filter((e) => e.deny || had.has(ruleKey(e)));
      this.policies.set(endpointId, { ingressEnforced: policy.ingressEnforced, egressEnforced: policy.egressEnforced, entries: kept });
      throw new Error(`endpoint ${endpointId}: cilium_policy cannot hold its policy: it needs ${desired.length} entries, other endpoints hold ${others}, the limit is ${this.policyLimit}`);
    }
    this.policies.set(endpointId, { ingressEnforced: policy.ingressEnforced, egressEnforced: policy.egressEnforced, entries: desired });
  }

  async upsertIpcache(cidr: string, identity: number, options: { tunnelEndpoint?: string } = {}): Promise<void> {
    this.record("upsertIpcache", `${cidr} ${identity}${options.tunnelEndpoint ? ` via ${options.tunnelEndpoint}` : ""}`);
    this.failIfTold("upsertIpcache");
    this.ipcache.set(cidr, identity);
    if (options.tunnelEndpoint) this.tunnelEndpoints.set(cidr, options.tunnelEndpoint);
    else this.tunnelEndpoints.delete(cidr);
  }

  async deleteIpcache(cidr: string): Promise<void> {
    this.record("deleteIpcache", cidr);
    this.failIfTold("deleteIpcache");
    this.ipcache.delete(cidr);
    this.tunnelEndpoints.delete(cidr);
  }

  async listIpcache(): Promise<IpcacheEntry[]> {
    this.failIfTold("listIpcache");
    return [...this.ipcache].map(([cidr, identity]) => {
      const tunnelEndpoint = this.tunnelEndpoints.get(cidr);
      return tunnelEndpoint ? { cidr, identity, tunnelEndpoint } : { cidr, identity };
    });
  }

  async upsertRemoteNode(node: RemoteNode): Promise<void> {
    this.record("upsertRemoteNode", `${node.name} ${node.ipv4} ${node.podCidrs.join(",")}`);
    this.failIfTold("upsertRemoteNode");
    this.remoteNodes.set(node.name, { ...node, podCidrs: [...node.podCidrs] });
  }

  async deleteRemoteNode(name: string): Promise<void> {
    this.record("deleteRemoteNode", name);
    this.failIfTold("deleteRemoteNode");
    this.remoteNodes.delete(name);
  }

  /** Events "the kernel" could not write; tests raise it to simulate a full ring. */
  eventsLost = 0;
  private eventHandlers = new Set<(record: Uint8Array) => void>();

  openEvents(onRecord: (record: Uint8Array) => void): DatapathEvents {
    this.eventHandlers.add(onRecord);
    return { lost: () => this.eventsLost, close: () => this.eventHandlers.delete(onRecord) };
  }

  /** Delivers one event record as the kernel ring would. */
  emitEvent(record: Uint8Array): void {
    for (const handler of this.eventHandlers) handler(record);
  }

  /** What "the kernel" counted in cilium_metrics; tests set it. */
  metricsCounters: MetricsCounter[] = [];

  async readMetrics(): Promise<MetricsCounter[]> {
    return this.metricsCounters.map((counter) => ({ ...counter }));
  }

  /** Map fill as "the kernel" holds it: the endpoints, the ipcache and the policy entries programmed. */
  async mapFill(): Promise<MapFill[]> {
    const policyEntries = [...this.policies.values()].reduce((n, policy) => n + policy.entries.length, 0);
    return [
      { map: "cilium_lxc", entries: this.programmed.size, maxEntries: 65535 },
      { map: "cilium_ipcache", entries: this.ipcache.size, maxEntries: 65536 },
      { map: "cilium_policy", entries: policyEntries, maxEntries: this.policyLimit ?? 65536 },
    ];
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

  /** The ipcache as a sorted list of "prefix identity". */
  ipcacheEntries(): string[] {
    return [...this.ipcache].map(([cidr, id]) => `${cidr} ${id}`).sort();
  }

  private record(method: DatapathCall, detail?: unknown): void {
    const call = detail === undefined ? method : `${method} ${detail}`;
    this.sequence.push(call);
    if (POLICY_CALLS.has(method) || NODE_CALLS.has(method)) return;
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
