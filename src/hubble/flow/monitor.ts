/**
 * Human-readable names of monitor sub-types as the hubble CLI prints them in its TYPE column
 * (upstream's monitor API strings: they are part of the output users grep for).
 */

const TRACE_POINT_NAMES: Record<number, string> = {
  0: "to-endpoint",
  1: "to-proxy",
  2: "to-host",
  3: "to-stack",
  4: "to-overlay",
  5: "from-endpoint",
  6: "from-proxy",
  7: "from-host",
  8: "from-stack",
  9: "from-overlay",
  10: "from-network",
  11: "to-network",
  12: "from-crypto",
  13: "to-crypto",
};

/** "to-endpoint" -> its trace point (event sub-type), as `hubble observe -t trace:to-endpoint` takes it. */
export function tracePointByName(name: string): number | undefined {
  for (const [point, n] of Object.entries(TRACE_POINT_NAMES)) if (n === name) return Number(point);
  return undefined;
}

/** Datapath trace point (event sub-type) -> "to-endpoint", ...; unknown ones as their number. */
export function tracePointName(point: number): string {
  return TRACE_POINT_NAMES[point] ?? String(point);
}

/** Descriptions of the drop reasons (datapath numbers = flow.DropReason numbers). */
const DROP_REASON_TEXT: Record<number, string> = {
  130: "Invalid source mac",
  131: "Invalid destination mac",
  132: "Invalid source ip",
  133: "Policy denied",
  134: "Invalid packet",
  135: "CT: Truncated or invalid header",
  136: "Fragmentation needed",
  137: "CT: Unknown L4 protocol",
  138: "CT: Can't create entry from packet",
  139: "Unsupported L3 protocol",
  140: "Missed tail call",
  141: "Error writing to packet",
  142: "Unknown L4 protocol",
  143: "Unknown ICMPv4 code",
  144: "Unknown ICMPv4 type",
  145: "Unknown ICMPv6 code",
  146: "Unknown ICMPv6 type",
  147: "Error retrieving tunnel key",
  150: "Unknown L3 target address",
  151: "Stale or unroutable IP",
  152: "No matching local container found",
  153: "Error while correcting L3 checksum",
  154: "Error while correcting L4 checksum",
  155: "CT: Map insertion failed",
  156: "Invalid IPv6 extension header",
  157: "IP fragmentation not supported",
  158: "Service backend not found",
  160: "No tunnel/encapsulation endpoint (datapath BUG!)",
  162: "Reached EDT rate-limiting drop horizon",
  163: "Unknown connection tracking state",
  164: "Local host is unreachable",
  166: "Unsupported L2 protocol",
  167: "No mapping for NAT masquerade",
  168: "Unsupported protocol for NAT masquerade",
  169: "FIB lookup failed",
  170: "Encapsulation traffic is prohibited",
  171: "Invalid identity",
  172: "Unknown sender",
  173: "NAT not needed",
  174: "Is a ClusterIP",
  175: "First logical datagram fragment not found",
  176: "Forbidden ICMPv6 message",
  177: "Denied by LB src range check",
  178: "Socket lookup failed",
  179: "Socket assign failed",
  180: "Proxy redirection not supported for protocol",
  181: "Policy denied by denylist",
  182: "VLAN traffic disallowed by VLAN filter",
  183: "Incorrect VNI from VTEP",
  189: "Authentication required",
  190: "No conntrack map found",
  191: "No nat map found",
  192: "Invalid ClusterID",
  194: "No egress gateway found",
  195: "Traffic is unencrypted",
  196: "TTL exceeded",
  197: "No node ID found",
  198: "Rate limited",
  202: "Host datapath not ready",
  203: "Endpoint policy program not available",
};

/** Drop reason -> "Policy denied", ...; unknown ones as "<reason>, 0" (no extended error), as upstream. */
export function dropReasonText(reason: number): string {
  return DROP_REASON_TEXT[reason] ?? `${reason}, 0`;
}
