/**
 * An endpoint's policy map state: the entries the datapath looks up, and the lookup itself.
 *
 * Entry: {identity, direction, protocol, port, prefixLength} -> deny or allow (ports.ts for the
 * L4 part); identity 0 means "any identity". The byte layout belongs to the datapath
 * (src/datapath/maps/policy.ts); upstream's LPM key matches identity and direction in full and
 * then protocol and port by prefix, which is what `lpmPrefixLength` counts (40 static bits).
 *
 * The datapath contract (`lookupVerdict` is its reference implementation): look up the packet's
 * (identity, direction, protocol, port) and (0, direction, protocol, port); of the entries found,
 * the longer prefix wins, on equal length the identity's own entry; nothing found is a drop. For
 * ICMP the port is the ICMP type. An unenforced direction holds an allow-all entry (plus the
 * denies of rules without default deny), so the datapath must always consult the map: "no entry"
 * always means deny, and an empty or missing map fails closed. On settled states the other usual
 * rule, "deny if either longest match is a deny, else allow if either exists", gives the same
 * verdicts (tests/unit/policy-resolve.test.ts checks both on every case).
 *
 * Entries are built so that this lookup gives policy semantics: deny when any deny rule matches,
 * else allow when any allow rule matches, else deny. Longest-prefix alone would let a narrow
 * allow beat a broad deny, so per identity X (`settleIdentity`), as upstream's mapstate does:
 *  (a) an allow of X inside a deny of X is dropped;
 *  (b) an allow of X inside a deny of identity 0 is dropped;
 *  (c) for a deny of X and an allow of identity 0 strictly inside it, X gets a deny entry at the
 *      allow's key (the narrower "any" allow would otherwise win for X);
 *  and for identity 0 (`settleWildcard`), an allow inside a deny is dropped. An entry of X equal
 *  to an identity-0 entry (same key and verdict) is dropped as redundant.
 */
import { portPrefixBits, portPrefixCovers, portPrefixKey, portPrefixMatches, type PortPrefix } from "./ports.ts";
import type { Direction } from "./rule.ts";

export interface PolicyEntry extends PortPrefix {
  /** 0 = any identity. */
  identity: number;
  direction: Direction;
  deny: boolean;
}

/** Entries by `policyKey`. */
export type MapState = ReadonlyMap<string, PolicyEntry>;

export const ANY_IDENTITY = 0;
/** Identity (32 bits) and direction (8 bits) are always part of the matched prefix. */
export const STATIC_PREFIX_BITS = 40;

export function policyKey(e: PortPrefix & { identity: number; direction: Direction }): string {
  return policyKeyOf(e.direction, e.identity, portPrefixKey(e));
}

/** policyKey from parts, when the L4 part's portPrefixKey is at hand. */
function policyKeyOf(direction: Direction, identity: number, portKey: string): string {
  return `${direction === "ingress" ? 0 : 1}:${identity}:${portKey}`;
}

export function lpmPrefixLength(e: PortPrefix): number {
  return STATIC_PREFIX_BITS + portPrefixBits(e);
}

/** Verdicts by L4 prefix, for one identity (or identity 0) in one direction. */
export type PortVerdicts = Map<string, { prefix: PortPrefix; deny: boolean }>;

/** Adds a verdict; on the same prefix deny wins. `key` is the prefix's portPrefixKey. */
export function addPortVerdict(verdicts: PortVerdicts, prefix: PortPrefix, deny: boolean, key = portPrefixKey(prefix)): void {
  const seen = verdicts.get(key);
  if (!seen || (deny && !seen.deny)) verdicts.set(key, { prefix, deny });
}

const coveredBy = (denies: PortPrefix[], p: PortPrefix) => denies.some((d) => portPrefixCovers(d, p));

/** Identity 0: drops allows that a deny covers. */
export function settleWildcard(raw: PortVerdicts): PortVerdicts {
  const denies = [...raw.values()].filter((v) => v.deny).map((v) => v.prefix);
  const out: PortVerdicts = new Map();
  for (const [key, v] of raw) if (v.deny || !coveredBy(denies, v.prefix)) out.set(key, v);
  return out;
}

/** One identity's entries given its raw verdicts and the settled identity-0 verdicts. */
export function settleIdentity(raw: PortVerdicts, wildcard: PortVerdicts): PortVerdicts {
  const own = [...raw.values()].filter((v) => v.deny).map((v) => v.prefix);
  if (own.length === 0 && wildcard.size === 0) return raw; // only allows: nothing to settle
  const anyDenies: PortPrefix[] = [];
  const anyAllows: PortPrefix[] = [];
  for (const v of wildcard.values()) (v.deny ? anyDenies : anyAllows).push(v.prefix);

  const out: PortVerdicts = new Map();
  for (const [key, v] of raw) {
    if (!v.deny && (coveredBy(own, v.prefix) || coveredBy(anyDenies, v.prefix))) continue; // (a), (b)
    if (wildcard.get(key)?.deny === v.deny) continue; // redundant
    out.set(key, v);
  }
  for (const d of own) {
    for (const a of anyAllows) {
      if (portPrefixBits(a) > portPrefixBits(d) && portPrefixCovers(d, a)) out.set(portPrefixKey(a), { prefix: a, deny: true }); // (c)
    }
  }
  return out;
}

export function toEntries(identity: number, direction: Direction, verdicts: PortVerdicts): PolicyEntry[] {
  return [...verdicts.values()].map(({ prefix, deny }) => toEntry(identity, direction, prefix, deny));
}

function toEntry(identity: number, direction: Direction, prefix: PortPrefix, deny: boolean): PolicyEntry {
  return { identity, direction, protocol: prefix.protocol, port: prefix.port, prefixLength: prefix.prefixLength, deny };
}

/** Adds one identity's verdicts to a map state. */
export function addToState(state: Map<string, PolicyEntry>, identity: number, direction: Direction, verdicts: PortVerdicts): void {
  for (const [portKey, { prefix, deny }] of verdicts) state.set(policyKeyOf(direction, identity, portKey), toEntry(identity, direction, prefix, deny));
}

/** The datapath's decision for one packet: the reference the BPF lookup must agree with. */
export function lookupVerdict(state: MapState, identity: number, direction: Direction, protocol: number, port: number): "allow" | "deny" {
  let best: PolicyEntry | undefined;
  for (const e of state.values()) {
    if (e.direction !== direction || (e.identity !== identity && e.identity !== ANY_IDENTITY)) continue;
    if (!portPrefixMatches(e, protocol, port)) continue;
    if (!best) {
      best = e;
      continue;
    }
    const bits = portPrefixBits(e);
    const bestBits = portPrefixBits(best);
    if (bits > bestBits || (bits === bestBits && e.identity !== ANY_IDENTITY)) best = e;
  }
  return best && !best.deny ? "allow" : "deny";
}
