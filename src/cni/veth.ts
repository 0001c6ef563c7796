/**
 * The kernel side of an attachment: the veth pair, the pod's address and routes, the host end.
 * Synchronous netlink calls; the caller maps failures to CNI errors and owns the rollback.
 */
import { SyscallError } from "../datapath/errors.ts";
import type { Link, Netlink } from "../datapath/netlink/index.ts";
import { writeSysctl } from "../datapath/sysctl.ts";
import type { Sandbox } from "./sandbox.ts";

export interface VethNames {
  host: string;
  pod: string;
}

/**
 * Creates the pair with the peer directly inside the pod's namespace under its final name: no
 * move (an RCU grace period) and no rename. The kernel makes both ends or neither; a half-done
 * ADD leaves at most the pair, which the runtime's DEL removes with the host end.
 */
export function createVethPair(host: Netlink, sandbox: Sandbox, names: VethNames, mtu: number | undefined): void {
  host.createVeth({ name: names.host, peerName: names.pod, mtu, peerNetns: sandbox.netns });
}

/**
 * Inside the pod: the address as a /32 (no subnet: every packet goes to the gateway, where the
 * datapath on the host end takes it), a link-scoped host route to the gateway so that it is
 * reachable without a shared subnet, and the default route through it. IPv6 is turned off on
 * the interface before it comes up: pods are IPv4-only here, and a link-local address would
 * send router solicitations and neighbour discovery into the datapath to be dropped.
 */
export function configurePodInterface(sandbox: Sandbox, ifname: string, ip: string, gateway: string): void {
  const pod = sandbox.netlink;
  pod.setLinkUp("lo");
  disableIpv6(sandbox, ifname);
  pod.addAddress(ifname, `${ip}/32`);
  // Up before the routes: the kernel refuses routes through a link that is down.
  pod.setLinkUp(ifname);
  pod.addRoute({ dst: `${gateway}/32`, dev: ifname, scope: "link" });
  pod.addRoute({ dst: "default", via: gateway, dev: ifname });
}

function disableIpv6(sandbox: Sandbox, ifname: string): void {
  try {
    writeSysctl(`net/ipv6/conf/${ifname}/disable_ipv6`, 1, { netns: sandbox.netns });
  } catch (error) {
    // No /proc/sys/net/ipv6: the kernel runs without IPv6, which is what we want anyway.
    if (!(error instanceof SyscallError && error.code === "ENOENT")) throw error;
  }
}

/**
 * Brings the host end up. Reverse-path filtering is turned off on it: replies to the pod are
 * routed through the agent's host device, not this veth, and a strict rp_filter would drop the
 * pod's packets that the datapath hands to the stack.
 */
export function bringUpHostInterface(host: Netlink, name: string): void {
  writeSysctl(`net/ipv4/conf/${name}/rp_filter`, 0);
  host.setLinkUp(name);
}

/** Reads a link back, failing (rather than returning undefined) when it vanished meanwhile. */
export function requireLink(netlink: Netlink, name: string, where: string): Link {
  const link = netlink.link(name);
  if (!link) throw new Error(`interface ${name} disappeared from ${where}`);
  return link;
}

/** Deletes a link; one that is already gone is fine (DEL, GC and rollback are idempotent). */
export function deleteLinkIfPresent(netlink: Netlink, name: string): void {
  try {
    netlink.deleteLink(name);
  } catch (error) {
    if (error instanceof SyscallError && error.code === "ENODEV") return;
    throw error;
  }
}
