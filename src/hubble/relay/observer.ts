/**
 * observer.Observer for the whole cluster: every call fans out to the nodes' Hubble servers and
 * answers as one. GetFlows merges the nodes' streams in time order and says which nodes took
 * part (node_status events, as upstream's relay does); ServerStatus and GetNodes add up and
 * list the nodes with their state.
 */
import { Metadata, status, type ClientReadableStream, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { compileFilterLists } from "../filters/index.ts";
import { badRequest, drained, wallNow } from "../server/observer.ts";
import { mergeFinished, SortBuffer, type RelayedResponse } from "./merge.ts";
import type { PeerPool, RelayPeer } from "./peers.ts";
import type { Timestamp } from "../flow/types.ts";

type Obj = Record<string, any>;

/** relay.NodeState */
const NodeState = { NODE_CONNECTED: 1, NODE_UNAVAILABLE: 2, NODE_GONE: 3 } as const;

/** How often a followed stream tries again to reach a node it lost or that joined. */
const FOLLOW_RETRY_MS = 1000;

export interface RelayObserverOptions {
  pool: Pick<PeerPool, "list" | "probe" | "subscribe">;
  version: string;
  sortBufferMaxLength: number;
  sortBufferDrainTimeoutMs: number;
  /** Deadline of the unary calls a relay makes to each node. */
  callTimeoutMs: number;
}

function nodeStatus(state: number, peers: readonly RelayPeer[], message?: string): RelayedResponse {
  return { node_status: { state_change: state, node_names: peers.map((p) => p.name), ...(message ? { message } : {}) }, time: wallNow() };
}

function unary(peer: RelayPeer, method: string, timeoutMs: number): Promise<Obj> {
  return new Promise((resolve, reject) =>
    peer.client[method]({}, { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))),
  );
}

export class RelayObserver {
  private readonly startedAt = process.hrtime.bigint();

  constructor(private readonly opts: RelayObserverOptions) {}

  async getFlows(call: ServerWritableStream<Obj, RelayedResponse>): Promise<void> {
    const ac = new AbortController();
    call.on("cancelled", () => ac.abort());
    call.sendMetadata(new Metadata());
    const send = async (response: RelayedResponse) => {
      if (!call.write(response)) await drained(call);
    };
    try {
      // A bad filter is the client's error, told once here rather than once per node.
      compileFilterLists(call.request.whitelist, call.request.blacklist);
      const { connected, unavailable } = await this.opts.pool.probe();
      if (connected.length) await send(nodeStatus(NodeState.NODE_CONNECTED, connected));
      if (unavailable.length) await send(nodeStatus(NodeState.NODE_UNAVAILABLE, unavailable, "the node's Hubble server is not reachable"));
      if (call.request.follow) await this.follow(call.request, connected, send, ac.signal);
      else await this.finished(call.request, connected, send, ac.signal);
      if (!ac.signal.aborted) call.end();
    } catch (err) {
      if (ac.signal.aborted) return;
      call.emit("error", { code: badRequest(err) ? status.INVALID_ARGUMENT : status.INTERNAL, details: (err as Error).message });
    }
  }

  private async finished(request: Obj, peers: RelayPeer[], send: (r: RelayedResponse) => Promise<void>, signal: AbortSignal): Promise<void> {
    const failed: RelayPeer[] = [];
    const batches = await Promise.all(
      peers.map(
        (peer) =>
          new Promise<RelayedResponse[]>((resolve) => {
            const out: RelayedResponse[] = [];
            const stream: ClientReadableStream<RelayedResponse> = peer.client.GetFlows(request);
            signal.addEventListener("abort", () => stream.cancel(), { once: true });
            stream.on("data", (r: RelayedResponse) => out.push(r));
            stream.on("end", () => resolve(out));
            stream.on("error", () => {
              failed.push(peer);
              resolve(out);
            });
          }),
      ),
    );
    if (failed.length) await send(nodeStatus(NodeState.NODE_UNAVAILABLE, failed, "the node's stream failed"));
    for (const response of mergeFinished(batches.flat(), Number(request.number ?? 0), request.first === true)) {
      if (signal.aborted) return;
      await send(response);
    }
  }

