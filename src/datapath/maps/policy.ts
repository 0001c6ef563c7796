/**
 * cilium_policy: the L3/L4 policy of every local endpoint in one LPM trie (bpf/lib/maps.h:
 * policy_key, policy_entry; verdicts in bpf/lib/policy.h).
 *
 * Besides the codecs this module holds the pure logic around the map, so it can be tested
 * without a kernel: rules <-> keys, port ranges -> prefixes, a model of the datapath's verdict,
 * and the plan of map writes that moves an endpoint from the policy it has to the one it should
 * have without ever allowing more than either of them.
 */
import { be16, be32, pad, struct, u32, u8, type Infer } from "../bpf/index.ts";

export const POLICY_MAP = "cilium_policy";

/** DIR_* of bpf/lib/common.h. */
export const PolicyDirection = { ingress: 1, egress: 2 } as const;
export type PolicyDirectionName = keyof typeof PolicyDirection;

/** Key prefix lengths (bits after prefixlen). */
export const POLICY_PREFIX_ANY_PROTO = 64;
export const POLICY_PREFIX_ANY_PORT = 80;
export const POLICY_PREFIX_FULL = 96;

/** policy_entry.flags. */
export const PolicyEntryFlags = { Deny: 1 << 0 } as const;

/** The drop reasons of a policy verdict (upstream flow.proto DropReason numbers). */
export const PolicyDropReason = {
  /** POLICY_DENIED: no entry allows the packet (default deny of an enforced direction). */
  denied: 133,
  /** POLICY_DENY, "Policy denied by denylist": a deny entry matched. */
  denylisted: 181,
} as const;

export const PolicyKey = struct({
  /** Bits of the fields below that must match: 64, 80, or 80 + port prefix length. */
  prefixlen: u32,
  /** Local endpoint id (lxc_id). */
  endpointId: be16,
  /** PolicyDirection. */
  direction: u8,
  pad0: pad(1),
  /** Remote security identity; 0 = any identity. */
  identity: be32,
  /** IPPROTO_*. */
  protocol: u8,
  pad1: pad(1),
  /** Destination port; for ICMP the ICMP type. */
  dport: be16,
});

export const PolicyEntry = struct({
  /** PolicyEntryFlags. */
  flags: u32,
  pad: pad(4),
});

export type PolicyKeyValue = Infer<typeof PolicyKey>;
export type PolicyEntryValue = Infer<typeof PolicyEntry>;

/** One policy entry of an endpoint, as the agent states it. */
export interface PolicyRule {
  direction: PolicyDirectionName;
  /** Remote security identity; 0 = any identity. */
  identity: number;
  /** IPPROTO_* (6 TCP, 17 UDP, 132 SCTP, 1 ICMP); 0 = any protocol (then port must be 0). */
  protocol: number;
  /** Destination port (ICMP: type); the first port of a prefix. */
  port: number;
  /** How many leading bits of the port must match, 0-16 (16: one port, 0: any port); ignored when protocol is 0. */
  prefixLength: number;
  deny: boolean;
}

/** An endpoint's whole policy: which directions are enforced and the entries. */
export interface EndpointPolicy {
  ingressEnforced: boolean;
  egressEnforced: boolean;
  entries: PolicyRule[];
}

/** A map entry: normalized key (bits beyond prefixlen zero) and verdict. */
export interface PolicyMapEntry {
  key: PolicyKeyValue;
  deny: boolean;
}

export function checkEndpointId(endpointId: number): number {
  if (!Number.isInteger(endpointId) || endpointId < 0 || endpointId > 0xffff) {
    throw new RangeError(`endpoint id ${String(endpointId)} is not a 16-bit endpoint id`);
  }
  return endpointId;
}

/**
 * The map key of one rule. Throws on anything that does not say exactly what it means: a port
 * with bits below its prefix (e.g. port 80 with prefixLength 0 would silently mean "any port"),
 * a port without a protocol, out-of-range numbers.
 */
