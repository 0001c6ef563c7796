/**
 * Cluster-wide identity allocation in etcd (the IdentityBackend of src/identity/backend.ts).
 *
 * A label set's number is its master key (identities/v1/id/<id> -> labels); each node using it
 * holds a claim (identities/v1/value/<labels>/<node> -> id) under its lease. Every write is one
 * compare-and-set transaction that also requires "no claim on these labels exists yet" when it
 * picks a number, so of two nodes asking at once for the same set only one wins and the other
 * reads the winner's number, and a number is only taken while its master key does not exist, so
 * two sets never share one. A master left without claims (its nodes died) is reused for its
 * labels, or removed by collectUnusedIdentities (identity-gc.ts).
 *
 * References are counted per node here; the node's claim goes with its last reference. While
 * etcd is unreachable an allocation waits (bounded) and then fails with a clear error: a number
 * made up locally could mean other labels on another node. Releases during an outage are done on
 * reconnection (the claims would lapse with the lease anyway).
 */
import { AgentError } from "../../agent/errors.ts";
import { nextFreeIdentity, type IdentityBackend } from "../../identity/backend.ts";
import { MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY } from "../../identity/identity.ts";
import type { LabelSet } from "../../identity/labels.ts";
import type { Logger } from "../../logging/index.ts";
import { EtcdUnavailableError, type EtcdClient, type EtcdEntry, type TxnOp } from "./client.ts";
import { identityClaimKey, identityClaimsPrefix, identityKey, IDENTITY_ID_PREFIX, labelsText, parseLabelsText } from "./keys.ts";
import { PrefixWatch } from "./prefix-watch.ts";
import { EtcdUnreachableError, type EtcdSession } from "./session.ts";

export class IdentityUnavailableError extends AgentError {
  constructor(labels: LabelSet, reason: string) {
    super("unavailable", `cannot allocate an identity for ${labels}: ${reason} (no node-local number is used instead: it could mean other labels on another node)`);
    this.name = "IdentityUnavailableError";
  }
}

export interface EtcdIdentityBackendOptions {
  session: EtcdSession;
  /** This node's name: its claims are keyed by it. */
  node: string;
  log: Logger;
  /** How long an allocation waits for an unreachable etcd before failing. */
  waitMs?: number;
  min?: number;
  max?: number;
  /** A claim that cannot be re-established after an outage: the number now means other labels. */
  onConflict?(id: number, labels: LabelSet, problem: string): void;
}

interface Held {
  labels: LabelSet;
  text: string;
  references: number;
}

const MAX_ATTEMPTS = 64;

export class EtcdIdentityBackend implements IdentityBackend {
  private readonly client: EtcdClient;
  /** Every master key: id -> labels text, and back. */
  private readonly masters: PrefixWatch;
  private readonly byLabels = new Map<string, number>();
  private readonly held = new Map<number, Held>();
  private readonly heldByText = new Map<string, number>();
  /** Claims released while etcd was unreachable, deleted on reconnection. */
  private readonly releaseDue = new Map<number, string>();
  private readonly min: number;
  private readonly max: number;
  private next: number;

  constructor(private readonly options: EtcdIdentityBackendOptions) {
    this.client = options.session.client;
    this.min = options.min ?? MIN_ALLOCATED_IDENTITY;
    this.max = options.max ?? MAX_ALLOCATED_IDENTITY;
    // Each node starts searching at its own place, so nodes allocating at once rarely race for one number.
    this.next = this.min + Math.floor(Math.random() * (this.max - this.min + 1));
    this.masters = new PrefixWatch(
      this.client,
      IDENTITY_ID_PREFIX,
      {
        upsert: (key, value) => {
          this.byLabels.set(value, Number(key));
        },
        delete: (_key, value) => {
          this.byLabels.delete(value);
        },
      },
      options.log,
    );
  }

  /** Follows the master keys (for lookups and reuse); throws when etcd is unreachable (the session retries). */
  async start(): Promise<void> {
    this.options.session.onReconnect(() => this.reestablish());
    await this.masters.start();
  }

  close(): void {
    this.masters.close();
  }

  async allocate(labels: LabelSet): Promise<number> {
    const text = labelsText(labels);
    const local = this.heldByText.get(text);
    if (local !== undefined) {
      this.held.get(local)!.references++;
      return local;
    }
    const id = await this.claim(labels, text);
    const raced = this.heldByText.get(text);
    if (raced !== undefined) {
      this.held.get(raced)!.references++;
      return raced;
    }
    this.held.set(id, { labels, text, references: 1 });
    this.heldByText.set(text, id);
    this.releaseDue.delete(id);
    return id;
  }

  async release(id: number): Promise<void> {
    const entry = this.held.get(id);
    if (!entry) return;
    if (--entry.references > 0) return;
    this.held.delete(id);
    this.heldByText.delete(entry.text);
    try {
      await this.client.delete(identityClaimKey(entry.text, this.options.node));
    } catch (error) {
      this.options.session.reportFailure(error);
      this.releaseDue.set(id, entry.text);
    }
  }

  async lookup(id: number): Promise<LabelSet | undefined> {
    const text = this.masters.entries.get(String(id)) ?? (await this.client.get(identityKey(id)))?.value;
    return text === undefined ? undefined : parseLabelsText(text);
  }

  /** The labels of a number as last seen in etcd, without asking it. */
  cachedLabels(id: number): LabelSet | undefined {
    const text = this.masters.entries.get(String(id));
    return text === undefined ? undefined : parseLabelsText(text);
  }

  /** Numbers this node holds claims on, with their references. */
  list(): { id: number; labels: LabelSet; references: number }[] {
    return [...this.held].map(([id, h]) => ({ id, labels: h.labels, references: h.references })).sort((a, b) => a.id - b.id);
  }

