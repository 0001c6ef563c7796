/**
 * The kernel side of an attachment: the veth pair, the pod's address and routes, the host end.
 * Synchronous netlink calls; the caller maps failures to CNI errors and owns the rollback.
 */
import { existsSync } from "node:fs";
import { SyscallError } from "../datapath/errors.ts";
import { formatMac } from "../datapath/netlink/inet.ts";
import type { Link, Netlink } from "../datapath/netlink/index.ts";
import { writeSysctl } from "../datapath/sysctl.ts";
import type { Sandbox } from "./sandbox.ts";

export interface VethNames {
  host: string;
  pod: string;
}

export interface VethPair {
  /** The host end, as the kernel reports it (index, MAC). */
  host: Link;
  /** The MAC the pod end was given. */
  podMac: string;
}

/**
 * Creates the pair with the peer directly inside the pod's namespace under its final name: no
 * move (an RCU grace period) and no rename. The kernel makes both ends or neither; a half-done
 * ADD leaves at most the pair, which the runtime's DEL removes with the host end. The pod end
 * gets a random locally administered MAC from us, as upstream's endpoints do, so it needs no
 * reading back.
 */
export function createVethPair(host: Netlink, sandbox: Sandbox, names: VethNames, mtu: number | undefined): VethPair {
  const podMac = randomMac();
  const link = host.createVeth({ name: names.host, peerName: names.pod, mtu, peerMac: podMac, peerNetns: sandbox.netns });
  return { host: link, podMac };
}

/** A random unicast, locally administered MAC address. */
export function randomMac(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  bytes[0] = (bytes[0]! & 0xfe) | 0x02;
  return formatMac(bytes);
}

/**
 * Inside the pod, in one netlink batch: loopback up; the address as a /32 (no subnet: every
 * packet goes to the gateway, where the datapath on the host end takes it); a link-scoped host
 * route to the gateway so that it is reachable without a shared subnet, and the default route
 * through it. Before the interface comes up it is told to make no IPv6 link-local address: pods
 * are IPv4-only here, and with one it would send router solicitations and neighbour discovery
 * into the datapath to be dropped.
 */
export function configurePodInterface(sandbox: Sandbox, ifname: string, ip: string, gateway: string): void {
  const { index } = requireLink(sandbox.netlink, ifname, `netns ${sandbox.path}`);
  sandbox.netlink.batch((batch) => {
    batch.setLinkUp("lo");
    if (kernelHasIpv6()) batch.setAddrGenMode(index, "none");
    batch.addAddress(index, `${ip}/32`);
    // Up before the routes: the kernel refuses routes through a link that is down.
    batch.setLinkUp(index);
    batch.addRoute({ dst: `${gateway}/32`, dev: index, scope: "link" });
    batch.addRoute({ dst: "default", via: gateway, dev: index });
  });
}

let ipv6: boolean | undefined;

/** A kernel booted without IPv6 has no addrgenmode to set (and nothing to silence). */
function kernelHasIpv6(): boolean {
  return (ipv6 ??= existsSync("/proc/sys/net/ipv6"));
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