export function policyKeyOf(endpointId: number, rule: PolicyRule): PolicyKeyValue {
  checkEndpointId(endpointId);
  const what = `endpoint ${endpointId} policy entry ${describeRule(rule)}`;
  if (typeof rule !== "object" || rule === null) throw new TypeError(`${what}: not an object`);
  const direction = PolicyDirection[rule.direction];
  if (direction === undefined || !Object.hasOwn(PolicyDirection, rule.direction)) {
    throw new RangeError(`${what}: direction must be "ingress" or "egress"`);
  }
  if (!Number.isInteger(rule.identity) || rule.identity < 0 || rule.identity > 0xffffffff) {
    throw new RangeError(`${what}: identity must be 0 (any) or a 32-bit identity`);
  }
  if (!Number.isInteger(rule.protocol) || rule.protocol < 0 || rule.protocol > 255) {
    throw new RangeError(`${what}: protocol must be 0 (any) or an IP protocol number 1-255`);
  }
  if (typeof rule.deny !== "boolean") throw new TypeError(`${what}: deny must be a boolean`);
  if (!Number.isInteger(rule.port) || rule.port < 0 || rule.port > 0xffff) {
    throw new RangeError(`${what}: port must be 0-65535`);
  }
  if (rule.protocol === 0) {
    if (rule.port !== 0) throw new RangeError(`${what}: a port needs a protocol (protocol 0 means any protocol, any port)`);
    return { prefixlen: POLICY_PREFIX_ANY_PROTO, endpointId, direction, identity: rule.identity, protocol: 0, dport: 0 };
  }
  if (!Number.isInteger(rule.prefixLength) || rule.prefixLength < 0 || rule.prefixLength > 16) {
    throw new RangeError(`${what}: prefixLength must be 0-16 bits of the port`);
  }
  if ((rule.port & ~portMask(rule.prefixLength)) !== 0) {
    throw new RangeError(`${what}: port ${rule.port} has bits outside its ${rule.prefixLength}-bit prefix`);
  }
  return {
    prefixlen: POLICY_PREFIX_ANY_PORT + rule.prefixLength,
    endpointId,
    direction,
    identity: rule.identity,
    protocol: rule.protocol,
    dport: rule.port,
  };
}

/** The rule a (normalized) key and its entry stand for. */
export function policyRuleOf(key: PolicyKeyValue, deny: boolean): PolicyRule {
  const direction = key.direction === PolicyDirection.ingress ? "ingress" : key.direction === PolicyDirection.egress ? "egress" : null;
  if (direction === null) throw new RangeError(`policy key with unknown direction ${key.direction}`);
  if (key.prefixlen < POLICY_PREFIX_ANY_PORT) {
    return { direction, identity: key.identity, protocol: 0, port: 0, prefixLength: 0, deny };
  }
  const prefixLength = Math.min(key.prefixlen - POLICY_PREFIX_ANY_PORT, 16);
  return { direction, identity: key.identity, protocol: key.protocol, port: key.dport & portMask(prefixLength), prefixLength, deny };
}

/**
 * Validates rules and turns them into map entries, one per key: duplicates merge, and a key that
 * is both allowed and denied is denied.
 */
export function normalizePolicyRules(endpointId: number, rules: readonly PolicyRule[]): PolicyMapEntry[] {
  if (!Array.isArray(rules)) throw new TypeError(`endpoint ${endpointId}: policy entries must be an array`);
  const byKey = new Map<string, PolicyMapEntry>();
  for (const rule of rules) {
    const key = policyKeyOf(endpointId, rule);
    const id = policyKeyId(key);
    const existing = byKey.get(id);
    byKey.set(id, { key, deny: rule.deny || (existing?.deny ?? false) });
  }
  return [...byKey.values()];
}

/** The 12 key bytes after prefixlen, in the order the LPM trie compares them. */
export function policyKeyData(key: PolicyKeyValue): Uint8Array {
  return PolicyKey.encode(key).subarray(4);
}

/** A key with every bit beyond its prefix cleared (as the trie treats it). */
export function normalizePolicyKey(key: PolicyKeyValue): PolicyKeyValue {
  const bytes = PolicyKey.encode(key);
  maskBits(bytes.subarray(4), Math.min(key.prefixlen, POLICY_PREFIX_FULL));
  return PolicyKey.decode(bytes);
}

/** Identifies a trie node: its prefix length and the bits it covers. */
export function policyKeyId(key: PolicyKeyValue): string {
  const data = new Uint8Array(policyKeyData(key));
  maskBits(data, Math.min(key.prefixlen, POLICY_PREFIX_FULL));
  return `${key.prefixlen}:${Buffer.from(data).toString("hex")}`;
}

/** Whether `inner`'s prefix lies inside `outer`'s (equal keys included). */
export function policyKeyWithin(inner: PolicyKeyValue, outer: PolicyKeyValue): boolean {
  if (outer.prefixlen > inner.prefixlen) return false;
  // The 96 key bits as three big-endian 32-bit words, compared under outer's prefix.
  const a = keyWords(inner);
  const b = keyWords(outer);
  for (let i = 0; i < 3; i++) {
    const bits = Math.max(0, Math.min(32, outer.prefixlen - 32 * i));
    if (bits === 0) break;
    const mask = bits === 32 ? 0xffffffff : ((0xffffffff << (32 - bits)) >>> 0);
    if (((a[i]! & mask) >>> 0) !== ((b[i]! & mask) >>> 0)) return false;
  }
  return true;
}

