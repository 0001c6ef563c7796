/**
 * Writing a new map state into the kernel: only the differences, in an order that never opens
 * more than the old or the new state allows, and a size check that fails closed.
 *
 * Order: (1) put deny entries, (2) delete allow entries no longer wanted, (3) put allow
 * entries, (4) delete deny entries no longer wanted. Adding a deny or removing an allow can only
 * narrow what passes, so after (1) and (2) the map allows at most what both states allow; (3)
 * reaches the new allows while the stale denies still narrow them; (4) completes the new state.
 *
 * A state larger than the map fails closed: the plan empties the endpoint's map (no entry =
 * drop, both directions) and reports the overflow, rather than writing part of the state (a
 * partial write could keep an allow and lose the deny that narrows it).
 */
import { policyKey, type MapState, type PolicyEntry } from "./map-state.ts";

export type MapOp = { op: "put"; entry: PolicyEntry } | { op: "delete"; entry: PolicyEntry };

/** Upstream's default policy map size (--bpf-policy-map-max). */
export const DEFAULT_POLICY_MAP_MAX_ENTRIES = 16384;

export function diffEntries(before: Iterable<PolicyEntry>, after: Iterable<PolicyEntry>): MapOp[] {
  const old = new Map<string, PolicyEntry>();
  for (const e of before) old.set(policyKey(e), e);
  const next = new Map<string, PolicyEntry>();
  for (const e of after) next.set(policyKey(e), e);
  return diffMapState(old, next);
}

export function diffMapState(previous: MapState, desired: MapState): MapOp[] {
  const putDeny: MapOp[] = [];
  const putAllow: MapOp[] = [];
  const deleteAllow: MapOp[] = [];
  const deleteDeny: MapOp[] = [];
  for (const [key, entry] of desired) {
    const old = previous.get(key);
    if (old && old.deny === entry.deny) continue;
    (entry.deny ? putDeny : putAllow).push({ op: "put", entry });
  }
  for (const [key, entry] of previous) {
    if (desired.has(key)) continue;
    (entry.deny ? deleteDeny : deleteAllow).push({ op: "delete", entry });
  }
  return [...putDeny, ...deleteAllow, ...putAllow, ...deleteDeny];
}

export class PolicyMapOverflowError extends Error {
  constructor(
    readonly endpoint: string,
    readonly entries: number,
    readonly maxEntries: number,
  ) {
    super(
      `endpoint ${endpoint}: its policy needs ${entries} map entries, more than the policy map holds (${maxEntries}); ` +
        "all its traffic is dropped until the policy shrinks or the map grows",
    );
    this.name = "PolicyMapOverflowError";
  }
}

export interface PolicyMapPlan {
  ops: MapOp[];
  /** Set when the desired state does not fit: `ops` then empty the map (drop everything). */
  overflow?: PolicyMapOverflowError;
}

const EMPTY: MapState = new Map();

export function planPolicyMapUpdate(endpoint: string | number, previous: MapState, desired: MapState, maxEntries = DEFAULT_POLICY_MAP_MAX_ENTRIES): PolicyMapPlan {
  if (desired.size > maxEntries) {
    return { ops: diffMapState(previous, EMPTY), overflow: new PolicyMapOverflowError(String(endpoint), desired.size, maxEntries) };
  }
  return { ops: diffMapState(previous, desired) };
}
