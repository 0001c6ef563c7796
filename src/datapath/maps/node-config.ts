/** cilium_node_config: the one entry describing this node (bpf/lib/maps.h: node_config). */
import { array, be16, ipv4, mac, pad, struct, u16, u32, u8, type Infer } from "../bpf/index.ts";

export const NODE_CONFIG_MAP = "cilium_node_config";

/** NODE_F_* flags. */
export const NodeFlags = {
  Masquerade: 1 << 0,
  /** Routing mode tunnel: encapsulate to ipcache tunnel endpoints via tunnelIfindex. */
  Tunnel: 1 << 1,
} as const;

/** MONITOR_AGG_* levels (upstream's --monitor-aggregation). */
export const MonitorAggregation = { none: 0, low: 1, medium: 2, maximum: 3 } as const;
export type MonitorAggregationLevel = keyof typeof MonitorAggregation;

export const NodeConfig = struct({
  nodeIp4: ipv4,
  podCidr4: ipv4,
  podCidr4Mask: ipv4,
  clusterCidr4: ipv4,
  clusterCidr4Mask: ipv4,
  hostIp4: ipv4,
  hostIfindex: u32,
  nativeIfindex: u32,
  hostMac: mac,
  monitorAggregation: u8,
  pad0: pad(1),
  flags: u32,
  snatPortMin: u16,
  snatPortMax: u16,
  /** cilium_vxlan; 0 = no overlay. */
  tunnelIfindex: u32,
  /** The VXLAN port the datapath encapsulates to itself (bpf/lib/overlay.h); 0 = always through cilium_vxlan. */
  tunnelPort: be16,
  pad1: pad(2),
  reserved: array(u32, 2),
});

export type NodeConfigValue = Infer<typeof NodeConfig>;
