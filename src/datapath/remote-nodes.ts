/**
 * Other nodes as the datapath needs them: where their pods are and how to reach them.
 *
 *  - every mode: the node's IP is REMOTE_NODE (6) in the ipcache, for policy on traffic from
 *    other nodes' hosts;
 *  - tunnel: each of its pod CIDRs is an ipcache prefix whose tunnel endpoint is the node's IP
 *    (identity WORLD until an endpoint's own /32 entry says better): cil_from_container
 *    encapsulates to it; and a route into cilium_host, so this node's own traffic to those pods
 *    reaches cil_from_host, which encapsulates it too;
 *  - native with auto-direct-node-routes: each pod CIDR is routed via the node's IP, which must
 *    be on a link this node shares (no gateway in between).
 *
 * What was programmed for each node is remembered by name, so an upsert replaces exactly the
 * previous state and a delete removes all of it. After an agent restart the control plane
 * upserts every node again; the first upsert of a node also removes what an earlier run left for
 * its IP that it no longer has.
 */
import { SyscallError } from "./errors.ts";
import { ENOENT } from "./libc.ts";
import type { Netlink } from "./netlink/index.ts";
import type { IpcacheEntry } from "./maps/ipcache.ts";
import type { RoutingMode } from "./overlay.ts";
import { ReservedIdentity } from "../identity/reserved.ts";
import { formatCidr, formatIpv4, isIpv4, maskOf, parseCidr, parseIpv4, type Ipv4Cidr } from "../net/ipv4.ts";

/** A node as the node registry announces it. */
export interface RemoteNode {
  name: string;
  ipv4: string;
  podCidrs: string[];
}

/** rtm_protocol of the routes we add, so a restarted agent can tell them from anyone else's. */
export const NODE_ROUTE_PROTOCOL = 0xc1;

const ESRCH = 3;

/** The ipcache operations RemoteNodes needs (NodeDatapath's own). */
export interface IpcacheWriter {
  upsertIpcache(cidr: string, identity: number, options?: { tunnelEndpoint?: string }): void;
  deleteIpcache(cidr: string): void;
  listIpcache(): IpcacheEntry[];
}

/** Where a route to a remote pod CIDR goes: via the node's IP, or into a device (cilium_host). */
type NodeRoute = { via: string } | { dev: string; src: string };

interface Programmed {
  ipcache: Map<string, { identity: number; tunnelEndpoint?: string }>;
  routes: Map<string, NodeRoute>; // by pod CIDR
}

export class RemoteNodes {
  private readonly nodes = new Map<string, RemoteNode>();
  private readonly programmed = new Map<string, Programmed>();

  constructor(
    private readonly options: {
      mode: RoutingMode;
      autoDirectNodeRoutes: boolean;
      localPodCidr: Ipv4Cidr;
      /** This node's own addresses: another node cannot have them. */
      localAddresses: () => string[];
      ipcache: IpcacheWriter;
      netlink: Netlink;
      /** Tunnel mode: the device (cilium_host) and source address of the host's routes to other nodes' pods. */
      hostRoute?: { dev: string; src: string };
    },
  ) {}

