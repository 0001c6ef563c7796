/**
 * The Flow.Summary line ("TCP Flags: SYN, ACK", "ICMPv4 EchoRequest", "UDP"), in the words the
 * hubble CLI users know from upstream's parser (ICMP names are gopacket's type/code strings).
 */
import type { Layer4, TCPFlags } from "../flow/types.ts";

/** Order in which upstream lists flags. */
const FLAG_ORDER = ["SYN", "ACK", "RST", "FIN", "PSH", "URG", "ECE", "CWR", "NS"] as const satisfies readonly (keyof TCPFlags)[];

const ICMPV4_TYPES: Record<number, string> = {
  0: "EchoReply",
  3: "DestinationUnreachable",
  4: "SourceQuench",
  5: "Redirect",
  8: "EchoRequest",
  9: "RouterAdvertisement",
  10: "RouterSolicitation",
  11: "TimeExceeded",
  12: "ParameterProblem",
  13: "TimestampRequest",
  14: "TimestampReply",
};

const ICMPV4_CODES: Record<number, Record<number, string>> = {
  3: {
    0: "Net",
    1: "Host",
    2: "Protocol",
    3: "Port",
    4: "FragmentationNeeded",
    5: "SourceRoutingFailed",
    6: "NetUnknown",
    7: "HostUnknown",
    8: "SourceIsolated",
    9: "NetAdminProhibited",
    10: "HostAdminProhibited",
    11: "NetTOS",
    12: "HostTOS",
    13: "CommAdminProhibited",
    14: "HostPrecedence",
    15: "PrecedenceCutoff",
  },
  5: { 0: "Network", 1: "Host", 2: "TOS+Network", 3: "TOS+Host" },
  11: { 0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded" },
  12: { 0: "PointerIndicatesError", 1: "MissingOption", 2: "BadLength" },
};

const ICMPV6_TYPES: Record<number, string> = {
  1: "DestinationUnreachable",
  2: "PacketTooBig",
  3: "TimeExceeded",
  4: "ParameterProblem",
  128: "EchoRequest",
  129: "EchoReply",
  133: "RouterSolicitation",
  134: "RouterAdvertisement",
  135: "NeighborSolicitation",
  136: "NeighborAdvertisement",
  137: "Redirect",
};

export function tcpFlagsText(flags: TCPFlags | undefined): string {
  return FLAG_ORDER.filter((f) => flags?.[f]).join(", ");
}

function icmpText(types: Record<number, string>, codes: Record<number, Record<number, string>>, type: number, code: number): string {
  const name = types[type];
  if (name === undefined) return `${type}(${code})`;
  const codeName = codes[type]?.[code];
  // gopacket: a type without code names shows a non-zero code as a number.
  if (codeName === undefined) return codes[type] === undefined && code === 0 ? name : `${name}(Code: ${code})`;
  return `${name}(${codeName})`;
}

/** gopacket's words for an ICMP type and code ("EchoRequest", "DestinationUnreachable(Port)"), as upstream's metrics label them. */
export function icmpTypeCodeText(family: "ICMPv4" | "ICMPv6", type: number, code: number): string {
  return family === "ICMPv4" ? icmpText(ICMPV4_TYPES, ICMPV4_CODES, type, code) : icmpText(ICMPV6_TYPES, {}, type, code);
}

/** The parser shares one flags object per flag combination: their summaries are kept. */
const tcpSummaries = new WeakMap<TCPFlags, string>();

function tcpSummary(flags: TCPFlags | undefined): string {
  if (flags === undefined) return "TCP Flags: ";
  let text = tcpSummaries.get(flags);
  if (text === undefined) tcpSummaries.set(flags, (text = `TCP Flags: ${tcpFlagsText(flags)}`));
  return text;
}

export function summarize(l4: Layer4 | undefined, hasIp: boolean): string {
  if (l4?.TCP) return tcpSummary(l4.TCP.flags);
  if (l4?.UDP) return "UDP";
  if (l4?.SCTP) return "SCTP";
  if (l4?.ICMPv4) return `ICMPv4 ${icmpText(ICMPV4_TYPES, ICMPV4_CODES, l4.ICMPv4.type, l4.ICMPv4.code)}`;
  if (l4?.ICMPv6) return `ICMPv6 ${icmpText(ICMPV6_TYPES, {}, l4.ICMPv6.type, l4.ICMPv6.code)}`;
  return hasIp ? "IP" : "Ethernet";
}
