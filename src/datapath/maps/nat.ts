/** cilium_snat_v4_external: masquerade translations (bpf/lib/maps.h: ipv4_nat_tuple, ipv4_nat_entry; bpf/lib/nat.h). */
import { be16, ipv4, pad, struct, u64, u8, type Infer } from "../bpf/index.ts";

export const SNAT_MAP = "cilium_snat_v4_external";

/**
 * ipv4_nat_tuple.dir. A masqueraded connection has one entry each way: EGRESS {pod, remote,
 * pod port, remote port} -> {node address, NAT port}, INGRESS {remote, node address, remote
 * port, NAT port} -> {pod, pod port}.
 */
export const NatDir = {
  Egress: 0,
  Ingress: 1,
} as const;

export const NatTuple = struct({
  saddr: ipv4,
  daddr: ipv4,
  sport: be16,
  dport: be16,
  proto: u8,
  /** NatDir. */
  dir: u8,
  pad: pad(2),
});

export const NatEntry = struct({
  /** The address written: the source going out, the destination coming back. */
  toAddr: ipv4,
  /** The port (or ICMP echo id) written. */
  toPort: be16,
  pad: pad(2),
  /** CLOCK_MONOTONIC nanoseconds (the datapath reads the tick-resolution clock). */
  created: u64,
  /** CLOCK_MONOTONIC nanoseconds, refreshed at most once a second. */
  lastSeen: u64,
});

export type NatTupleValue = Infer<typeof NatTuple>;
export type NatEntryValue = Infer<typeof NatEntry>;