function keyWords(key: PolicyKeyValue): [number, number, number] {
  return [((key.endpointId << 16) | (key.direction << 8)) >>> 0, key.identity >>> 0, ((key.protocol << 24) | key.dport) >>> 0];
}

export function sortPolicyRules(rules: PolicyRule[]): PolicyRule[] {
  return rules.sort(
    (a, b) =>
      a.direction.localeCompare(b.direction) ||
      a.identity - b.identity ||
      a.protocol - b.protocol ||
      a.port - b.port ||
      a.prefixLength - b.prefixLength ||
      Number(a.deny) - Number(b.deny),
  );
}

/* ------------------------------------------------------------------------------------------ */
/* Port ranges                                                                                 */

/**
 * The fewest port prefixes that together hold exactly the ports from..to (inclusive): each is
 * {port, prefixLength} with prefixLength 0-16 leading bits of the 16-bit port, as policy entries
 * take them. 80-80 -> [{80, 16}], 0-65535 -> [{0, 0}], 1-65535 -> 16 prefixes.
 */
export function portRangeToPrefixes(from: number, to: number): { port: number; prefixLength: number }[] {
  for (const [name, value] of [["from", from], ["to", to]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`port range ${name} ${String(value)} is not a port (0-65535)`);
  }
  if (from > to) throw new RangeError(`port range ${from}-${to} is empty`);
  const prefixes: { port: number; prefixLength: number }[] = [];
  let port = from;
  while (port <= to) {
    // The largest aligned block starting at `port` that stays inside the range.
    let bits = 0;
    while (bits < 16 && port % 2 ** (bits + 1) === 0 && port + 2 ** (bits + 1) - 1 <= to) bits++;
    prefixes.push({ port, prefixLength: 16 - bits });
    port += 2 ** bits;
  }
  return prefixes;
}

/* ------------------------------------------------------------------------------------------ */
/* The datapath's verdict, modelled                                                            */

export interface PolicyQuery {
  direction: PolicyDirectionName;
  /** The remote's identity (the datapath never looks up 0 here except as "any"). */
  identity: number;
  protocol: number;
  /** Destination port or ICMP type; undefined when the packet has none (later fragment, port-less protocol). */
  port?: number;
}

/**
 * What bpf/lib/policy.h decides for a packet of endpoint `endpointId`: 0 (allow),
 * PolicyDropReason.denylisted or PolicyDropReason.denied. `entries` are the map's entries (any
 * endpoints'); `enforced` whether the query's direction is enforced for the endpoint.
 */
export function policyVerdict(endpointId: number, entries: readonly PolicyMapEntry[], enforced: boolean, query: PolicyQuery): number {
  if (!enforced) return 0;
  const byIdentity = longestMatch(endpointId, entries, query, query.identity);
  const anyIdentity = longestMatch(endpointId, entries, query, 0);
  if (byIdentity?.deny || anyIdentity?.deny) return PolicyDropReason.denylisted;
  if (byIdentity || anyIdentity) return 0;
  return PolicyDropReason.denied;
}

/** Upstream's PolicyMatchType numbers, as policy-verdict events carry them (bpf/lib/policy_log.h). */
export const PolicyMatchType = { none: 0, l3Only: 1, l3L4: 2, l4Only: 3, all: 4, l3Proto: 5, protoOnly: 6 } as const;

/**
 * The match type the datapath reports with a verdict for `query` in an enforced direction: the
 * deny entry that decided, else the allow entry most specific on L4 (an identity's entry winning
 * a tie), else none.
 */
export function policyMatchType(endpointId: number, entries: readonly PolicyMapEntry[], query: PolicyQuery): number {
  const verdict = policyVerdict(endpointId, entries, true, query);
  if (verdict === PolicyDropReason.denied) return PolicyMatchType.none;
  let byIdentity = longestMatch(endpointId, entries, query, query.identity);
  let anyIdentity = longestMatch(endpointId, entries, query, 0);
  if (verdict === PolicyDropReason.denylisted) {
    if (byIdentity?.deny) anyIdentity = undefined;
    else byIdentity = undefined;
  }
  // 0: any protocol, 1: any port of a protocol, 2: a port or port range.
  const level = (entry: PolicyMapEntry | undefined) =>
    entry === undefined ? -1 : entry.key.prefixlen < POLICY_PREFIX_ANY_PORT ? 0 : entry.key.prefixlen === POLICY_PREFIX_ANY_PORT ? 1 : 2;
  const byLevel = level(byIdentity);
  const anyLevel = level(anyIdentity);
  if (byLevel >= 0 && byLevel >= anyLevel) return [PolicyMatchType.l3Only, PolicyMatchType.l3Proto, PolicyMatchType.l3L4][byLevel]!;
  if (anyLevel >= 0) return [PolicyMatchType.all, PolicyMatchType.protoOnly, PolicyMatchType.l4Only][anyLevel]!;
  return PolicyMatchType.none;
}

