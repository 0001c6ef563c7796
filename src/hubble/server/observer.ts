/**
 * The observer.Observer handlers over one node's flow ring: GetFlows (filters, number/first,
 * since/until, follow), ServerStatus, GetNodes and GetNamespaces. GetAgentEvents and
 * GetDebugEvents are left to grpc-js, which answers UNIMPLEMENTED.
 */
import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { compileFilterLists, FilterError, type FlowFilter } from "../filters/index.ts";
import { LabelSelectorError } from "../filters/label-selector.ts";
import { timestampFromNanos, type Timestamp } from "../flow/types.ts";
import { queryFlows, QueryError, type QueryEvent } from "../query.ts";
import type { FlowRing } from "../ring.ts";

/** relay.NodeState.NODE_CONNECTED */
const NODE_CONNECTED = 1;

export interface ObserverOptions {
  ring: FlowRing;
  nodeName: string;
  version: string;
  clusterName?: string;
  /** The address GetNodes reports for this node (e.g. "10.0.0.5:4244"). */
  address?: string;
  now?: () => Timestamp;
  startedAt?: bigint;
  /** Flows per second over the last minute, for ServerStatus (default 0). */
  flowsRate?: () => number;
  /** Whether the TCP listener speaks TLS, for GetNodes. */
  tlsEnabled?: boolean;
}

interface GetFlowsRequest {
  number?: number;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  since?: Timestamp;
  until?: Timestamp;
}

export const wallNow = (): Timestamp => timestampFromNanos(BigInt(Date.now()) * 1_000_000n);

/** Resolves when the stream can take more (write() returned false: wait for 'drain'), or it ends. */
export function drained(call: ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
  });
}

export function badRequest(err: unknown): boolean {
  return err instanceof FilterError || err instanceof QueryError || err instanceof LabelSelectorError;
}

export class Observer {
  private readonly now: () => Timestamp;
  private readonly startedAt: bigint;

  constructor(private readonly opts: ObserverOptions) {
    this.now = opts.now ?? wallNow;
    this.startedAt = opts.startedAt ?? process.hrtime.bigint();
  }

  private response(e: QueryEvent) {
    const base = { node_name: this.opts.nodeName };
    if (e.flow) return { ...base, flow: e.flow, time: e.flow.time };
    return { ...base, lost_events: { source: e.lost.source, num_events_lost: e.lost.count }, time: e.lost.time };
  }

  async getFlows(call: ServerWritableStream<GetFlowsRequest, unknown>): Promise<void> {
    const req = call.request;
    const ac = new AbortController();
    call.on("cancelled", () => ac.abort());
    // Headers go out first, so an empty result is not a trailers-only response: Bun's HTTP/2
    // client (our own CLI and relay run on it) never delivers those.
    call.sendMetadata(new Metadata());
    try {
      const matches = compileFilterLists(req.whitelist, req.blacklist);
      const query = { number: req.number, first: req.first, follow: req.follow, since: req.since ?? undefined, until: req.until ?? undefined };
      for await (const event of queryFlows(this.opts.ring, query, { matches, signal: ac.signal, now: this.now })) {
        if (!call.write(this.response(event))) await drained(call);
        if (ac.signal.aborted) return;
      }
      // A cancelled call is already closed; only a finished query ends the stream.
      if (!ac.signal.aborted) call.end();
    } catch (err) {
      const code = badRequest(err) ? status.INVALID_ARGUMENT : status.INTERNAL;
      call.emit("error", { code, details: (err as Error).message });
    }
  }

  private uptimeNs(): number {
    return Number(process.hrtime.bigint() - this.startedAt);
  }

  serverStatus(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void {
    const { ring } = this.opts;
    callback(null, {
      num_flows: ring.length,
      max_flows: ring.capacity,
      seen_flows: ring.written,
      uptime_ns: this.uptimeNs(),
      version: this.opts.version,
      flows_rate: this.opts.flowsRate?.() ?? 0,
    });
  }

  getNodes(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void {
    const { ring } = this.opts;
    callback(null, {
      nodes: [
        {
          name: this.opts.nodeName,
          version: this.opts.version,
          address: this.opts.address ?? "",
          state: NODE_CONNECTED,
          tls: { enabled: this.opts.tlsEnabled === true },
          uptime_ns: this.uptimeNs(),
          num_flows: ring.length,
          max_flows: ring.capacity,
          seen_flows: ring.written,
        },
      ],
    });
  }

  /** Namespaces of the endpoints in the flows the ring holds, sorted. */
  getNamespaces(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void {
    const { ring } = this.opts;
    const seen = new Set<string>();
    const add = (namespace: string | undefined) => namespace && seen.add(namespace);
    for (let i = ring.oldest; i < ring.next; i++) {
      const entry = ring.at(i);
      if (entry === undefined || entry.lost) continue;
      const [source, destination] = entry.namespaces?.() ?? [entry.flow.source?.namespace, entry.flow.destination?.namespace];
      add(source);
      add(destination);
    }
    const cluster = this.opts.clusterName ?? "default";
    callback(null, { namespaces: [...seen].sort().map((namespace) => ({ cluster, namespace })) });
  }

  implementation(): UntypedServiceImplementation {
    return {
      GetFlows: (call: ServerWritableStream<GetFlowsRequest, unknown>) => void this.getFlows(call),
      ServerStatus: this.serverStatus.bind(this),
      GetNodes: this.getNodes.bind(this),
      GetNamespaces: this.getNamespaces.bind(this),
    };
  }
}
