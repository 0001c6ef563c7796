/** `cilium bpf ct list global` and `cilium bpf nat list` lines, in upstream's shape. */
import type { CtEntryValue, CtKeyValue } from "../../datapath/maps/conntrack.ts";
import { CtKeyFlags } from "../../datapath/maps/conntrack.ts";
import type { NatEntryValue, NatTupleValue } from "../../datapath/maps/nat.ts";
import { NatDir } from "../../datapath/maps/nat.ts";

const PROTOCOLS: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 132: "SCTP" };

function protocol(proto: number): string {
  return PROTOCOLS[proto] ?? `proto${proto}`;
}

const hex = (value: number, width: number) => `0x${value.toString(16).padStart(width, "0")}`;

/** One entry; `expires` in monotonic seconds, as upstream prints it, and "(expired)" past `now`. */
export function formatCtEntry(key: CtKeyValue, entry: CtEntryValue, now: bigint): string {
  const direction = key.flags === CtKeyFlags.In ? "IN" : "OUT";
  const expired = entry.expires <= now ? " (expired)" : "";
  return (
    `${protocol(key.proto)} ${direction} ${key.saddr}:${key.sport} -> ${key.daddr}:${key.dport} ` +
    `expires=${entry.expires / 1_000_000_000n}${expired} RxPackets=${entry.rxPackets} RxBytes=${entry.rxBytes} RxFlagsSeen=${hex(entry.rxFlagsSeen, 2)} ` +
    `TxPackets=${entry.txPackets} TxBytes=${entry.txBytes} TxFlagsSeen=${hex(entry.txFlagsSeen, 2)} Flags=${hex(entry.flags, 4)} ` +
    `SourceSecurityID=${entry.srcSecId} Created=${entry.created}`
  );
}

export function formatNatEntry(key: NatTupleValue, entry: NatEntryValue): string {
  const [direction, rewrite] = key.dir === NatDir.Ingress ? ["IN", "XLATE_DST"] : ["OUT", "XLATE_SRC"];
  return (
    `${protocol(key.proto)} ${direction} ${key.saddr}:${key.sport} -> ${key.daddr}:${key.dport} ` +
    `${rewrite} ${entry.toAddr}:${entry.toPort} Created=${entry.created / 1_000_000_000n}sec LastSeen=${entry.lastSeen / 1_000_000_000n}sec`
  );
}
