/**
 * The node's IPAM: the pod pool plus its state files. Every change is tried on a copy of the pool,
 * persisted, and only then adopted and answered, so an address handed out is on disk first and
 * is never handed out twice, also across restarts and crashes. Calls are synchronous on purpose:
 * nothing can interleave between the check and the write.
 */
import { formatCidr, type Ipv4Cidr } from "../../net/ipv4.ts";
import { Ipv4Pool } from "./pool.ts";
import { IpamStore } from "./store.ts";

export interface IpamStatus {
  /** The pod CIDR, e.g. "10.200.0.0/24". */
  cidr: string;
  gateway: string;
  used: number;
  free: number;
  capacity: number;
  /** Address -> owner, the router's included. */
  allocations: Record<string, string>;
}

export class Ipam {
  private pool: Ipv4Pool;
  private readonly store: IpamStore;

  private constructor(pool: Ipv4Pool, store: IpamStore) {
    this.pool = pool;
    this.store = store;
  }

  /**
   * The IPAM for `range` with the allocations persisted under `stateDir`. Refuses to start when
   * persisted allocations fall outside the range: pods may still use them, and silently dropping
   * them would let the addresses be handed out again once the range changes back.
   */
  static open(range: Ipv4Cidr, stateDir: string): Ipam {
    const store = new IpamStore(stateDir);
    const state = store.load();
    let pool = new Ipv4Pool(range);
    if (state) {
      try {
        pool = Ipv4Pool.restore(range, state);
      } catch (error) {
        const was = state.range !== formatCidr(range) ? ` (written for ${state.range})` : "";
        throw new Error(`IPAM state file ${store.path}${was} does not fit --ipv4-range ${formatCidr(range)}: ${(error as Error).message}`);
      }
    }
    // A fresh snapshot and journal for this run (a crash may have left the journal's tail cut short).
    store.compact({ range: pool.name, ...pool.snapshot() });
    return new Ipam(pool, store);
  }

  get cidr(): string {
    return this.pool.name;
  }

  get gateway(): string {
    return this.pool.routerAddress;
  }

  allocate(owner: string): string {
    const existing = this.pool.addressOf(owner);
    if (existing !== undefined) return existing;
    return this.change((pool) => {
      const address = pool.allocate(owner);
      return { address, result: address };
    });
  }

  claim(address: string, owner: string): void {
    if (this.pool.ownerOf(address) === owner) return;
    this.change((pool) => {
      pool.claim(address, owner);
      return { address, result: undefined };
    });
  }

  /** Releases an address; answers its former owner. */
  release(address: string): string {
    return this.change((pool) => ({ address, result: pool.release(address) }));
  }

  /** Releases the owner's address if it has one; answers it. */
  releaseOwner(owner: string): string | undefined {
    const held = this.pool.addressOf(owner);
    if (held === undefined) return undefined;
    return this.change((pool) => {
      pool.releaseOwner(owner);
      return { address: held, result: held };
    });
  }

  ownerOf(address: string): string | undefined {
    return this.pool.ownerOf(address);
  }

  addressOf(owner: string): string | undefined {
    return this.pool.addressOf(owner);
  }

  status(): IpamStatus {
    const { pool } = this;
    return {
      cidr: pool.name,
      gateway: pool.routerAddress,
      used: pool.used,
      free: pool.free,
      capacity: pool.capacity,
      allocations: Object.fromEntries(pool.allocations()),
    };
  }

  /** Applies a change to a copy of the pool, persists it, then adopts it; `apply` names the address it changed. */
  private change<T>(apply: (pool: Ipv4Pool) => { address: string; result: T }): T {
    const next = this.pool.clone();
    const { address, result } = apply(next);
    this.store.record({ address, owner: next.ownerOf(address) ?? null, next: next.nextAddress }, () => ({ range: next.name, ...next.snapshot() }));
    this.pool = next;
    return result;
  }
}
