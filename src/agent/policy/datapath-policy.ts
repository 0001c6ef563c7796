/**
 * An endpoint's resolved map state (src/policy) as the datapath takes it (setEndpointPolicy).
 *
 * The datapath skips the policy map for a direction that is not enforced, while the resolved
 * state encodes "not enforced" as an allow-all entry (identity 0, every protocol) plus the denies
 * of rules without default deny. So, per direction: a state of nothing but that one allow-all
 * entry is written as "not enforced, no entries"; anything else is enforced with every entry,
 * allow-all and denies included (the map then allows all but the denies). A direction without any
 * entry is enforced and empty: it denies everything.
 */
import type { EndpointPolicy as DatapathPolicy, PolicyRule } from "../../datapath/maps/policy.ts";
import type { MapState, PolicyEntry } from "../../policy/map-state.ts";
import { DIRECTIONS, type Direction } from "../../policy/rule.ts";

function isAllowAll(entry: PolicyEntry): boolean {
  return entry.identity === 0 && entry.protocol === 0 && !entry.deny;
}

function toRule(entry: PolicyEntry): PolicyRule {
  return {
    direction: entry.direction,
    identity: entry.identity,
    protocol: entry.protocol,
    port: entry.protocol === 0 ? 0 : entry.port,
    prefixLength: entry.protocol === 0 ? 0 : entry.prefixLength,
    deny: entry.deny,
  };
}

export function datapathPolicy(state: MapState): DatapathPolicy {
  const byDirection: Record<Direction, PolicyEntry[]> = { ingress: [], egress: [] };
  for (const entry of state.values()) byDirection[entry.direction].push(entry);
  const enforced = (d: Direction) => !(byDirection[d].length === 1 && isAllowAll(byDirection[d][0]!));
  const entries: PolicyRule[] = [];
  for (const d of DIRECTIONS) if (enforced(d)) entries.push(...byDirection[d].map(toRule));
  return { ingressEnforced: enforced("ingress"), egressEnforced: enforced("egress"), entries };
}
