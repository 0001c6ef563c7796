/**
 * This agent's presence in etcd: one lease, renewed on a heartbeat, under which every key the
 * agent owns is written (its node, its endpoints, its claims on identities), so that an agent
 * that dies takes them with it when the lease lapses.
 *
 * The session also decides whether etcd is reachable. A failed heartbeat makes it "unreachable";
 * the next one that succeeds makes it "ok" again and runs every reconnect handler (re-register
 * the node, re-publish endpoints and identity claims, re-list watched prefixes), with a new lease
 * when the old one expired meanwhile. Handlers must be idempotent: they may run after outages
 * that lost nothing.
 */
import type { Logger } from "../../logging/index.ts";
import type { EtcdClient } from "./client.ts";

export type SessionState = "connecting" | "ok" | "unreachable";

export type ReconnectHandler = (lease: string) => Promise<void>;

export class EtcdUnreachableError extends Error {
  constructor(detail: string) {
    super(`the kvstore (etcd) is unreachable: ${detail}`);
    this.name = "EtcdUnreachableError";
  }
}

export class EtcdSession {
  private leaseId: string | undefined;
  private current: SessionState = "connecting";
  /** When etcd was last found unreachable after being reachable (or when the session started). */
  private downSince = Date.now();
  private lastError = "not connected yet";
  private readonly handlers: ReconnectHandler[] = [];
  private readonly stateListeners: ((state: SessionState, message: string) => void)[] = [];
  /** Handlers still owe a run (an outage, or one of them failed). */
  private handlersDue = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private beating: Promise<void> | undefined;

  constructor(
    readonly client: EtcdClient,
    readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  get state(): SessionState {
    return this.current;
  }

  /** Since when etcd has been unreachable (ms since the epoch), or undefined while it is reachable. */
  get unreachableSince(): number | undefined {
    return this.current === "ok" ? undefined : this.downSince;
  }

  /** The lease to put owned keys under; throws EtcdUnreachableError while etcd is unreachable. */
  lease(): string {
    if (this.current !== "ok" || this.leaseId === undefined) throw new EtcdUnreachableError(this.lastError);
    return this.leaseId;
  }

  /** "ok" with the endpoints and lease, or why etcd is unreachable. */
  describe(): string {
    if (this.current === "ok") return `etcd: ${this.client.endpoints.join(", ")}, lease ${BigInt(this.leaseId!).toString(16)} (ttl ${this.ttlMs / 1000}s)`;
    return `etcd: ${this.client.endpoints.join(", ")}: ${this.current === "connecting" ? "connecting" : "unreachable"}: ${this.lastError}`;
  }

  /** Runs after each (re)connection, in registration order. */
  onReconnect(handler: ReconnectHandler): void {
    this.handlers.push(handler);
  }

  onStateChange(listener: (state: SessionState, message: string) => void): void {
    this.stateListeners.push(listener);
  }

  /**
   * Takes the first lease; waits up to `timeoutMs` for etcd, then answers with the session
   * "unreachable" and the heartbeat still trying (the agent runs on with what it has).
   */
  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.handlersDue = true;
    while (!this.stopped) {
      await this.heartbeat();
      if (this.current === "ok" || Date.now() >= deadline) break;
      await Bun.sleep(Math.min(500, Math.max(0, deadline - Date.now())));
    }
    this.schedule();
  }

  /** A failure another part of the agent saw: etcd is unreachable until the next heartbeat succeeds. */
  reportFailure(error: unknown): void {
    if (this.current === "ok") this.setState("unreachable", error instanceof Error ? error.message : String(error));
    this.handlersDue = true;
  }

  /** Stops the heartbeat. The lease is left to lapse: the node's pods keep running while the agent restarts. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating;
  }

  /** For a node going away for good: its keys go at once. */
  async revoke(): Promise<void> {
    await this.stop();
    if (this.leaseId) await this.client.revokeLease(this.leaseId);
  }

  private schedule(): void {
    if (this.stopped) return;
    const interval = Math.max(300, Math.min(this.ttlMs / 3, 2000));
    this.timer = setTimeout(() => {
      this.beating = this.heartbeat().finally(() => this.schedule());
    }, interval);
  }

  private async heartbeat(): Promise<void> {
    try {
      let renewed = false;
      if (this.leaseId !== undefined) renewed = (await this.client.keepAlive(this.leaseId)) > 0;
      if (!renewed) {
        if (this.leaseId !== undefined) this.log.warn(`lease ${this.leaseId} expired: taking a new one and re-publishing this node's state`);
        this.leaseId = await this.client.grantLease(Math.ceil(this.ttlMs / 1000));
        this.handlersDue = true;
      }
      if (this.current !== "ok") this.handlersDue = true;
      if (this.handlersDue) {
        // Reachable, but not "ok" until the state is re-published: lease() refuses meanwhile.
        const lease = this.leaseId!;
        this.current = "ok";
        for (const handler of this.handlers) await handler(lease);
        this.handlersDue = false;
        this.setState("ok", "");
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.handlersDue = true;
      this.setState("unreachable", message);
    }
  }

  private setState(state: SessionState, message: string): void {
    if (state !== "ok") this.lastError = message;
    if (state !== "ok" && this.current === "ok") this.downSince = Date.now();
    this.current = state;
    if (state === this.announced) return;
    if (state === "ok") this.log.info(`connected to etcd (${this.client.endpoints.join(", ")})`);
    else this.log.warn(`etcd is unreachable: ${message}`);
    this.announced = state;
    for (const listener of this.stateListeners) listener(state, message);
  }

  private announced: SessionState | undefined;
}
