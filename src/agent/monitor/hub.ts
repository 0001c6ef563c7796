/**
 * The agent's one reader of the datapath's event ring, fanned out to its consumers (the Hubble
 * observer, `cilium monitor` clients). Losses are reported, never hidden: events the kernel
 * could not write (ring full) reach every listener as onLost counts.
 */
import type { DatapathEvents, EndpointDatapath } from "../endpoint/datapath.ts";
import type { Logger } from "../../logging/index.ts";

export interface MonitorListener {
  /** One record (bpf/lib/events.h layout); the listener may keep it. */
  onRecord(record: Uint8Array): void;
  /** `count` events the datapath produced but could not deliver (its ring was full). */
  onLost(count: number): void;
}

/** What consumers see of the hub. */
export interface MonitorEvents {
  /** Starts delivering to `listener`; call the returned function to stop. */
  subscribe(listener: MonitorListener): () => void;
}

export interface MonitorHubOptions {
  datapath: Pick<EndpointDatapath, "openEvents">;
  log: Logger;
  /** How often the kernel's lost-event counter is read (default 1 s). */
  lostPollMs?: number;
}

export class MonitorHub implements MonitorEvents {
  private readonly listeners = new Set<MonitorListener>();
  private readonly events: DatapathEvents;
  private readonly lostTimer: ReturnType<typeof setInterval>;
  private readonly lostAtStart: number;
  private lostSeen: number;
  private records = 0;

  constructor(private readonly options: MonitorHubOptions) {
    this.events = options.datapath.openEvents((record) => {
      this.records++;
      for (const listener of this.listeners) this.deliver(listener, record);
    });
    // Losses from before this agent started are not this run's to report.
    this.lostAtStart = this.lostSeen = this.events.lost();
    this.lostTimer = setInterval(() => this.pollLost(), options.lostPollMs ?? 1000);
  }

  subscribe(listener: MonitorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records read, and events lost in the kernel (as of the last poll), since the hub started. */
  get stats(): { records: number; lost: number } {
    return { records: this.records, lost: this.lostSeen - this.lostAtStart };
  }

  close(): void {
    clearInterval(this.lostTimer);
    this.events.close();
    this.listeners.clear();
  }

  private pollLost(): void {
    let now: number;
    try {
      now = this.events.lost();
    } catch (error) {
      this.options.log.warn("cannot read the datapath's lost-event counter", error);
      return;
    }
    const lost = now - this.lostSeen;
    if (lost <= 0) return;
    this.lostSeen = now;
    for (const listener of this.listeners) {
      try {
        listener.onLost(lost);
      } catch (error) {
        this.options.log.warn("a monitor listener failed", error);
      }
    }
  }

  private deliver(listener: MonitorListener, record: Uint8Array): void {
    try {
      listener.onRecord(record);
    } catch (error) {
      this.options.log.warn("a monitor listener failed", error);
    }
  }
}