function longestMatch(endpointId: number, entries: readonly PolicyMapEntry[], query: PolicyQuery, identity: number): PolicyMapEntry | undefined {
  const portKnown = query.port !== undefined;
  const probe: PolicyKeyValue = {
    prefixlen: portKnown ? POLICY_PREFIX_FULL : POLICY_PREFIX_ANY_PORT,
    endpointId,
    direction: PolicyDirection[query.direction],
    identity,
    protocol: query.protocol,
    dport: portKnown ? query.port! : 0,
  };
  let best: PolicyMapEntry | undefined;
  for (const entry of entries) {
    if (policyKeyWithin(probe, entry.key) && (!best || entry.key.prefixlen > best.key.prefixlen)) best = entry;
  }
  return best;
}

/* ------------------------------------------------------------------------------------------ */
/* Moving an endpoint from its current entries to the desired ones                             */

export type PolicyStep = { op: "write"; entry: PolicyMapEntry } | { op: "delete"; key: PolicyKeyValue };

export interface PolicyPlan {
  /**
   * "ordered": the usual order (peak size = current + new keys);
   * "tight": the map cannot hold old and new together; stale allows go first (traffic that only
   *          the new allows admit waits for the end), never more than either policy;
   * "overflow": the new policy does not fit: fail closed (see planFailClosed), then report.
   */
  mode: "ordered" | "tight" | "overflow";
  steps: PolicyStep[];
  /** Entries written (new keys and changed verdicts), entries deleted, if every step runs. */
  added: number;
  removed: number;
  /** Entries the map holds for all endpoints once the plan ran in full (for the overflow error). */
  needed: number;
  /** Of which this endpoint's. */
  endpointEntries: number;
  /** Allow entries the fail-closed outcome keeps out (overflow only). */
  allowsLeftOut: number;
  /**
   * Overflow only: "denies-written" (stale entries gone, desired denies written, allows the
   * endpoint already had kept, new allows left out) or "allows-removed" (not even the denies
   * fit: every allow of the endpoint deleted, so its enforced directions deny everything).
   */
  failClosed?: "denies-written" | "allows-removed";
}

export interface PolicyPlanInput {
  /** This endpoint's entries as the map holds them. */
  current: readonly PolicyMapEntry[];
  /** The endpoint's desired entries (normalizePolicyRules). */
  desired: readonly PolicyMapEntry[];
  /** Entries of every other endpoint. */
  otherEntries: number;
  /** The most entries the map may hold in all. */
  limit: number;
}

interface PolicyDiff {
  denyWrites: PolicyMapEntry[];
  allowWrites: PolicyMapEntry[];
  staleAllows: PolicyMapEntry[];
  staleDenies: PolicyMapEntry[];
  /** Stale allows inside the prefix of a desired deny (they would hide it). */
  shadowingAllows: PolicyMapEntry[];
  commonAllows: number;
  newDenyKeys: number;
  newAllowKeys: number;
}

function diffPolicy(current: readonly PolicyMapEntry[], desired: readonly PolicyMapEntry[]): PolicyDiff {
  const currentById = new Map(current.map((e) => [policyKeyId(e.key), e]));
  const desiredById = new Map(desired.map((e) => [policyKeyId(e.key), e]));
  const diff: PolicyDiff = {
    denyWrites: [],
    allowWrites: [],
    staleAllows: [],
    staleDenies: [],
    shadowingAllows: [],
    commonAllows: 0,
    newDenyKeys: 0,
    newAllowKeys: 0,
  };
  for (const [id, entry] of desiredById) {
    const now = currentById.get(id);
    if (now && now.deny === entry.deny) {
      if (!entry.deny) diff.commonAllows++;
      continue;
    }
    if (entry.deny) {
      diff.denyWrites.push(entry);
      if (!now) diff.newDenyKeys++;
    } else {
      diff.allowWrites.push(entry);
      if (!now) diff.newAllowKeys++;
    }
  }
  const desiredDenies = desired.filter((e) => e.deny);
  for (const [id, entry] of currentById) {
    if (desiredById.has(id)) continue;
    if (entry.deny) {
      diff.staleDenies.push(entry);
    } else {
      diff.staleAllows.push(entry);
      if (desiredDenies.some((d) => policyKeyWithin(entry.key, d.key))) diff.shadowingAllows.push(entry);
    }
  }
  return diff;
}