  /** Claims the set's number (existing or new) for this node, retrying lost races and waiting out short outages. */
  private async claim(labels: LabelSet, text: string): Promise<number> {
    // Waits at most waitMs into an outage: once etcd has been away that long, callers (say, a
    // restore of many endpoints) fail at once instead of waiting in turn.
    const waitMs = this.options.waitMs ?? 10_000;
    const deadline = Math.min(Date.now(), this.options.session.unreachableSince ?? Date.now()) + waitMs;
    let lastProblem = "";
    for (let attempt = 0; attempt < MAX_ATTEMPTS; ) {
      let lease: string;
      try {
        lease = this.options.session.lease();
      } catch (error) {
        if (!(error instanceof EtcdUnreachableError)) throw error;
        lastProblem = error.message;
        if (Date.now() >= deadline) throw new IdentityUnavailableError(labels, lastProblem);
        await Bun.sleep(200);
        continue;
      }
      attempt++;
      try {
        const id = await this.tryClaim(text, lease);
        if (id !== undefined) return id;
        lastProblem = "other nodes kept winning the race for a number";
      } catch (error) {
        if (!(error instanceof EtcdUnavailableError)) throw error;
        this.options.session.reportFailure(error);
        lastProblem = `the kvstore (etcd) is unreachable: ${error.message}`;
        if (Date.now() >= deadline) throw new IdentityUnavailableError(labels, lastProblem);
      }
    }
    throw new IdentityUnavailableError(labels, lastProblem);
  }

  /**
   * Optimistic: one transaction takes a number when the set has no claims yet (the usual case for
   * a new set); when it has, the failed transaction answers them and a second one joins them.
   * Answers the number, or undefined when another node changed things first (the caller retries).
   */
  private async tryClaim(text: string, lease: string): Promise<number | undefined> {
    const claims = identityClaimsPrefix(text);
    const claimOf = (id: number) => ({ put: { key: identityClaimKey(text, this.options.node), value: String(id), lease } });
    const noClaims = { key: claims, prefix: true, target: "create" as const, result: "equal" as const, revision: 0 };
    const unused = this.byLabels.get(text);
    if (unused !== undefined) {
      const result = await this.client.txn([{ key: identityKey(unused), target: "value", result: "equal", value: text }, noClaims], [claimOf(unused)], [{ get: { key: claims, prefix: true } }]);
      if (result.succeeded) return unused;
      const existing = claimedNumber(result.ranges[0] ?? []);
      if (existing !== undefined) return this.join(text, existing, claimOf(existing));
      this.byLabels.delete(text); // its master is gone or changed: take a new number
    }
    const { id, next } = nextFreeIdentity((candidate) => this.masters.entries.has(String(candidate)), this.min, this.max, this.next);
    this.next = next;
    const result = await this.client.txn(
      [{ key: identityKey(id), target: "create", result: "equal", revision: 0 }, noClaims],
      [{ put: { key: identityKey(id), value: text } }, claimOf(id)],
      [{ get: { key: claims, prefix: true } }, { get: { key: identityKey(id) } }],
    );
    if (result.succeeded) {
      // Known at once, before the watch brings it: the next allocation must not pick it again.
      this.masters.entries.set(String(id), text);
      this.byLabels.set(text, id);
      return id;
    }
    const existing = claimedNumber(result.ranges[0] ?? []);
    if (existing !== undefined) return this.join(text, existing, claimOf(existing));
    const taken = result.ranges[1]?.[0];
    if (taken) {
      this.masters.entries.set(String(id), taken.value);
      this.byLabels.set(taken.value, id);
    }
    return undefined;
  }

  /** Claims the number other nodes already claim for the set. */
  private async join(text: string, id: number, claim: TxnOp): Promise<number | undefined> {
    const result = await this.client.txn([{ key: identityKey(id), target: "value", result: "equal", value: text }], [claim]);
    if (result.succeeded) return id;
    // Claims without their master (it was collected by mistake, or written by hand): restore it.
    const restored = await this.client.txn([{ key: identityKey(id), target: "create", result: "equal", revision: 0 }], [{ put: { key: identityKey(id), value: text } }, claim]);
    return restored.succeeded ? id : undefined;
  }

  /** After a reconnection: this node's claims again (under the current lease), and the releases owed. */
  private async reestablish(): Promise<void> {
    await this.masters.resync();
    const lease = this.options.session.lease();
    for (const [id, text] of [...this.releaseDue]) {
      await this.client.delete(identityClaimKey(text, this.options.node));
      this.releaseDue.delete(id);
    }
    for (const [id, held] of this.held) {
      const claim = { put: { key: identityClaimKey(held.text, this.options.node), value: String(id), lease } };
      const kept = await this.client.txn([{ key: identityKey(id), target: "value", result: "equal", value: held.text }], [claim]);
      if (kept.succeeded) continue;
      const restored = await this.client.txn(
        [{ key: identityKey(id), target: "create", result: "equal", revision: 0 }],
        [{ put: { key: identityKey(id), value: held.text } }, claim],
        [{ get: { key: identityKey(id) } }],
      );
      if (restored.succeeded) {
        this.options.log.info(`identity ${id} (${held.labels}) was collected while etcd was unreachable: restored`);
        continue;
      }
      const problem = `identity ${id} of ${held.labels} now means ${restored.ranges[0]?.[0]?.value ?? "other labels"} in etcd`;
      this.options.log.error(problem);
      this.options.onConflict?.(id, held.labels, problem);
    }
  }
}

/** The number the claims of a set agree on (any claim: they are only ever written with the master's number). */
function claimedNumber(claims: EtcdEntry[]): number | undefined {
  const claim = claims.find((e) => /^\d+$/.test(e.value));
  return claim ? Number(claim.value) : undefined;
}
