/** cilium_lxc: local endpoints by IPv4 address (bpf/lib/maps.h: endpoint_key, endpoint_info). */
import { ipv4, mac, pad, struct, u16, u32, type Infer } from "../bpf/index.ts";

export const ENDPOINTS_MAP = "cilium_lxc";

/** endpoint_info.flags (ENDPOINT_F_*): the directions with policy enforced. A direction without its bit allows everything. */
export const EndpointFlags = {
  PolicyIngress: 1 << 0,
  PolicyEgress: 1 << 1,
} as const;

/** The enforcement bits of endpoint_info.flags. */
export const ENDPOINT_POLICY_FLAGS = EndpointFlags.PolicyIngress | EndpointFlags.PolicyEgress;

export const EndpointKey = struct({ ip4: ipv4 });

export const EndpointInfo = struct({
  /** Host-side veth. */
  ifindex: u32,
  lxcId: u16,
  /** EndpointFlags. */
  flags: u16,
  /** Pod eth0 MAC. */
  mac,
  /** Host-side veth MAC: the pod's gateway MAC. */
  nodeMac: mac,
  secIdentity: u32,
  pad: pad(4),
});

export type EndpointKeyValue = Infer<typeof EndpointKey>;
export type EndpointInfoValue = Infer<typeof EndpointInfo>;
