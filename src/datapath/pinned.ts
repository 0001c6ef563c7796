/** Reading a node's pinned maps from outside the agent (the debug CLI). */
import { join } from "node:path";
import { BpfMap } from "./bpf/index.ts";
import { EndpointInfo, EndpointKey, ENDPOINTS_MAP, type EndpointInfoValue } from "./maps/endpoints.ts";

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
