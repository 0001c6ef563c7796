/**
 * The agent's periodic conntrack and masquerade garbage collection (src/datapath/conntrack-gc.ts
 * does one pass). As upstream: --conntrack-gc-interval fixes the interval; 0 (the default) makes
 * it dynamic, starting at 5 minutes, shrinking when a pass deleted much of the table (down to
 * 10 s) and growing when it deleted little (up to --conntrack-gc-max-interval, default 12 h).
 */
import type { Logger } from "../logging/index.ts";
import { collectConntrackGarbage, openConntrackMaps, type ConntrackMaps, type GcPassStats } from "../datapath/conntrack-gc.ts";
import type { ConntrackGcStatus } from "./api/types.ts";
import { errorMessage } from "./errors.ts";

export const GC_STARTING_INTERVAL_MS = 5 * 60_000;
export const GC_MIN_INTERVAL_MS = 10_000;
export const GC_DEFAULT_MAX_INTERVAL_MS = 12 * 3_600_000;

export interface ConntrackGcOptions {
  bpfRoot: string;
  /** Fixed interval; 0: dynamic. */
  intervalMs: number;
  /** Ceiling of the dynamic interval; 0: 12 h. */
  maxIntervalMs: number;
  log: Logger;
  /** The maps to collect (tests); by default the node's pinned maps under bpfRoot. */
  open?: () => ConntrackMaps;
}

/**
 * The interval after a pass that deleted `deleteRatio` of the conntrack table: a busy table is
 * visited sooner, a quiet one later. Whole seconds.
 */
export function nextGcInterval(previousMs: number, deleteRatio: number, maxMs: number): number {
  let next = previousMs;
  if (deleteRatio > 0.25) next = previousMs * (1 - Math.min(deleteRatio, 0.9));
  else if (deleteRatio < 0.05) next = previousMs * 1.5;
  const bounded = Math.min(Math.max(next, GC_MIN_INTERVAL_MS), Math.max(maxMs, GC_MIN_INTERVAL_MS));
  return Math.round(bounded / 1000) * 1000;
}

export class ConntrackGc {
  private maps: ConntrackMaps | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private intervalMs: number;
  private readonly maxMs: number;
  private runs = 0;
  private totalDeleted = 0;
  private last: (GcPassStats & { at: string }) | undefined;
  private lastError: string | undefined;

  constructor(private readonly options: ConntrackGcOptions) {
    this.intervalMs = options.intervalMs > 0 ? options.intervalMs : GC_STARTING_INTERVAL_MS;
    this.maxMs = options.maxIntervalMs > 0 ? options.maxIntervalMs : GC_DEFAULT_MAX_INTERVAL_MS;
  }

  start(): void {
    this.schedule();
  }

  /** Stops the timer and closes the maps (their entries stay). Idempotent. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.maps?.close();
    this.maps = undefined;
  }

  /** One pass now; the timer goes on as it was. */
  run(): GcPassStats {
    this.maps ??= (this.options.open ?? (() => openConntrackMaps(this.options.bpfRoot)))();
    const stats = collectConntrackGarbage(this.maps);
    this.runs++;
    this.totalDeleted += stats.ctDeleted + stats.natDeleted;
    this.last = { ...stats, at: new Date().toISOString() };
    this.lastError = undefined;
    return stats;
  }

  status(): ConntrackGcStatus {
    const status: ConntrackGcStatus = {
      interval: `${this.intervalMs / 1000}s`,
      dynamic: this.options.intervalMs === 0,
      runs: this.runs,
      "total-deleted": this.totalDeleted,
    };
    if (this.last) {
      status["last-run"] = this.last.at;
      status.last = { "ct-entries": this.last.ctEntries, "ct-deleted": this.last.ctDeleted, "nat-entries": this.last.natEntries, "nat-deleted": this.last.natDeleted };
    }
    if (this.lastError) status.error = this.lastError;
    return status;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    // The API server keeps the agent alive; the collector alone must not.
    this.timer.unref?.();
  }

  private tick(): void {
    const { log } = this.options;
    try {
      const stats = this.run();
      if (stats.ctDeleted + stats.natDeleted > 0) {
        log.info(`conntrack GC: deleted ${stats.ctDeleted} of ${stats.ctEntries} conntrack entries and ${stats.natDeleted} of ${stats.natEntries} NAT entries`);
      }
      if (this.options.intervalMs === 0) {
        this.intervalMs = nextGcInterval(this.intervalMs, stats.ctEntries === 0 ? 0 : stats.ctDeleted / stats.ctEntries, this.maxMs);
      }
    } catch (error) {
      this.lastError = errorMessage(error);
      log.warn(`conntrack GC failed: ${this.lastError}`);
      // The maps may have been replaced (datapath reloaded): open them afresh next time.
      this.maps?.close();
      this.maps = undefined;
    }
    if (this.timer !== undefined) this.schedule();
  }
}
