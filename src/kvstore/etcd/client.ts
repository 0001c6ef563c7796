/**
 * The connection to etcd: the etcd3 client (loaded only in etcd mode), configured so that a call
 * fails within a few seconds when etcd is unreachable instead of queueing behind retries and
 * circuit breakers (our callers retry on their own terms), plus the few primitives the cluster
 * state needs: ranges with their revision, raw transactions (compares over key ranges, which the
 * etcd3 builder cannot express), and leases.
 */
import { readFileSync } from "node:fs";
import type { IBackoff } from "cockatiel";
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from "etcd3";
import type { EtcdOptions } from "./options.ts";

/** A key and its value as text, with the revisions compare-and-set needs. */
export interface EtcdEntry {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

export interface RangeResult {
  entries: EtcdEntry[];
  /** The store's revision when the range was read: a watch from revision + 1 misses nothing. */
  revision: number;
}

/** A condition of a transaction (etcd's Compare); `prefix` compares every key under `key`. */
export type TxnCompare =
  | { key: string; prefix?: boolean; target: "create"; result: "equal" | "greater"; revision: number }
  | { key: string; prefix?: boolean; target: "mod"; result: "equal"; revision: number }
  | { key: string; target: "value"; result: "equal"; value: string };

export type TxnOp = { put: { key: string; value: string; lease?: string } } | { delete: { key: string; prefix?: boolean } } | { get: { key: string; prefix?: boolean } };

export interface TxnResult {
  succeeded: boolean;
  /** The entries of each `get` op, in order. */
  ranges: EtcdEntry[][];
}

export class EtcdUnavailableError extends Error {
  constructor(what: string, cause: unknown) {
    super(`etcd is unreachable (${what}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "EtcdUnavailableError";
  }
}

/** Each unary call gives up after this long: long enough for a busy etcd, short enough to report an outage. */
const CALL_TIMEOUT_MS = 3000;

export class EtcdClient {
  private constructor(
    readonly raw: Etcd3,
    readonly endpoints: string[],
  ) {}

  static async connect(options: EtcdOptions): Promise<EtcdClient> {
    const [{ Etcd3 }, cockatiel] = await Promise.all([import("etcd3"), import("cockatiel")]);
    const credentials = options.tls?.trustedCaFile
      ? {
          rootCertificate: readFileSync(options.tls.trustedCaFile),
          ...(options.tls.certFile ? { certChain: readFileSync(options.tls.certFile), privateKey: readFileSync(options.tls.keyFile!) } : {}),
        }
      : undefined;
    const raw = new Etcd3({
      hosts: options.endpoints,
      ...(credentials ? { credentials } : {}),
      dialTimeout: CALL_TIMEOUT_MS,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
      faultHandling: {
        // No hidden retries or open circuits: a failure reaches the caller at once.
        host: () => cockatiel.noop,
        global: cockatiel.noop,
        // The watch manager only calls next() on it (the factory), as with its own default.
        watchBackoff: new cockatiel.ExponentialBackoff({ initialDelay: 200, maxDelay: 2000 }) as unknown as IBackoff<unknown>,
      },
    });
    return new EtcdClient(raw, options.endpoints);
  }

  async get(key: string): Promise<EtcdEntry | undefined> {
    const result = await this.call(`get ${key}`, () => this.raw.kv.range({ key: Buffer.from(key) }));
    return result.kvs[0] ? entry(result.kvs[0]) : undefined;
  }

  async range(prefix: string): Promise<RangeResult> {
    const result = await this.call(`list ${prefix}`, () => this.raw.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }));
    return { entries: result.kvs.map(entry), revision: Number(result.header.revision) };
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.call(`put ${key}`, () => this.raw.kv.put({ key: Buffer.from(key), value: Buffer.from(value), ...(lease ? { lease } : {}) }));
  }

  async delete(key: string): Promise<void> {
    await this.call(`delete ${key}`, () => this.raw.kv.deleteRange({ key: Buffer.from(key) }));
  }

  async txn(compare: TxnCompare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const result = await this.call("transaction", () =>
      this.raw.kv.txn({ compare: compare.map(compareRequest), success: success.map(opRequest), failure: failure.map(opRequest) }),
    );
    const ranges = (result.responses ?? []).filter((r) => r.response_range).map((r) => r.response_range!.kvs.map(entry));
    return { succeeded: result.succeeded, ranges };
  }

  /** A new lease of `ttlSeconds`; answers its id. */
  async grantLease(ttlSeconds: number): Promise<string> {
    const result = await this.call("lease grant", () => this.raw.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return String(result.ID);
  }

  /** Renews a lease once; answers the TTL left (0: the lease has expired). */
  async keepAlive(lease: string): Promise<number> {
    return this.call("lease keepalive", async () => {
      const stream = await this.raw.leaseClient.leaseKeepAlive({ deadline: Date.now() + CALL_TIMEOUT_MS });
      try {
        const response = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on("data", resolve);
          stream.on("error", reject);
          stream.write({ ID: lease });
        });
        return Number(response.TTL);
      } finally {
        stream.end();
      }
    });
  }

  async revokeLease(lease: string): Promise<void> {
    await this.call("lease revoke", () => this.raw.leaseClient.leaseRevoke({ ID: lease }));
  }

  close(): void {
    this.raw.close();
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new EtcdUnavailableError(what, error);
    }
  }
}

/** The key after every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function entry(kv: IKeyValue): EtcdEntry {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    lease: String(kv.lease),
  };
}

function compareRequest(c: TxnCompare): ICompare {
  const base = { key: Buffer.from(c.key), ...("prefix" in c && c.prefix ? { range_end: prefixEnd(c.key) } : {}) };
  switch (c.target) {
    case "create":
      return { ...base, target: "Create", result: c.result === "equal" ? "Equal" : "Greater", create_revision: String(c.revision) } as ICompare;
    case "mod":
      return { ...base, target: "Mod", result: "Equal", mod_revision: String(c.revision) } as ICompare;
    case "value":
      return { ...base, target: "Value", result: "Equal", value: Buffer.from(c.value) } as ICompare;
  }
}

function opRequest(op: TxnOp): IRequestOp {
  if ("put" in op) return { request_put: { key: Buffer.from(op.put.key), value: Buffer.from(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  if ("delete" in op) return { request_delete_range: { key: Buffer.from(op.delete.key), ...(op.delete.prefix ? { range_end: prefixEnd(op.delete.key) } : {}) } };
  return { request_range: { key: Buffer.from(op.get.key), ...(op.get.prefix ? { range_end: prefixEnd(op.get.key) } : {}) } };
}