  list(): RemoteNode[] {
    return [...this.nodes.values()].map((n) => ({ ...n, podCidrs: [...n.podCidrs] })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Programs (or re-programs) one node. Nothing is left half-done: on failure the previous state is restored. */
  upsert(input: RemoteNode): void {
    const node = this.validate(input);
    const before = this.programmed.get(node.name);
    const desired = this.desiredFor(node);
    const done: Programmed = { ipcache: new Map(), routes: new Map() };
    try {
      for (const [cidr, value] of desired.ipcache) {
        this.options.ipcache.upsertIpcache(cidr, value.identity, value.tunnelEndpoint ? { tunnelEndpoint: value.tunnelEndpoint } : {});
        done.ipcache.set(cidr, value);
      }
      for (const [cidr, route] of desired.routes) {
        this.replaceRoute(node, cidr, route);
        done.routes.set(cidr, route);
      }
    } catch (error) {
      this.remove(subtract(done, before));
      if (before) this.restore(before);
      throw error;
    }
    this.remove(subtract(before, desired));
    if (!before) this.removeLeftovers(node.ipv4, desired);
    this.nodes.set(node.name, node);
    this.programmed.set(node.name, desired);
  }

  /** Removes everything programmed for the node; an unknown name is fine. */
  delete(name: string): void {
    if (typeof name !== "string" || name === "") throw new TypeError("remote node name must be a non-empty string");
    const programmed = this.programmed.get(name);
    if (!programmed) return;
    this.remove(programmed);
    this.programmed.delete(name);
    this.nodes.delete(name);
  }

  private validate(input: RemoteNode): RemoteNode {
    if (typeof input !== "object" || input === null) throw new TypeError("remote node must be an object {name, ipv4, podCidrs}");
    const { name, ipv4, podCidrs } = input;
    if (typeof name !== "string" || name === "") throw new TypeError("remote node name must be a non-empty string");
    if (typeof ipv4 !== "string" || !isIpv4(ipv4)) throw new TypeError(`remote node ${name}: ipv4 ${JSON.stringify(ipv4)} is not an IPv4 address`);
    const address = formatIpv4(parseIpv4(ipv4));
    if (this.options.localAddresses().includes(address)) throw new Error(`remote node ${name}: ipv4 ${address} is an address of this node`);
    if (!Array.isArray(podCidrs)) throw new TypeError(`remote node ${name}: podCidrs must be an array of CIDRs`);
    const cidrs = new Map<string, Ipv4Cidr>();
    for (const text of podCidrs) {
      let cidr: Ipv4Cidr;
      try {
        cidr = parseCidr(String(text));
      } catch (error) {
        throw new TypeError(`remote node ${name}: pod CIDR ${JSON.stringify(text)}: ${(error as Error).message}`);
      }
      if (overlaps(cidr, this.options.localPodCidr)) {
        throw new Error(`remote node ${name}: pod CIDR ${formatCidr(cidr)} overlaps this node's pod CIDR ${formatCidr(this.options.localPodCidr)}`);
      }
      cidrs.set(formatCidr(cidr), cidr);
    }
    for (const [other, known] of this.nodes) {
      if (other === name) continue;
      if (known.ipv4 === address) throw new Error(`remote node ${name}: ipv4 ${address} already belongs to node ${other}`);
      for (const [text, cidr] of cidrs) {
        const clash = known.podCidrs.find((k) => overlaps(parseCidr(k), cidr));
        if (clash) throw new Error(`remote node ${name}: pod CIDR ${text} overlaps ${clash} of node ${other}`);
      }
    }
    return { name, ipv4: address, podCidrs: [...cidrs.keys()].sort() };
  }

  private desiredFor(node: RemoteNode): Programmed {
    const desired: Programmed = { ipcache: new Map(), routes: new Map() };
    desired.ipcache.set(`${node.ipv4}/32`, { identity: ReservedIdentity.remoteNode });
    const { hostRoute } = this.options;
    for (const cidr of node.podCidrs) {
      if (this.options.mode === "tunnel") {
        desired.ipcache.set(cidr, { identity: ReservedIdentity.world, tunnelEndpoint: node.ipv4 });
        if (hostRoute) desired.routes.set(cidr, hostRoute);
      } else if (this.options.autoDirectNodeRoutes) {
        desired.routes.set(cidr, { via: node.ipv4 });
      }
    }
    return desired;
  }

  private replaceRoute(node: RemoteNode, cidr: string, route: NodeRoute): void {
    try {
      this.options.netlink.replaceRoute(routeSpec(cidr, route));
    } catch (error) {
      const where = "via" in route ? `via ${route.via}` : `dev ${route.dev}`;
      const hint = "via" in route ? " (--auto-direct-node-routes needs every node's IP on a network this node is directly attached to)" : "";
      throw new Error(`remote node ${node.name}: route ${cidr} ${where}: ${(error as Error).message}${hint}`, { cause: error });
    }
  }

  private remove(things: Programmed): void {
    for (const cidr of things.ipcache.keys()) this.options.ipcache.deleteIpcache(cidr);
    for (const [cidr, route] of things.routes) this.deleteRoute(cidr, route);
  }

  private restore(before: Programmed): void {
    try {
      for (const [cidr, value] of before.ipcache) {
        this.options.ipcache.upsertIpcache(cidr, value.identity, value.tunnelEndpoint ? { tunnelEndpoint: value.tunnelEndpoint } : {});
      }
      for (const [cidr, route] of before.routes) this.options.netlink.replaceRoute(routeSpec(cidr, route));
    } catch {
      // Best effort: the error of the upsert itself is what the caller must see.
    }
  }

  private deleteRoute(cidr: string, route: NodeRoute): void {
    try {
      this.options.netlink.deleteRoute(routeSpec(cidr, route));
    } catch (error) {
      if (error instanceof SyscallError && (error.errno === ESRCH || error.errno === ENOENT)) return; // already gone
      throw error;
    }
  }

  /** What an earlier run programmed for this node IP that the node no longer has. */
  private removeLeftovers(ipv4: string, desired: Programmed): void {
    const { hostRoute } = this.options;
    for (const entry of this.options.ipcache.listIpcache()) {
      if (entry.tunnelEndpoint !== ipv4 || entry.cidr.endsWith("/32") || desired.ipcache.has(entry.cidr)) continue;
      this.options.ipcache.deleteIpcache(entry.cidr);
      if (hostRoute) this.deleteRoute(entry.cidr, hostRoute);
    }
    for (const route of this.options.netlink.routes({ family: 4 })) {
      if (route.protocol !== NODE_ROUTE_PROTOCOL || route.via !== ipv4) continue;
      const wanted = desired.routes.get(route.dst);
      if (!wanted || !sameRoute(wanted, { via: ipv4 })) this.deleteRoute(route.dst, { via: ipv4 });
    }
  }
}

function routeSpec(cidr: string, route: NodeRoute) {
  const target = "via" in route ? { via: route.via } : { dev: route.dev, scope: "link" as const, src: route.src };
  return { dst: cidr, protocol: NODE_ROUTE_PROTOCOL, ...target };
}

function sameRoute(a: NodeRoute, b: NodeRoute): boolean {
  return "via" in a ? "via" in b && a.via === b.via : !("via" in b) && a.dev === b.dev && a.src === b.src;
}

/** What `a` has that `b` does not (or has differently). */
function subtract(a: Programmed | undefined, b: Programmed | undefined): Programmed {
  const out: Programmed = { ipcache: new Map(), routes: new Map() };
  if (!a) return out;
  for (const [cidr, value] of a.ipcache) if (!b?.ipcache.has(cidr)) out.ipcache.set(cidr, value);
  for (const [cidr, route] of a.routes) {
    const other = b?.routes.get(cidr);
    if (!other || !sameRoute(route, other)) out.routes.set(cidr, route);
  }
  return out;
}

function overlaps(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  const mask = maskOf(Math.min(a.prefixLength, b.prefixLength));
  return ((a.network & mask) >>> 0) === ((b.network & mask) >>> 0);
}
