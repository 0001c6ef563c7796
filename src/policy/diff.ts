/**
 * The difference between two map states, in an order that never opens more than the old or the
 * new state allows. (Writing to the kernel, with its fail-closed size check, is the datapath's
 * NodeDatapath.setEndpointPolicy.)
 *
 * Order: (1) put deny entries, (2) delete allow entries no longer wanted, (3) put allow
 * entries, (4) delete deny entries no longer wanted. Adding a deny or removing an allow can only
 * narrow what passes, so after (1) and (2) the map allows at most what both states allow; (3)
 * reaches the new allows while the stale denies still narrow them; (4) completes the new state.
 */
import { policyKey, type MapState, type PolicyEntry } from "./map-state.ts";

export type MapOp = { op: "put"; entry: PolicyEntry } | { op: "delete"; entry: PolicyEntry };

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
