/**
 * Numeric security identities and their ranges, as upstream (pkg/identity/numericidentity.go):
 *
 *   0                 unknown / invalid
 *   1..255            reserved (1..8 below; 100+ well-known and 128..255 user-reserved upstream)
 *   256..65535        allocated cluster-wide through the state backend (cluster ID 0)
 *   2^24 | 1..2^24-1  node-local identities, used for CIDRs (LocalIdentityFlag = 1 << 24)
 *
 * The local flag keeps CIDR identities out of the cluster-wide space: they never leave the node.
 */
import type { LabelSet } from "./labels.ts";

export interface Identity {
  id: number;
  labels: LabelSet;
}

export const UNKNOWN_IDENTITY = 0;
export const MIN_ALLOCATED_IDENTITY = 256;
/** (1 << 16) * (clusterID + 1) - 1 for cluster ID 0, as upstream. */
export const MAX_ALLOCATED_IDENTITY = 65535;
export const LOCAL_IDENTITY_FLAG = 1 << 24;
export const MIN_LOCAL_IDENTITY = LOCAL_IDENTITY_FLAG | 1;
export const MAX_LOCAL_IDENTITY = LOCAL_IDENTITY_FLAG | 0xffffff;

export type IdentityScope = "unknown" | "reserved" | "global" | "local";

export function identityScope(id: number): IdentityScope {
  if (!Number.isInteger(id) || id <= 0 || id > MAX_LOCAL_IDENTITY) return "unknown";
  if (id >= MIN_LOCAL_IDENTITY) return "local";
  if (id < MIN_ALLOCATED_IDENTITY) return "reserved";
  return id <= MAX_ALLOCATED_IDENTITY ? "global" : "unknown";
}
