/**
 * Changes collected and sent to the kernel in one datagram (NetlinkSocket.executeAll): for a
 * sequence of steps that succeed or are undone together, such as configuring a new interface.
 * Links may be named; addresses and routes need the link's index (a name would cost a lookup).
 */
import { addAddressStep, type AddressOptions } from "./address.ts";
import { type AddrGenMode, type LinkRef, setAddrGenModeStep, setLinkUpStep } from "./link.ts";
import { addRouteStep, type RouteSpec } from "./route.ts";
import type { NetlinkSocket, NetlinkStep } from "./socket.ts";

export class NetlinkBatch {
  private readonly steps: NetlinkStep[] = [];

  constructor(private readonly socket: NetlinkSocket) {}

  setLinkUp(ref: LinkRef): this {
    this.steps.push(setLinkUpStep(ref, true));
    return this;
  }
  setAddrGenMode(ref: LinkRef, mode: AddrGenMode): this {
    this.steps.push(setAddrGenModeStep(ref, mode));
    return this;
  }
  addAddress(linkIndex: number, cidr: string, options?: AddressOptions): this {
    this.steps.push(addAddressStep(this.socket, linkIndex, cidr, options));
    return this;
  }
  addRoute(spec: RouteSpec & { dev?: number }): this {
    this.steps.push(addRouteStep(this.socket, spec));
    return this;
  }

  /** Sends every step; throws the first that failed (the kernel tried the rest regardless). */
  commit(): void {
    this.socket.executeAll(this.steps);
  }
}