const writes = (entries: PolicyMapEntry[]): PolicyStep[] => entries.map((entry) => ({ op: "write", entry }));
const deletes = (entries: PolicyMapEntry[]): PolicyStep[] => entries.map((entry) => ({ op: "delete", key: entry.key }));

/**
 * The writes that take an endpoint from `current` to `desired`, in an order such that every
 * intermediate state of the map allows only what the old or the new policy allows (given the
 * control plane's guarantee, for both, that no allow is more specific than an overlapping deny of
 * the same identity):
 *
 *   ordered: 1. delete stale allows lying inside a new deny (they would hide it)
 *            2. write denies  3. write allows  4. delete stale allows  5. delete stale denies
 *   tight:   1. delete all stale allows  2. write denies  3. delete stale denies  4. write allows
 *
 * "ordered" keeps everything both policies allow flowing; "tight" needs less room. When even
 * that does not fit under `limit`, the plan is the fail-closed one (mode "overflow").
 */
export function planPolicyUpdate(input: PolicyPlanInput): PolicyPlan {
  const diff = diffPolicy(input.current, input.desired);
  const total = input.otherEntries + input.current.length;
  const final = input.otherEntries + input.desired.length;
  const added = diff.denyWrites.length + diff.allowWrites.length;
  const removed = diff.staleAllows.length + diff.staleDenies.length;
  const base = { added, removed, needed: final, endpointEntries: input.desired.length, allowsLeftOut: 0 };

  const orderedPeak = total - diff.shadowingAllows.length + diff.newDenyKeys + diff.newAllowKeys;
  if (orderedPeak <= input.limit) {
    const shadowing = new Set(diff.shadowingAllows);
    return {
      mode: "ordered",
      steps: [
        ...deletes(diff.shadowingAllows),
        ...writes(diff.denyWrites),
        ...writes(diff.allowWrites),
        ...deletes(diff.staleAllows.filter((e) => !shadowing.has(e))),
        ...deletes(diff.staleDenies),
      ],
      ...base,
    };
  }
  const tightPeak = Math.max(total - diff.staleAllows.length + diff.newDenyKeys, final);
  if (tightPeak <= input.limit) {
    return {
      mode: "tight",
      steps: [...deletes(diff.staleAllows), ...writes(diff.denyWrites), ...deletes(diff.staleDenies), ...writes(diff.allowWrites)],
      ...base,
    };
  }
  return { ...planFailClosed(input), needed: final, endpointEntries: input.desired.length };
}

/**
 * What is left to do when the desired policy cannot be written: keep enforcement on (the caller
 * does) and reach a state that allows at most what the desired policy allows, writing nothing
 * that does not fit. If the desired denies fit: stale allows go, the desired denies are written,
 * stale denies go, and only the allows the endpoint already had and still wants stay (new allows
 * are left out). Otherwise every allow of the endpoint goes (enforced directions deny all).
 */
export function planFailClosed(input: PolicyPlanInput): PolicyPlan {
  const diff = diffPolicy(input.current, input.desired);
  const total = input.otherEntries + input.current.length;
  const deniesPeak = total - diff.staleAllows.length + diff.newDenyKeys;
  const base = { mode: "overflow" as const, needed: input.otherEntries + input.desired.length, endpointEntries: input.desired.length };
  if (deniesPeak <= input.limit) {
    return {
      ...base,
      steps: [...deletes(diff.staleAllows), ...writes(diff.denyWrites), ...deletes(diff.staleDenies)],
      added: diff.denyWrites.length,
      removed: diff.staleAllows.length + diff.staleDenies.length,
      allowsLeftOut: diff.allowWrites.length,
      failClosed: "denies-written",
    };
  }
  const allAllows = input.current.filter((e) => !e.deny);
  return {
    ...base,
    steps: deletes(allAllows),
    added: 0,
    removed: allAllows.length,
    allowsLeftOut: diff.allowWrites.length + diff.commonAllows,
    failClosed: "allows-removed",
  };
}

/* ------------------------------------------------------------------------------------------ */

function portMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffff << (16 - prefixLength)) & 0xffff;
}

function maskBits(data: Uint8Array, bits: number): void {
  for (let i = 0; i < data.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    data[i]! &= (0xff << (8 - keep)) & 0xff;
  }
}


function describeRule(rule: PolicyRule): string {
  try {
    return JSON.stringify(rule);
  } catch {
    return String(rule);
  }
}
