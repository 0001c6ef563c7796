/** cilium_ct4_global: IPv4 connection tracking (bpf/lib/maps.h: ct4_key, ct_entry; bpf/lib/conntrack.h). */
import { be16, ipv4, pad, struct, u16, u32, u64, u8, type Infer } from "../bpf/index.ts";

export const CONNTRACK_MAP = "cilium_ct4_global";

/** ct4_key.flags: the view the entry belongs to (bpf/README.md, "Conntrack model"). */
export const CtKeyFlags = {
  /** Opened by the endpoint (its egress view). */
  Out: 0,
  /** Opened towards the endpoint (its ingress view). */
  In: 1,
} as const;

/** ct_entry.flags. */
export const CtEntryFlags = {
  TxClosing: 0x1,
  RxClosing: 0x2,
  SeenNonSyn: 0x4,
} as const;

export const CtKey = struct({
  saddr: ipv4,
  daddr: ipv4,
  /** Port, or the ICMP echo id of a request. */
  sport: be16,
  dport: be16,
  proto: u8,
  /** CtKeyFlags. */
  flags: u8,
  pad: pad(2),
});

export const CtEntry = struct({
  /** Deadline in CLOCK_MONOTONIC nanoseconds (the datapath reads the tick-resolution clock): expired entries read as missing. */
  expires: u64,
  txPackets: u64,
  txBytes: u64,
  rxPackets: u64,
  rxBytes: u64,
  /** Monotonic seconds at creation. */
  created: u32,
  txFlagsSeen: u8,
  rxFlagsSeen: u8,
  /** CtEntryFlags. */
  flags: u16,
  srcSecId: u32,
  pad: pad(4),
});

export type CtKeyValue = Infer<typeof CtKey>;
export type CtEntryValue = Infer<typeof CtEntry>;
