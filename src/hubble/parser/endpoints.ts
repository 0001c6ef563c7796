/**
 * How the parser learns who is behind an address. The agent implements EndpointResolver over its
 * endpoint manager, ipcache and identity allocator; RecentEndpoints keeps answering for a pod that
 * was just deleted, because its last packets (and the drops they cause) are read from the ring
 * buffer after the endpoint is gone.
 */

export interface EndpointInfo {
  /** Local endpoint id; 0 for an address that is not a local endpoint. */
  id: number;
  identity: number;
  namespace: string;
  podName: string;
  /** "source:key=value". */
  labels: readonly string[];
}

export interface EndpointResolver {
  endpointByIp(ip: string): EndpointInfo | undefined;
  /** Labels of a security identity (reserved, allocated or CIDR), if known. */
  identityLabels(identity: number): readonly string[] | undefined;
}

export interface RecentEndpointsOptions {
  /** How long a deleted endpoint still resolves. */
  ttlMs?: number;
  /** At most this many remembered endpoints (the oldest go first). */
  maxEntries?: number;
  /**
   * Remember every answer of `live` (default). A resolver that reports each deletion through
   * endpointDeleted() can turn this off: lookups then cost no clock read.
   */
  rememberLookups?: boolean;
  now?: () => number;
}

/**
 * A resolver that asks `live` first and, when it does not know an address, answers with what
 * `live` said about it in the last `ttlMs` (or what endpointDeleted() recorded). A reused address
 * resolves to its new owner as soon as `live` knows it.
 */
export class RecentEndpoints implements EndpointResolver {
  /** In insertion order: when full, the entry remembered first goes first. */
  private readonly seen = new Map<string, { info: EndpointInfo; at: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly rememberLookups: boolean;

  constructor(
    private readonly live: EndpointResolver,
    options: RecentEndpointsOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.maxEntries = options.maxEntries ?? 4096;
    this.now = options.now ?? Date.now;
    this.rememberLookups = options.rememberLookups ?? true;
  }

  endpointByIp(ip: string): EndpointInfo | undefined {
    const info = this.live.endpointByIp(ip);
    if (info !== undefined) {
      if (this.rememberLookups) this.remember(ip, info);
      return info;
    }
    const recent = this.seen.get(ip);
    if (recent === undefined) return undefined;
    if (this.now() - recent.at > this.ttlMs) {
      this.seen.delete(ip);
      return undefined;
    }
    return recent.info;
  }

  identityLabels(identity: number): readonly string[] | undefined {
    return this.live.identityLabels(identity);
  }

  /** The agent reports a deletion so an endpoint never looked up before still resolves. */
  endpointDeleted(ip: string, info: EndpointInfo): void {
    this.remember(ip, info);
  }

  private remember(ip: string, info: EndpointInfo): void {
    // The hot path (every flow): the same answer again only renews its time.
    const seen = this.seen.get(ip);
    if (seen !== undefined && seen.info === info) {
      seen.at = this.now();
      return;
    }
    this.seen.delete(ip);
    this.seen.set(ip, { info, at: this.now() });
    if (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
  }
}
