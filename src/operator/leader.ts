/**
 * Leader election among operator replicas over etcd: the leader holds one key under its own
 * lease. A replica takes the key only while it does not exist (a transaction), renews its lease
 * every retry period, and steps down as soon as it cannot be sure it still holds the key (a
 * renewal failed for longer than the renew deadline, or the key is no longer its own). When the
 * leader dies its lease lapses after the lease duration and a standby takes over on its next try.
 */
import type { Logger } from "../logging/index.ts";
import type { EtcdClient } from "../kvstore/etcd/client.ts";

export const OPERATOR_LEADER_KEY = "cilium/operator/leader";

export interface LeaderElectionOptions {
  client: EtcdClient;
  /** This replica's identity, written as the key's value. */
  id: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Pick<Logger, "info" | "warn">;
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

export class LeaderElection {
  private lease: string | undefined;
  private leading = false;
  private lastRenewal = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: LeaderElectionOptions) {
    if (opts.renewDeadlineMs >= opts.leaseDurationMs) throw new Error("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration");
    if (opts.retryPeriodMs >= opts.renewDeadlineMs) throw new Error("--leader-election-retry-period must be shorter than --leader-election-renew-deadline");
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops campaigning; a leader gives the key up at once so a standby need not wait for the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leading) this.stepDown("stopping");
    if (this.lease) await this.opts.client.revokeLease(this.lease).catch(() => undefined);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => this.schedule(this.opts.retryPeriodMs));
    }, delay);
  }

  private async round(): Promise<void> {
    const { client, id } = this.opts;
    try {
      if (this.lease !== undefined && (await client.keepAlive(this.lease)) <= 0) {
        this.lease = undefined;
        if (this.leading) this.stepDown("its lease expired");
      }
      this.lease ??= await client.grantLease(Math.ceil(this.opts.leaseDurationMs / 1000));
      this.lastRenewal = Date.now();
      if (this.leading) {
        const holder = await client.get(OPERATOR_LEADER_KEY);
        if (holder?.value !== id) this.stepDown(`the leader key now names ${holder?.value ?? "nobody"}`);
        return;
      }
      const won = await client.txn(
        [{ key: OPERATOR_LEADER_KEY, target: "create", result: "equal", revision: 0 }],
        [{ put: { key: OPERATOR_LEADER_KEY, value: id, lease: this.lease } }],
      );
      if (won.succeeded && !this.stopped) {
        this.leading = true;
        this.opts.log.info(`operator ${id} is now the leader`);
        this.opts.onStartedLeading();
      }
    } catch (error) {
      if (this.leading && Date.now() - this.lastRenewal > this.opts.renewDeadlineMs) {
        this.stepDown(`no renewal for ${this.opts.renewDeadlineMs} ms: ${(error as Error).message}`);
      }
    }
  }

  private stepDown(why: string): void {
    this.leading = false;
    this.opts.log.warn(`operator ${this.opts.id} stopped leading: ${why}`);
    this.opts.onStoppedLeading();
  }
}