  /**
   * A followed query spans the cluster as it changes: a node that joins, or comes back after its
   * stream failed, is followed from then on (from just after the last flow it sent, so nothing is
   * repeated), and one the Peer service removes is reported gone.
   */
  private async follow(request: Obj, peers: RelayPeer[], send: (r: RelayedResponse) => Promise<void>, signal: AbortSignal): Promise<void> {
    const buffer = new SortBuffer(this.opts.sortBufferMaxLength, this.opts.sortBufferDrainTimeoutMs);
    const streams = new Map<RelayPeer, ClientReadableStream<RelayedResponse>>();
    /** Peers to (re)connect, with the earliest time to try. */
    const waiting = new Map<RelayPeer, number>();
    const lastFlow = new Map<string, Timestamp>();
    const events: RelayedResponse[] = [];
    let wake: (() => void) | undefined;
    const poke = () => {
      wake?.();
      wake = undefined;
    };
    const open = (peer: RelayPeer, query: Obj) => {
      const stream: ClientReadableStream<RelayedResponse> = peer.client.GetFlows(query);
      streams.set(peer, stream);
      stream.on("data", (r: RelayedResponse) => {
        if (r.time && (r.flow || r.lost_events)) lastFlow.set(peer.name, r.time);
        buffer.push(r);
        // Bound what waits here: a slow client slows the nodes' streams, not our memory.
        if (buffer.length > 4 * this.opts.sortBufferMaxLength) for (const s of streams.values()) s.pause();
        poke();
      });
      const lost = (message: string) => {
        if (signal.aborted || streams.get(peer) !== stream) return;
        streams.delete(peer);
        waiting.set(peer, Date.now() + FOLLOW_RETRY_MS);
        events.push(nodeStatus(NodeState.NODE_UNAVAILABLE, [peer], message));
        poke();
      };
      stream.on("error", (err: ServiceError) => lost(`the node's stream failed: ${err.details || err.message}`));
      stream.on("end", () => lost("the node ended its stream"));
    };
    const rejoin = async (peer: RelayPeer) => {
      waiting.delete(peer);
      const ready = await new Promise<boolean>((resolve) => peer.client.waitForReady(Date.now() + this.opts.callTimeoutMs, (err) => resolve(!err)));
      if (signal.aborted || !this.opts.pool.list().includes(peer)) return;
      if (!ready) {
        waiting.set(peer, Date.now() + FOLLOW_RETRY_MS);
        return;
      }
      // Only what the client has not seen: after this node's last flow, or from now on.
      const last = lastFlow.get(peer.name);
      open(peer, { ...request, number: 0, first: false, ...(last ? { since: justAfter(last) } : {}) });
      events.push(nodeStatus(NodeState.NODE_CONNECTED, [peer]));
      poke();
    };
    for (const peer of peers) open(peer, request);
    for (const peer of this.opts.pool.list()) if (!streams.has(peer)) waiting.set(peer, Date.now() + FOLLOW_RETRY_MS);
    const unsubscribe = this.opts.pool.subscribe((peer, change) => {
      if (change === "added") {
        waiting.set(peer, 0);
      } else {
        waiting.delete(peer);
        const stream = streams.get(peer);
        streams.delete(peer);
        stream?.cancel();
        events.push(nodeStatus(NodeState.NODE_GONE, [peer], "the node left the cluster"));
      }
      poke();
    });
    signal.addEventListener("abort", () => {
      unsubscribe();
      for (const s of streams.values()) s.cancel();
      poke();
    });
    const tick = Math.max(10, Math.min(100, this.opts.sortBufferDrainTimeoutMs / 2));
    while (!signal.aborted) {
      const now = Date.now();
      for (const [peer, at] of waiting) if (at <= now) void rejoin(peer);
      for (const event of events.splice(0)) await send(event);
      for (const response of buffer.takeDue()) {
        if (signal.aborted) return;
        await send(response);
      }
      if (buffer.length <= this.opts.sortBufferMaxLength) for (const s of streams.values()) if (s.isPaused()) s.resume();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, tick);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async serverStatus(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): Promise<void> {
    const { connected, unavailable } = await this.opts.pool.probe();
    const statuses = await Promise.allSettled(connected.map((peer) => unary(peer, "ServerStatus", this.opts.callTimeoutMs)));
    const down = [...unavailable, ...connected.filter((_, i) => statuses[i]!.status === "rejected")];
    const sum = (field: string) => statuses.reduce((n, s) => n + (s.status === "fulfilled" ? Number(s.value[field] ?? 0) : 0), 0);
    callback(null, {
      num_flows: sum("num_flows"),
      max_flows: sum("max_flows"),
      seen_flows: sum("seen_flows"),
      flows_rate: sum("flows_rate"),
      uptime_ns: Number(process.hrtime.bigint() - this.startedAt),
      num_connected_nodes: { value: connected.length + unavailable.length - down.length },
      num_unavailable_nodes: { value: down.length },
      unavailable_nodes: down.map((p) => p.name).sort(),
      version: this.opts.version,
    });
  }

  async getNodes(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): Promise<void> {
    const { connected } = await this.opts.pool.probe();
    const up = new Set(connected);
    const nodes = await Promise.all(
      this.opts.pool.list().map(async (peer) => {
        const base = { name: peer.name, address: peer.address, tls: { enabled: peer.tlsServerName !== undefined, server_name: peer.tlsServerName ?? "" } };
        if (!up.has(peer)) return { ...base, state: NodeState.NODE_UNAVAILABLE };
        try {
          const s = await unary(peer, "ServerStatus", this.opts.callTimeoutMs);
          return { ...base, state: NodeState.NODE_CONNECTED, version: s.version, uptime_ns: s.uptime_ns, num_flows: s.num_flows, max_flows: s.max_flows, seen_flows: s.seen_flows };
        } catch {
          return { ...base, state: NodeState.NODE_UNAVAILABLE };
        }
      }),
    );
    callback(null, { nodes });
  }

  async getNamespaces(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): Promise<void> {
    const { connected } = await this.opts.pool.probe();
    const answers = await Promise.allSettled(connected.map((peer) => unary(peer, "GetNamespaces", this.opts.callTimeoutMs)));
    const seen = new Map<string, { cluster: string; namespace: string }>();
    for (const answer of answers) {
      if (answer.status !== "fulfilled") continue;
      for (const ns of (answer.value.namespaces ?? []) as { cluster: string; namespace: string }[]) seen.set(`${ns.cluster}/${ns.namespace}`, ns);
    }
    callback(null, { namespaces: [...seen.values()].sort((a, b) => a.cluster.localeCompare(b.cluster) || a.namespace.localeCompare(b.namespace)) });
  }

  implementation(): UntypedServiceImplementation {
    return {
      GetFlows: (call: ServerWritableStream<Obj, RelayedResponse>) => void this.getFlows(call),
      ServerStatus: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void this.serverStatus(call, cb),
      GetNodes: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void this.getNodes(call, cb),
      GetNamespaces: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void this.getNamespaces(call, cb),
    };
  }
}

/** One nanosecond after `t`: `since` is inclusive. */
function justAfter(t: Timestamp): Timestamp {
  const nanos = Number(t.nanos ?? 0) + 1;
  const seconds = Number(t.seconds ?? 0);
  return nanos >= 1e9 ? { seconds: seconds + 1, nanos: nanos - 1e9 } : { seconds, nanos };
}
