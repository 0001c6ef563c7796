/**
 * The node's IPv4 pod pool: which address of the pod CIDR belongs to which owner. Pure: no I/O,
 * so the IPAM can try a change on a copy, persist it, and only then adopt it.
 *
 * Layout of the CIDR: the network address and the broadcast address are never handed out; the
 * first host address is the router (the pods' gateway, on the host side), shown as allocated to
 * "router" as upstream does; every other host address is for pods.
 */
import { AgentError, type AgentErrorKind } from "../errors.ts";
import { cidrContains, cidrSize, formatCidr, formatIpv4, isIpv4, parseIpv4, type Ipv4Cidr } from "../../net/ipv4.ts";

/** Owner shown for the router (gateway) address. Reserved: nobody else may use the name. */
export const ROUTER_OWNER = "router";

/** Smallest usable pool: network, router, one pod, broadcast. */
export const MAX_POOL_PREFIX = 30;

export type IpamErrorReason = "exhausted" | "malformed" | "not-in-pool" | "reserved" | "not-allocated" | "owner-conflict" | "invalid-owner";

const KIND_BY_REASON: Record<IpamErrorReason, AgentErrorKind> = {
  exhausted: "exhausted",
  malformed: "invalid",
  "not-in-pool": "invalid",
  reserved: "invalid",
  "invalid-owner": "invalid",
  "not-allocated": "not-found",
  "owner-conflict": "conflict",
};

export class IpamError extends AgentError {
  readonly reason: IpamErrorReason;

  constructor(reason: IpamErrorReason, message: string) {
    super(KIND_BY_REASON[reason], message);
    this.name = "IpamError";
    this.reason = reason;
  }
}

/** What is persisted: pod allocations only (the router is implied by the range). */
export interface PoolSnapshot {
  /** Address -> owner. */
  allocations: Record<string, string>;
  /** Where the search for a free address starts. */
  next: string;
}

export class Ipv4Pool {
  readonly range: Ipv4Cidr;
  readonly router: number;
  private readonly first: number;
  private readonly last: number;
  private readonly ownerByAddress = new Map<number, string>();
  private readonly addressByOwner = new Map<string, number>();
  /**
   * Round robin: the search starts after the last address handed out, so a released address
   * rests until the pool wraps around instead of going straight to the next pod (whose peers
   * may still hold connections to the old one).
   */
  private next: number;

  constructor(range: Ipv4Cidr) {
    if (range.prefixLength > MAX_POOL_PREFIX) {
      throw new RangeError(`IPAM pool ${formatCidr(range)} is too small: the prefix length must be at most ${MAX_POOL_PREFIX}`);
    }
    this.range = range;
    this.router = range.network + 1;
    this.first = range.network + 2;
    this.last = range.network + cidrSize(range) - 2;
    this.next = this.first;
  }

