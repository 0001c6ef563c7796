/**
 * A live copy of every key under a prefix: listed once, then followed by a watch from the
 * listing's revision, so no change falls between the two. When the watch breaks (etcd went
 * away) the copy is re-listed until etcd answers, and the difference against what the handler
 * was last told comes out as upserts and deletes: the handler sees each key's changes in order
 * and, after an outage, exactly what changed meanwhile.
 */
import type { Watcher } from "etcd3";
import type { Logger } from "../../logging/index.ts";
import type { EtcdClient } from "./client.ts";

export interface PrefixHandler {
  /** A key appeared or changed. `key` is relative to the prefix. */
  upsert(key: string, value: string, modRevision: number): Promise<void> | void;
  /** A key went away (deleted, or its lease lapsed); `value` is the last one seen. */
  delete(key: string, value: string): Promise<void> | void;
}

const RELIST_INTERVAL_MS = 1000;

export class PrefixWatch {
  /** What the handler was last told, by relative key. */
  readonly entries = new Map<string, string>();
  private watcher: Watcher | undefined;
  /** Bumped on every (re)watch: events of an older watcher are ignored. */
  private generation = 0;
  private queue: Promise<void> = Promise.resolve();
  private relistTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private synced = false;

  constructor(
    private readonly client: EtcdClient,
    readonly prefix: string,
    private readonly handler: PrefixHandler,
    private readonly log: Logger,
  ) {}

  /** Whether the copy follows etcd now (false during an outage). */
  get inSync(): boolean {
    return this.synced;
  }

  /** The first listing; throws when etcd is unreachable (the watch then keeps trying on its own). */
  async start(): Promise<void> {
    try {
      await this.relist();
    } catch (error) {
      this.scheduleRelist();
      throw error;
    }
  }

  /** Lists again now (after a reconnection), unless closed. */
  async resync(): Promise<void> {
    if (this.closed) return;
    await this.relist();
  }

  /** Resolves once every change seen so far has reached the handler. */
  drained(): Promise<void> {
    return this.queue;
  }

  close(): void {
    this.closed = true;
    this.generation++;
    if (this.relistTimer) clearTimeout(this.relistTimer);
    void this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
  }

  private async relist(): Promise<void> {
    const generation = ++this.generation;
    if (this.relistTimer) clearTimeout(this.relistTimer);
    const old = this.watcher;
    this.watcher = undefined;
    void old?.cancel().catch(() => undefined);
    this.synced = false;
    const { entries, revision } = await this.client.range(this.prefix);
    if (generation !== this.generation) return;
    const listed = new Map(entries.map((e) => [e.key.slice(this.prefix.length), e]));
    this.enqueue(async () => {
      for (const [key, value] of [...this.entries]) {
        if (!listed.has(key)) await this.apply(key, undefined, value);
      }
      for (const [key, entry] of listed) {
        if (this.entries.get(key) !== entry.value) await this.apply(key, entry.value, undefined, entry.modRevision);
      }
    });
    const watcher = await this.client.raw
      .watch()
      .prefix(this.prefix)
      .startRevision(String(revision + 1))
      .create();
    if (generation !== this.generation) {
      void watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    this.synced = true;
    watcher.on("put", (kv) => {
      if (generation === this.generation) this.enqueue(() => this.apply(kv.key.toString().slice(this.prefix.length), kv.value.toString(), undefined, Number(kv.mod_revision)));
    });
    watcher.on("delete", (kv) => {
      if (generation !== this.generation) return;
      const key = kv.key.toString().slice(this.prefix.length);
      this.enqueue(() => this.apply(key, undefined, this.entries.get(key)));
    });
    const broken = (error: unknown) => {
      if (generation !== this.generation || this.closed) return;
      this.log.warn(`watch of ${this.prefix} broke (${error instanceof Error ? error.message : String(error)}): listing again until etcd answers`);
      this.generation++;
      this.synced = false;
      void watcher.cancel().catch(() => undefined);
      this.scheduleRelist();
    };
    watcher.on("disconnected", broken);
    watcher.on("error", broken);
    await this.queue;
  }

  private scheduleRelist(): void {
    if (this.closed) return;
    if (this.relistTimer) clearTimeout(this.relistTimer);
    this.relistTimer = setTimeout(() => {
      this.relist().catch(() => this.scheduleRelist());
    }, RELIST_INTERVAL_MS);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error) => this.log.warn(`${this.prefix}: a change could not be applied: ${error instanceof Error ? error.message : String(error)}`));
  }

  private async apply(key: string, value: string | undefined, previous?: string, modRevision = 0): Promise<void> {
    if (value === undefined) {
      if (!this.entries.has(key)) return;
      this.entries.delete(key);
      await this.handler.delete(key, previous ?? "");
      return;
    }
    if (this.entries.get(key) === value) return;
    this.entries.set(key, value);
    await this.handler.upsert(key, value, modRevision);
  }
}
