/** Interface addresses (RTM_*ADDR), IPv4 and IPv6. */
import {
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFADDRMSG_LEN,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_UNIVERSE,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_NEWADDR,
} from "./constants.ts";
import { addressFamily, formatIp, type IpFamily, type IpPrefix, ipFamily, parseIp, parsePrefix } from "./inet.ts";
import { describeLink, type LinkRef, resolveLinkIndex } from "./link.ts";
import { decodeBody, MessageBuilder, type NetlinkMessage, Struct } from "./message.ts";
import { type Scope, scopeName, scopeValue } from "./scope.ts";
import type { NetlinkSocket, NetlinkStep } from "./socket.ts";

export interface Address {
  family: IpFamily;
  linkIndex: number;
  /** The interface's own address (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6). */
  address: string;
  prefixLength: number;
  /** address/prefixLength, e.g. "10.0.0.1/24". */
  cidr: string;
  /** The remote end of a point-to-point address. */
  peer?: string;
  scope: Scope;
  label?: string;
  /** IFA_F_* flags. */
  flags: number;
}

export interface AddressOptions {
  /** Point-to-point peer address ("ip addr add A peer B"). */
  peer?: string;
  scope?: Scope;
  /** Do not install the prefix route for the subnet. */
  noPrefixRoute?: boolean;
  /** IPv6: skip duplicate address detection, so the address is usable at once. */
  noDad?: boolean;
}

function decodeAddress(message: NetlinkMessage): Address | undefined {
  const { header, attributes } = decodeBody(message, IFADDRMSG_LEN);
  const family = ipFamily(header.u8(0));
  if (!family) return undefined;
  // IFA_ADDRESS is the peer on point-to-point IPv4 links; IFA_LOCAL is then the own address.
  const remote = attributes.bytes(IFA_ADDRESS);
  const local = attributes.bytes(IFA_LOCAL) ?? remote;
  if (!local) return undefined;
  const address = formatIp(local);
  const prefixLength = header.u8(1);
  const result: Address = {
    family,
    linkIndex: header.u32(4),
    address,
    prefixLength,
    cidr: `${address}/${prefixLength}`,
    scope: scopeName(header.u8(3)),
    flags: attributes.u32(IFA_FLAGS) ?? header.u8(2),
  };
  if (remote && formatIp(remote) !== address) result.peer = formatIp(remote);
  const label = attributes.string(IFA_LABEL);
  if (label) result.label = label;
  return result;
}

/** struct ifaddrmsg. */
function ifaddrmsg(family: number, prefixLength: number, scope: number, index: number): Uint8Array {
  return new Struct(IFADDRMSG_LEN).setU8(0, family).setU8(1, prefixLength).setU8(3, scope).setU32(4, index).bytes;
}

export function listAddresses(socket: NetlinkSocket, filter: { link?: LinkRef } = {}): Address[] {
  const operation = filter.link === undefined ? "list addresses" : `list addresses of ${describeLink(filter.link)}`;
  const index = filter.link === undefined ? 0 : resolveLinkIndex(socket, filter.link, operation);
  // With strict checking the kernel filters a dump by ifa_index itself.
  const request = new MessageBuilder(RTM_GETADDR, 0).struct(ifaddrmsg(AF_UNSPEC, 0, 0, index));
  return socket
    .dump(operation, request)
    .map(decodeAddress)
    .filter((address): address is Address => address !== undefined && (index === 0 || address.linkIndex === index));
}

function addressRequest(type: number, flags: number, prefix: IpPrefix, index: number, scope: number): MessageBuilder {
  return new MessageBuilder(type, flags).struct(ifaddrmsg(addressFamily(prefix.address.family), prefix.length, scope, index));
}

export function addAddress(socket: NetlinkSocket, link: LinkRef, cidr: string, options: AddressOptions = {}): void {
  const { operation, request } = addAddressStep(socket, link, cidr, options);
  socket.execute(operation, request);
}

/** Adding an address; a link given by name is looked up here, one given by index is not. */
export function addAddressStep(socket: NetlinkSocket, link: LinkRef, cidr: string, options: AddressOptions = {}): NetlinkStep {
  const operation = `add address ${cidr}${options.peer ? ` peer ${options.peer}` : ""} to ${describeLink(link)}`;
  const prefix = parsePrefix(cidr);
  const peer = options.peer === undefined ? undefined : parseIp(options.peer);
  if (peer && peer.family !== prefix.address.family) throw new TypeError(`${operation}: the peer is of another address family`);
  const index = resolveLinkIndex(socket, link, operation);
  const scope = options.scope === undefined ? RT_SCOPE_UNIVERSE : scopeValue(options.scope);
  const request = addressRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, prefix, index, scope);
  // As iproute2 does: IFA_LOCAL is our address, IFA_ADDRESS the peer (or ours again).
  request.attr(IFA_LOCAL, prefix.address.bytes).attr(IFA_ADDRESS, (peer ?? prefix.address).bytes);
  const flags = (options.noPrefixRoute ? IFA_F_NOPREFIXROUTE : 0) | (options.noDad ? IFA_F_NODAD : 0);
  if (flags) request.u32(IFA_FLAGS, flags);
  return { operation, request };
}

export function deleteAddress(socket: NetlinkSocket, link: LinkRef, cidr: string): void {
  const operation = `delete address ${cidr} from ${describeLink(link)}`;
  const prefix = parsePrefix(cidr);
  const index = resolveLinkIndex(socket, link, operation);
  const request = addressRequest(RTM_DELADDR, 0, prefix, index, 0).attr(IFA_LOCAL, prefix.address.bytes);
  socket.execute(operation, request);
}
