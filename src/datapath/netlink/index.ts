/**
 * rtnetlink: links, addresses, routes and neighbours, spoken over a netlink socket through
 * bun:ffi. A Netlink handle acts on the namespace it was opened in, whichever namespace the
 * thread is in later.
 */
import { Netns } from "../netns.ts";
import { addAddress, type Address, type AddressOptions, deleteAddress, listAddresses } from "./address.ts";
import {
  createVeth,
  createVxlan,
  deleteLink,
  getLink,
  type Link,
  type LinkRef,
  listLinks,
  setArp,
  setLinkUp,
  setMac,
  setMtu,
  setName,
  setNetns,
  type VethOptions,
  type VxlanOptions,
} from "./link.ts";
import {
  addNeighbour,
  deleteNeighbour,
  listNeighbours,
  type Neighbour,
  type NeighbourSpec,
  replaceNeighbour,
} from "./neighbour.ts";
import { addRoute, deleteRoute, listRoutes, replaceRoute, type Route, type RouteFilter, type RouteSpec } from "./route.ts";
import { NetlinkBatch } from "./batch.ts";
import { NetlinkSocket, type SocketOptions } from "./socket.ts";

export type { Address, AddressOptions } from "./address.ts";
export type { IpFamily } from "./inet.ts";
export type { NetlinkBatch } from "./batch.ts";
export type { AddrGenMode, Link, LinkRef, OperState, VethOptions, VxlanInfo, VxlanOptions } from "./link.ts";
export type { Neighbour, NeighbourSpec, NeighbourState } from "./neighbour.ts";
export type { Route, RouteFilter, RouteSpec } from "./route.ts";
export type { Scope } from "./scope.ts";

export interface NetlinkOptions extends SocketOptions {
  /** Open the socket inside this namespace (a handle, or a path such as /var/run/netns/NAME). */
  netns?: Netns | string;
}

export class Netlink {
  private constructor(private readonly socket: NetlinkSocket) {}

  static open(options: NetlinkOptions = {}): Netlink {
    const { netns, ...socketOptions } = options;
    if (netns === undefined) return new Netlink(NetlinkSocket.open(socketOptions));
    const handle = typeof netns === "string" ? Netns.open(netns) : netns;
    try {
      return new Netlink(handle.run(() => NetlinkSocket.open(socketOptions)));
    } finally {
      if (handle !== netns) handle.close();
    }
  }

  close(): void {
    this.socket.close();
  }

  /** Runs the changes `build` collects as one batch (see NetlinkBatch). */
  batch(build: (batch: NetlinkBatch) => void): void {
    const batch = new NetlinkBatch(this.socket);
    build(batch);
    batch.commit();
  }

  links(): Link[] {
    return listLinks(this.socket);
  }
  /** The link, or undefined when there is none by that name or index. */
  link(ref: LinkRef): Link | undefined {
    return getLink(this.socket, ref);
  }
  createVeth(options: VethOptions): Link {
    return createVeth(this.socket, options);
  }
  createVxlan(options: VxlanOptions): Link {
    return createVxlan(this.socket, options);
  }
  deleteLink(ref: LinkRef): void {
    deleteLink(this.socket, ref);
  }
  setLinkUp(ref: LinkRef): void {
    setLinkUp(this.socket, ref, true);
  }
  setLinkDown(ref: LinkRef): void {
    setLinkUp(this.socket, ref, false);
  }
  setArp(ref: LinkRef, on: boolean): void {
    setArp(this.socket, ref, on);
  }
  setMtu(ref: LinkRef, mtu: number): void {
    setMtu(this.socket, ref, mtu);
  }
  setMac(ref: LinkRef, mac: string): void {
    setMac(this.socket, ref, mac);
  }
  setName(ref: LinkRef, newName: string): void {
    setName(this.socket, ref, newName);
  }
  /** Moves the link into another namespace; its ifindex may change there. */
  setNetns(ref: LinkRef, netns: Netns): void {
    setNetns(this.socket, ref, netns);
  }

  addresses(filter?: { link?: LinkRef }): Address[] {
    return listAddresses(this.socket, filter);
  }
  addAddress(link: LinkRef, cidr: string, options?: AddressOptions): void {
    addAddress(this.socket, link, cidr, options);
  }
  deleteAddress(link: LinkRef, cidr: string): void {
    deleteAddress(this.socket, link, cidr);
  }

  routes(filter?: RouteFilter): Route[] {
    return listRoutes(this.socket, filter);
  }
  addRoute(route: RouteSpec): void {
    addRoute(this.socket, route);
  }
  replaceRoute(route: RouteSpec): void {
    replaceRoute(this.socket, route);
  }
  deleteRoute(route: RouteSpec): void {
    deleteRoute(this.socket, route);
  }

  neighbours(filter?: { link?: LinkRef }): Neighbour[] {
    return listNeighbours(this.socket, filter);
  }
  addNeighbour(neighbour: NeighbourSpec): void {
    addNeighbour(this.socket, neighbour);
  }
  replaceNeighbour(neighbour: NeighbourSpec): void {
    replaceNeighbour(this.socket, neighbour);
  }
  deleteNeighbour(neighbour: { dev: LinkRef; ip: string }): void {
    deleteNeighbour(this.socket, neighbour);
  }
}