  /** A pool holding a persisted snapshot; throws naming every entry that does not fit this range. */
  static restore(range: Ipv4Cidr, snapshot: PoolSnapshot): Ipv4Pool {
    const pool = new Ipv4Pool(range);
    const problems: string[] = [];
    for (const [text, owner] of Object.entries(snapshot.allocations)) {
      try {
        pool.claim(text, owner);
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (problems.length > 0) throw new Error(problems.join("; "));
    if (isIpv4(snapshot.next) && pool.isPodAddress(parseIpv4(snapshot.next))) pool.next = parseIpv4(snapshot.next);
    return pool;
  }

  get name(): string {
    return formatCidr(this.range);
  }

  /** Host addresses, the router's included (upstream's count: 254 for a /24). */
  get capacity(): number {
    return this.last - this.range.network;
  }

  /** Allocated host addresses, the router's included. */
  get used(): number {
    return this.ownerByAddress.size + 1;
  }

  get free(): number {
    return this.capacity - this.used;
  }

  get routerAddress(): string {
    return formatIpv4(this.router);
  }

  /** Where the search for a free address starts next (see `next`). */
  get nextAddress(): string {
    return formatIpv4(this.next);
  }

  /** The owner's address if it has one (idempotent), else the next free one. */
  allocate(owner: string): string {
    checkOwner(owner);
    const existing = this.addressByOwner.get(owner);
    if (existing !== undefined) return formatIpv4(existing);
    const podAddresses = this.last - this.first + 1;
    for (let step = 0; step < podAddresses; step++) {
      const candidate = this.first + ((this.next - this.first + step) % podAddresses);
      if (this.ownerByAddress.has(candidate)) continue;
      this.assign(candidate, owner);
      this.next = candidate === this.last ? this.first : candidate + 1;
      return formatIpv4(candidate);
    }
    throw new IpamError(
      "exhausted",
      `IPAM pool ${this.name} is exhausted: all ${podAddresses} pod addresses are allocated, none left for ${JSON.stringify(owner)}`,
    );
  }

  /** Gives a specific address to an owner (restore); already theirs is fine. */
  claim(text: string, owner: string): void {
    checkOwner(owner);
    const address = this.podAddress(text);
    const holder = this.ownerByAddress.get(address);
    if (holder === owner) return;
    if (holder !== undefined) throw new IpamError("owner-conflict", `${text} is allocated to ${JSON.stringify(holder)}, not ${JSON.stringify(owner)}`);
    const held = this.addressByOwner.get(owner);
    if (held !== undefined) {
      throw new IpamError("owner-conflict", `${JSON.stringify(owner)} already holds ${formatIpv4(held)} and cannot also claim ${text}`);
    }
    this.assign(address, owner);
  }

  /** Releases an address; answers its former owner. */
  release(text: string): string {
    const address = this.podAddress(text);
    const owner = this.ownerByAddress.get(address);
    if (owner === undefined) throw new IpamError("not-allocated", `${text} is not allocated in IPAM pool ${this.name}`);
    this.unassign(address, owner);
    return owner;
  }

  /** Releases the owner's address, if it has one; answers it. */
  releaseOwner(owner: string): string | undefined {
    const address = this.addressByOwner.get(owner);
    if (address === undefined) return undefined;
    this.unassign(address, owner);
    return formatIpv4(address);
  }

  /** The owner of an allocated address (the router's included). */
  ownerOf(text: string): string | undefined {
    if (!isIpv4(text)) return undefined;
    const address = parseIpv4(text);
    return address === this.router ? ROUTER_OWNER : this.ownerByAddress.get(address);
  }

  addressOf(owner: string): string | undefined {
    const address = this.addressByOwner.get(owner);
    return address === undefined ? undefined : formatIpv4(address);
  }

  /** Every allocated address with its owner, router first, in address order. */
  allocations(): [address: string, owner: string][] {
    const pods = [...this.ownerByAddress].sort(([a], [b]) => a - b);
    return [[this.routerAddress, ROUTER_OWNER], ...pods.map(([address, owner]): [string, string] => [formatIpv4(address), owner])];
  }

  snapshot(): PoolSnapshot {
    const allocations: Record<string, string> = {};
    for (const [address, owner] of [...this.ownerByAddress].sort(([a], [b]) => a - b)) allocations[formatIpv4(address)] = owner;
    return { allocations, next: formatIpv4(this.next) };
  }

  clone(): Ipv4Pool {
    const copy = new Ipv4Pool(this.range);
    for (const [address, owner] of this.ownerByAddress) copy.assign(address, owner);
    copy.next = this.next;
    return copy;
  }

  private isPodAddress(address: number): boolean {
    return address >= this.first && address <= this.last;
  }

  /** The number for a pod address given as text; throws the reason it is not one. */
  private podAddress(text: string): number {
    if (!isIpv4(text)) throw new IpamError("malformed", `${JSON.stringify(text)} is not an IPv4 address`);
    const address = parseIpv4(text);
    if (!cidrContains(this.range, address)) throw new IpamError("not-in-pool", `${text} is not in IPAM pool ${this.name}`);
    if (address === this.router) throw new IpamError("reserved", `${text} is reserved in IPAM pool ${this.name}: it is the router (gateway) address`);
    if (address === this.range.network) throw new IpamError("reserved", `${text} is reserved in IPAM pool ${this.name}: it is the network address`);
    if (!this.isPodAddress(address)) throw new IpamError("reserved", `${text} is reserved in IPAM pool ${this.name}: it is the broadcast address`);
    return address;
  }

  private assign(address: number, owner: string): void {
    this.ownerByAddress.set(address, owner);
    this.addressByOwner.set(owner, address);
  }

  private unassign(address: number, owner: string): void {
    this.ownerByAddress.delete(address);
    this.addressByOwner.delete(owner);
  }
}

const MAX_OWNER_LENGTH = 256;

function checkOwner(owner: string): void {
  if (owner.length === 0) throw new IpamError("invalid-owner", "the IPAM owner must not be empty");
  if (owner.length > MAX_OWNER_LENGTH) throw new IpamError("invalid-owner", `the IPAM owner must be at most ${MAX_OWNER_LENGTH} characters`);
  if (/[\s\p{Cc}]/u.test(owner)) throw new IpamError("invalid-owner", `the IPAM owner ${JSON.stringify(owner)} must not contain whitespace or control characters`);
  if (owner === ROUTER_OWNER) throw new IpamError("invalid-owner", `the IPAM owner "${ROUTER_OWNER}" is reserved for the router address`);
}
