/**
 * The overlay device of routing mode "tunnel": cilium_vxlan, a collect-metadata ("external")
 * VXLAN device. BPF sets each packet's tunnel key (outer destination, and the source identity as
 * the VNI) before redirecting to it; packets it decapsulates reach cil_from_overlay with their
 * key. The device outlives the agent like the pinned programs do.
 */
import { Netlink, type Link } from "./netlink/index.ts";

export const VXLAN_DEVICE = "cilium_vxlan";
/** Upstream's default VXLAN port (the Linux kernel's too). */
export const DEFAULT_TUNNEL_PORT = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): pods get the underlay MTU less this. */
export const VXLAN_OVERHEAD = 50;

export type RoutingMode = "tunnel" | "native";

/**
 * Creates cilium_vxlan, or adopts the one an earlier run left when it is what we need (external,
 * this port, no learning); one that is not is replaced. Up, with `mtu` (the pods' MTU).
 */
export function ensureVxlanDevice(netlink: Netlink, options: { port: number; mtu: number }): Link {
  checkTunnelPort(options.port);
  const existing = netlink.link(VXLAN_DEVICE);
  if (existing && !isOurVxlan(existing, options.port)) netlink.deleteLink(VXLAN_DEVICE);
  if (!existing || !isOurVxlan(existing, options.port)) {
    netlink.createVxlan({ name: VXLAN_DEVICE, external: true, port: options.port, learning: false, mtu: options.mtu });
  }
  netlink.setMtu(VXLAN_DEVICE, options.mtu);
  netlink.setLinkUp(VXLAN_DEVICE);
  return netlink.link(VXLAN_DEVICE)!;
}

/** Deletes cilium_vxlan (a node switched to native routing); false when there was none. */
export function removeVxlanDevice(netlink: Netlink): boolean {
  if (!netlink.link(VXLAN_DEVICE)) return false;
  netlink.deleteLink(VXLAN_DEVICE);
  return true;
}

export function checkTunnelPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`tunnel port ${String(port)} must be an integer from 1 to 65535`);
  return port;
}

function isOurVxlan(link: Link, port: number): boolean {
  return link.kind === "vxlan" && link.vxlan?.external === true && link.vxlan.port === port && link.vxlan.learning !== true;
}
