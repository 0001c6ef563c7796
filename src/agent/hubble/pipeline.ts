/**
 * From monitor records to stored flows, synchronously in the monitor hub's callback: no queue
 * in between, so nothing can overflow here. Events the kernel could not deliver (its ring was
 * full) become lost-event entries in the flow ring, in order with the flows, so every GetFlows
 * reader sees the gap. Records of other event types are counted, not stored; records that do
 * not decode are counted and logged.
 */
import type { Logger } from "../../logging/index.ts";
import type { FlowFacts } from "../../hubble/flow/facts.ts";
import { MonitorEventType, timestampFromNanos } from "../../hubble/flow/types.ts";
import { monotonicNs } from "../../datapath/clock.ts";
import { EventRecordError, FlowParser, monotonicToWall, RecentEndpoints, recordSeconds } from "../../hubble/parser/index.ts";
import { FlowRing, LostEventSource } from "../../hubble/ring.ts";
import type { MonitorListener } from "../monitor/index.ts";
import { AgentEndpointResolver, type AgentResolverSources } from "./resolver.ts";

/** Gets each stored flow as its facts, decoded on demand from the record (building the whole Flow costs more than storing it). */
export type FlowListener = (flow: FlowFacts) => void;

export interface FlowPipelineStats {
  /** Flows stored since start. */
  flows: number;
  /** Events the kernel reported lost (each also a lost-event entry in the ring). */
  lost: number;
  /** Records of event types that are not flows. */
  ignored: number;
  /** Records that could not be decoded. */
  invalid: number;
}

const RATE_WINDOW_S = 60;

/** Flows per second over the last minute, from per-second counts. */
class RateWindow {
  private readonly counts = new Float64Array(RATE_WINDOW_S);
  private readonly seconds = new Float64Array(RATE_WINDOW_S).fill(-1);

  add(second: number): void {
    const slot = second % RATE_WINDOW_S;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts[slot] = 0;
    }
    this.counts[slot]!++;
  }

  perSecond(now: number): number {
    let sum = 0;
    for (let i = 0; i < RATE_WINDOW_S; i++) if (now - this.seconds[i]! < RATE_WINDOW_S) sum += this.counts[i]!;
    return sum / RATE_WINDOW_S;
  }
}

export interface FlowPipelineOptions {
  ring: FlowRing;
  parser: FlowParser;
  log: Logger;
  /** Wall clock in ms, for lost-event times (tests). */
  now?: () => number;
  /** CLOCK_MONOTONIC seconds, the records' clock, for the flow rate. */
  monotonicSeconds: () => number;
}

export class FlowPipeline implements MonitorListener {
  private readonly listeners = new Set<FlowListener>();
  private readonly counts: FlowPipelineStats = { flows: 0, lost: 0, ignored: 0, invalid: 0 };
  private readonly rate = new RateWindow();
  private readonly now: () => number;
  private readonly monotonicSeconds: () => number;

  constructor(private readonly options: FlowPipelineOptions) {
    this.now = options.now ?? Date.now;
    this.monotonicSeconds = options.monotonicSeconds;
  }

  onRecord(record: Uint8Array): void {
    const type = record[0];
    if (type !== MonitorEventType.DROP && type !== MonitorEventType.TRACE && type !== MonitorEventType.POLICY_VERDICT) {
      this.counts.ignored++;
      return;
    }
    let event;
    try {
      event = this.options.parser.ingest(record);
    } catch (error) {
      if (!(error instanceof EventRecordError)) throw error;
      // The first one says what is wrong; the count says how often.
      if (this.counts.invalid++ === 0) this.options.log.warn(`undecodable monitor record: ${error.message}`);
      return;
    }
    this.options.ring.store(event);
    this.counts.flows++;
    // By the record's own timestamp: reading a clock per flow costs more than the rest of ingest.
    this.rate.add(recordSeconds(record));
    if (this.listeners.size === 0) return;
    const flow = event.facts();
    for (const listener of this.listeners) {
      try {
        listener(flow);
      } catch (error) {
        this.options.log.warn("a flow listener failed", error);
      }
    }
  }

  onLost(count: number): void {
    this.counts.lost += count;
    this.options.ring.writeLost({ source: LostEventSource.PERF_EVENT_RING_BUFFER, count, time: timestampFromNanos(BigInt(this.now()) * 1_000_000n) });
  }

  /** Every parsed flow as it is stored, as its facts; call the returned function to stop. */
  onFlow(listener: FlowListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get stats(): FlowPipelineStats {
    return { ...this.counts };
  }

  /** Flows per second over the last minute (ServerStatus flows_rate). */
  flowsRate(): number {
    return this.rate.perSecond(this.monotonicSeconds());
  }
}

export interface AgentFlowPathOptions {
  nodeName: string;
  /** Ring capacity (2^n-1). */
  capacity: number;
  sources: AgentResolverSources;
  log: Logger;
}

/**
 * The agent's ingest path, as the daemon runs it (and the benchmark measures it): the resolver
 * over the agent's caches, with a memory of deleted endpoints for their late flows, the parser
 * on the kernel's clock, the ring and the pipeline.
 */
export function agentFlowPath(options: AgentFlowPathOptions): { pipeline: FlowPipeline; parser: FlowParser; ring: FlowRing; close(): void } {
  let recent: RecentEndpoints | undefined;
  const resolver = new AgentEndpointResolver(options.sources, (ip, info) => recent?.endpointDeleted(ip, info));
  // The resolver reports every deletion, so lookups need not be remembered one by one.
  recent = new RecentEndpoints(resolver, { rememberLookups: false });
  const parser = new FlowParser({ nodeName: options.nodeName, resolver: recent, clock: monotonicToWall(monotonicNs) });
  const ring = new FlowRing(options.capacity);
  const pipeline = new FlowPipeline({ ring, parser, log: options.log, monotonicSeconds: () => Number(monotonicNs() / 1_000_000_000n) });
  return { pipeline, parser, ring, close: () => resolver.close() };
}
