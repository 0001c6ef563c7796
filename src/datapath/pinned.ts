/** Reading a node's pinned maps from outside the agent (the debug CLI). */
import { join } from "node:path";
import { BpfMap } from "./bpf/index.ts";
import { ipcacheCidrOf, IpcacheKey, IPCACHE_MAP, RemoteEndpointInfo, type IpcacheEntry, type IpcacheKeyValue, type RemoteEndpointInfoValue } from "./maps/ipcache.ts";
import { EndpointFlags, EndpointInfo, EndpointKey, ENDPOINTS_MAP, type EndpointInfoValue } from "./maps/endpoints.ts";
import {
  checkEndpointId,
  normalizePolicyKey,
  POLICY_MAP,
  PolicyEntry,
  PolicyEntryFlags,
  PolicyKey,
  policyRuleOf,
  sortPolicyRules,
  type EndpointPolicy,
  type PolicyEntryValue,
  type PolicyKeyValue,
  type PolicyRule,
} from "./maps/policy.ts";

/** Where a node's maps are pinned (libbpf's pin root for maps declared LIBBPF_PIN_BY_NAME). */
export function mapPinRoot(bpfRoot: string): string {
  return join(bpfRoot, "tc", "globals");
}

export function pinnedMapPath(bpfRoot: string, name: string): string {
  return join(mapPinRoot(bpfRoot), name);
}

export function listPinnedEndpoints(bpfRoot: string): { ip: string; info: EndpointInfoValue }[] {
  const path = pinnedMapPath(bpfRoot, ENDPOINTS_MAP);
  let map: BpfMap<{ ip4: string }, EndpointInfoValue>;
  try {
    map = BpfMap.openPinned(path, EndpointKey, EndpointInfo);
  } catch (error) {
    throw new Error(`cannot open the endpoint map ${path}: ${(error as Error).message} (is the agent's datapath loaded, and is --bpf-root right?)`);
  }
  try {
    return [...map.entries()].map(([key, info]) => ({ ip: key.ip4, info }));
  } finally {
    map.close();
  }
}

/** The ipcache as the kernel holds it (prefix -> identity, tunnel endpoint), by address then prefix length. */
export function listPinnedIpcache(bpfRoot: string): IpcacheEntry[] {
  const path = pinnedMapPath(bpfRoot, IPCACHE_MAP);
  let map: BpfMap<IpcacheKeyValue, RemoteEndpointInfoValue>;
  try {
    map = BpfMap.openPinned(path, IpcacheKey, RemoteEndpointInfo);
  } catch (error) {
    throw new Error(`cannot open the ipcache map ${path}: ${(error as Error).message} (is the agent's datapath loaded, and is --bpf-root right?)`);
  }
  try {
    return [...map.entries()]
      .map(([key, value]): IpcacheEntry => ({
        cidr: ipcacheCidrOf(key),
        identity: value.secIdentity,
        ...(value.tunnelEndpoint !== "0.0.0.0" ? { tunnelEndpoint: value.tunnelEndpoint } : {}),
      }))
      .sort((a, b) => a.cidr.localeCompare(b.cidr, "en", { numeric: true }));
  } finally {
    map.close();
  }
}

/**
 * One endpoint's policy as the kernel holds it: the enforcement bits of its cilium_lxc entry
 * (none when it has no entry) and its cilium_policy entries, normalized and sorted.
 */
export function readPinnedPolicy(bpfRoot: string, endpointId: number): EndpointPolicy & { endpointFound: boolean } {
  checkEndpointId(endpointId);
  const path = pinnedMapPath(bpfRoot, POLICY_MAP);
  let map: BpfMap<PolicyKeyValue, PolicyEntryValue>;
  try {
    map = BpfMap.openPinned(path, PolicyKey, PolicyEntry);
  } catch (error) {
    throw new Error(`cannot open the policy map ${path}: ${(error as Error).message} (is the agent's datapath loaded, and is --bpf-root right?)`);
  }
  const entries: PolicyRule[] = [];
  try {
    for (const [key, value] of map.entries()) {
      if (key.endpointId !== endpointId) continue;
      entries.push(policyRuleOf(normalizePolicyKey(key), (value.flags & PolicyEntryFlags.Deny) !== 0));
    }
  } finally {
    map.close();
  }
  const endpoint = listPinnedEndpoints(bpfRoot).find((e) => e.info.lxcId === endpointId);
  const flags = endpoint?.info.flags ?? 0;
  return {
    endpointFound: endpoint !== undefined,
    ingressEnforced: (flags & EndpointFlags.PolicyIngress) !== 0,
    egressEnforced: (flags & EndpointFlags.PolicyEgress) !== 0,
    entries: sortPolicyRules(entries),
  };
}
