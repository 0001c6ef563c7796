/**
 * Garbage collection of cilium_ct4_global and cilium_snat_v4_external. The datapath treats an
 * expired conntrack entry as missing but leaves it in the map, and a masquerade mapping outlives
 * its connection; both only go when the LRU needs room, which under pressure would evict live
 * connections' entries first. One pass deletes:
 * - conntrack entries whose `expires` has passed (re-read just before the delete: one the datapath
 *   has just re-created for a new connection stays);
 * - masquerade pairs whose connection has no live conntrack entry any more (the pod's egress
 *   entry {pod, remote, ports, proto, OUT}) and that have carried no packet for `natIdleNs`, so a
 *   flowing connection keeps its NAT port even if its conntrack entry was evicted; and INGRESS
 *   entries whose EGRESS half is gone, after the same idle time.
 */
import { BpfMap, type Codec } from "./bpf/index.ts";
import { monotonicNs } from "./clock.ts";
import { CONNTRACK_MAP, CtEntry, CtKey, CtKeyFlags, type CtEntryValue, type CtKeyValue } from "./maps/conntrack.ts";
import { NatDir, NatEntry, NatTuple, SNAT_MAP, type NatEntryValue, type NatTupleValue } from "./maps/nat.ts";
import { pinnedMapPath } from "./pinned.ts";

/** A mapping idle this long, without a live conntrack entry, is garbage (masquerade is for pods' own flows). */
export const DEFAULT_NAT_IDLE_NS = 10n * 1_000_000_000n;

export interface ConntrackMaps {
  ct: BpfMap<CtKeyValue, CtEntryValue>;
  snat: BpfMap<NatTupleValue, NatEntryValue>;
  close(): void;
}

/** What one pass saw and removed. */
export interface GcPassStats {
  ctEntries: number;
  ctDeleted: number;
  natEntries: number;
  natDeleted: number;
}

/** The node's pinned maps under --bpf-root (the agent's own, and the debug CLI's). */
export function openConntrackMaps(bpfRoot: string): ConntrackMaps {
  const open = <K, V>(name: string, key: Codec<K>, value: Codec<V>) => {
    const path = pinnedMapPath(bpfRoot, name);
    try {
      return BpfMap.openPinned<K, V>(path, key, value);
    } catch (error) {
      throw new Error(`cannot open ${name} at ${path}: ${(error as Error).message} (is the agent's datapath loaded, and is --bpf-root right?)`);
    }
  };
  const ct = open<CtKeyValue, CtEntryValue>(CONNTRACK_MAP, CtKey, CtEntry);
  let snat;
  try {
    snat = open<NatTupleValue, NatEntryValue>(SNAT_MAP, NatTuple, NatEntry);
  } catch (error) {
    ct.close();
    throw error;
  }
  return {
    ct,
    snat,
    close() {
      ct.close();
      snat.close();
    },
  };
}

export function collectConntrackGarbage(maps: ConntrackMaps, options: { now?: bigint; natIdleNs?: bigint } = {}): GcPassStats {
  const now = options.now ?? monotonicNs();
  const natIdleNs = options.natIdleNs ?? DEFAULT_NAT_IDLE_NS;
  const { ct, snat } = maps;

  const ctEntries = ct.batchLookup();
  let ctDeleted = 0;
  for (const [key, entry] of ctEntries) {
    if (entry.expires > now) continue;
    const current = ct.lookup(key);
    if (current && current.expires <= now && ct.delete(key)) ctDeleted++;
  }

  const natEntries = snat.batchLookup();
  const present = new Set(natEntries.map(([key]) => natKeyText(key)));
  let natDeleted = 0;
  const idle = (entry: NatEntryValue) => entry.lastSeen + natIdleNs <= now;
  for (const [key, entry] of natEntries) {
    if (!idle(entry)) continue;
    if (key.dir === NatDir.Egress) {
      if (liveConnection(ct, key, now)) continue;
      if (snat.delete(key)) natDeleted++;
      if (snat.delete(ingressPartner(key, entry))) natDeleted++;
    } else if (!present.has(natKeyText(egressPartner(key, entry)))) {
      // Its EGRESS half is gone (deleted above, or evicted): nothing translates out to it any more.
      if (snat.delete(key)) natDeleted++;
    }
  }
  return { ctEntries: ctEntries.length, ctDeleted, natEntries: natEntries.length, natDeleted };
}

/** The pod's egress conntrack entry of a masqueraded connection, unexpired. */
function liveConnection(ct: BpfMap<CtKeyValue, CtEntryValue>, egress: NatTupleValue, now: bigint): boolean {
  const entry = ct.lookup({ saddr: egress.saddr, daddr: egress.daddr, sport: egress.sport, dport: egress.dport, proto: egress.proto, flags: CtKeyFlags.Out });
  return entry !== undefined && entry.expires > now;
}

/** EGRESS {pod, remote, pod port, remote port} -> {node, nat port} pairs with INGRESS {remote, node, remote port, nat port}. */
function ingressPartner(egress: NatTupleValue, entry: NatEntryValue): NatTupleValue {
  return { saddr: egress.daddr, daddr: entry.toAddr, sport: egress.dport, dport: entry.toPort, proto: egress.proto, dir: NatDir.Ingress };
}

/** INGRESS {remote, node, remote port, nat port} -> {pod, pod port} pairs with EGRESS {pod, remote, pod port, remote port}. */
function egressPartner(ingress: NatTupleValue, entry: NatEntryValue): NatTupleValue {
  return { saddr: entry.toAddr, daddr: ingress.saddr, sport: entry.toPort, dport: ingress.sport, proto: ingress.proto, dir: NatDir.Egress };
}

function natKeyText(key: NatTupleValue): string {
  return `${key.saddr}|${key.daddr}|${key.sport}|${key.dport}|${key.proto}|${key.dir}`;
}
