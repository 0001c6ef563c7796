/** Network interfaces (RTM_*LINK): listing, veth and vxlan creation, changes, deletion. */
import { SyscallError } from "../errors.ts";
import { ENODEV } from "../libc.ts";
import type { Netns } from "../netns.ts";
import {
  AF_INET6,
  AF_UNSPEC,
  IFF_NOARP,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_AF_SPEC,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INET6_ADDR_GEN_MODE,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_OPERSTATE,
  IFLA_VXLAN_COLLECT_METADATA,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IN6_ADDR_GEN_MODES,
  NLM_F_CREATE,
  NLM_F_EXCL,
  OPER_STATES,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  VETH_INFO_PEER,
} from "./constants.ts";
import { formatIp, formatMac, parseIp, parseMac } from "./inet.ts";
import { type Attributes, decodeBody, MessageBuilder, type NetlinkMessage, Struct } from "./message.ts";
import type { NetlinkSocket, NetlinkStep } from "./socket.ts";

export type OperState = (typeof OPER_STATES)[number];
export type AddrGenMode = keyof typeof IN6_ADDR_GEN_MODES;

export interface VxlanInfo {
  /** Collect-metadata mode: the tunnel key (VNI, remote) comes from BPF per packet. */
  external: boolean;
  vni?: number;
  /** UDP destination port. */
  port?: number;
  learning?: boolean;
  local?: string;
  /** ifindex of the underlay device, when bound to one. */
  dev?: number;
}

export interface Link {
  index: number;
  name: string;
  mtu: number;
  mac?: string;
  /** IFF_* flags (ifi_flags). */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  operState: OperState;
  /** IFLA_INFO_KIND: "veth", "vxlan", ...; absent for physical devices and loopback. */
  kind?: string;
  /** IFLA_LINK: the peer of a veth, the lower device of a vlan. */
  parentIndex?: number;
  masterIndex?: number;
  /** IFLA_LINK_NETNSID: the namespace (as numbered in this one) where parentIndex lives. */
  linkNetnsId?: number;
  vxlan?: VxlanInfo;
}

/** A link given as its listing, its name, or its ifindex (in the handle's namespace). */
export type LinkRef = Link | string | number;

export interface VethOptions {
  name: string;
  peerName: string;
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** Create the peer directly inside this namespace (saves a move). */
  peerNetns?: Netns;
}

export interface VxlanOptions {
  name: string;
  /** Collect-metadata ("external") mode, as the overlay needs. */
  external?: boolean;
  vni?: number;
  /** UDP destination port; the kernel's default is 8472. */
  port?: number;
  learning?: boolean;
  mtu?: number;
  local?: string;
  dev?: string | number;
}

const IFNAMSIZ = 16;

export function describeLink(ref: LinkRef): string {
  if (typeof ref === "number") return `ifindex ${ref}`;
  return typeof ref === "string" ? ref : ref.name;
}

export function decodeLink(message: NetlinkMessage): Link {
  const { header, attributes } = decodeBody(message, IFINFOMSG_LEN);
  const flags = header.u32(8);
  const link: Link = {
    index: header.s32(4),
    name: attributes.string(IFLA_IFNAME) ?? "",
    mtu: attributes.u32(IFLA_MTU) ?? 0,
    flags,
    up: (flags & IFF_UP) !== 0,
    operState: OPER_STATES[attributes.u8(IFLA_OPERSTATE) ?? 0] ?? "unknown",
  };
  const address = attributes.bytes(IFLA_ADDRESS);
  if (address) link.mac = formatMac(address);
  const parent = attributes.u32(IFLA_LINK);
  if (parent) link.parentIndex = parent;
  const master = attributes.u32(IFLA_MASTER);
  if (master) link.masterIndex = master;
  const netnsId = attributes.s32(IFLA_LINK_NETNSID);
  if (netnsId !== undefined) link.linkNetnsId = netnsId;
  const info = attributes.nested(IFLA_LINKINFO);
  const kind = info?.string(IFLA_INFO_KIND);
  if (kind) link.kind = kind;
  const data = info?.nested(IFLA_INFO_DATA);
  if (kind === "vxlan" && data) link.vxlan = decodeVxlan(data);
  return link;
}

function decodeVxlan(data: Attributes): VxlanInfo {
  const vxlan: VxlanInfo = { external: data.u8(IFLA_VXLAN_COLLECT_METADATA) === 1 };
  const vni = data.u32(IFLA_VXLAN_ID);
  if (vni !== undefined) vxlan.vni = vni;
  const port = data.be16(IFLA_VXLAN_PORT);
  if (port !== undefined) vxlan.port = port;
  const learning = data.u8(IFLA_VXLAN_LEARNING);
  if (learning !== undefined) vxlan.learning = learning === 1;
  const local = data.bytes(IFLA_VXLAN_LOCAL) ?? data.bytes(IFLA_VXLAN_LOCAL6);
  if (local) vxlan.local = formatIp(local);
  const dev = data.u32(IFLA_VXLAN_LINK);
  if (dev) vxlan.dev = dev;
  return vxlan;
}

/** struct ifinfomsg; `change` masks which bits of `flags` the kernel should apply. */
function ifinfomsg(index = 0, flags = 0, change = 0): Uint8Array {
  return new Struct(IFINFOMSG_LEN).setU8(0, AF_UNSPEC).setS32(4, index).setU32(8, flags).setU32(12, change).bytes;
}

/**
 * A request aimed at an existing link: by ifindex, or by name with ifindex 0, which the kernel
 * resolves itself (saving a round trip).
 */
function linkRequest(type: number, ref: LinkRef, flags = 0, ifFlags = 0, ifChange = 0): MessageBuilder {
  const request = new MessageBuilder(type, flags);
  if (typeof ref === "string") return request.struct(ifinfomsg(0, ifFlags, ifChange)).string(IFLA_IFNAME, checkName(ref));
  return request.struct(ifinfomsg(indexOf(ref), ifFlags, ifChange));
}

function indexOf(ref: Link | number): number {
  const index = typeof ref === "number" ? ref : ref.index;
  if (!Number.isInteger(index) || index <= 0) throw new TypeError(`invalid ifindex ${index}`);
  return index;
}

function checkName(name: string): string {
  // dev_valid_name(): at most IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or whitespace.
  if (!name || Buffer.byteLength(name) >= IFNAMSIZ || name === "." || name === ".." || /[/:\s]/.test(name)) {
    throw new TypeError(`invalid interface name "${name}" (1-${IFNAMSIZ - 1} bytes, no '/', ':' or spaces)`);
  }
  return name;
}

export function listLinks(socket: NetlinkSocket): Link[] {
  const request = new MessageBuilder(RTM_GETLINK, 0).struct(ifinfomsg()).u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return socket.dump("list links", request).map(decodeLink);
}

/** The link, or undefined when there is none by that name or index. */
export function getLink(socket: NetlinkSocket, ref: LinkRef): Link | undefined {
  const request = linkRequest(RTM_GETLINK, ref).u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  try {
    return decodeLink(socket.query(`get link ${describeLink(ref)}`, request));
  } catch (error) {
    if (error instanceof SyscallError && error.errno === ENODEV) return undefined;
    throw error;
  }
}

/** The ifindex of a link; a name is looked up, and a missing one fails as ENODEV under `operation`. */
export function resolveLinkIndex(socket: NetlinkSocket, ref: LinkRef, operation: string): number {
  if (typeof ref !== "string") return indexOf(ref);
  const link = getLink(socket, ref);
  if (!link) throw new SyscallError(operation, ENODEV, `no link named "${ref}"`);
  return link.index;
}

/** The common attributes of a new link or of a veth peer. */
function newLinkAttributes(request: MessageBuilder, name: string, mtu?: number, mac?: string, netns?: Netns): void {
  request.string(IFLA_IFNAME, checkName(name));
  if (mtu !== undefined) request.u32(IFLA_MTU, mtu);
  if (mac !== undefined) request.attr(IFLA_ADDRESS, parseMac(mac));
  if (netns) request.u32(IFLA_NET_NS_FD, netns.fd);
}

function created(socket: NetlinkSocket, name: string, operation: string): Link {
  const link = getLink(socket, name);
  if (!link) throw new Error(`${operation}: created, but gone before it could be read back`);
  return link;
}

export function createVeth(socket: NetlinkSocket, options: VethOptions): Link {
  const operation = `create veth ${options.name}/${options.peerName}`;
  const request = new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).struct(ifinfomsg());
  newLinkAttributes(request, options.name, options.mtu, options.mac);
  request.nest(IFLA_LINKINFO, (info) =>
    info.string(IFLA_INFO_KIND, "veth").nest(IFLA_INFO_DATA, (data) =>
      // VETH_INFO_PEER holds a whole ifinfomsg plus the peer's own link attributes.
      data.nest(VETH_INFO_PEER, (peer) => {
        peer.struct(ifinfomsg());
        newLinkAttributes(peer, options.peerName, options.mtu, options.peerMac, options.peerNetns);
      }),
    ),
  );
  socket.execute(operation, request);
  return created(socket, options.name, operation);
}

export function createVxlan(socket: NetlinkSocket, options: VxlanOptions): Link {
  const operation = `create vxlan ${options.name}`;
  const dev = options.dev === undefined ? undefined : resolveLinkIndex(socket, options.dev, operation);
  const local = options.local === undefined ? undefined : parseIp(options.local);
  const request = new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).struct(ifinfomsg());
  newLinkAttributes(request, options.name, options.mtu);
  request.nest(IFLA_LINKINFO, (info) =>
    info.string(IFLA_INFO_KIND, "vxlan").nest(IFLA_INFO_DATA, (data) => {
      if (options.vni !== undefined) data.u32(IFLA_VXLAN_ID, options.vni);
      if (dev !== undefined) data.u32(IFLA_VXLAN_LINK, dev);
      if (local) data.attr(local.family === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, local.bytes);
      if (options.port !== undefined) data.be16(IFLA_VXLAN_PORT, options.port);
      if (options.learning !== undefined) data.u8(IFLA_VXLAN_LEARNING, options.learning ? 1 : 0);
      if (options.external) data.u8(IFLA_VXLAN_COLLECT_METADATA, 1);
    }),
  );
  socket.execute(operation, request);
  return created(socket, options.name, operation);
}

export function deleteLink(socket: NetlinkSocket, ref: LinkRef): void {
  socket.execute(`delete link ${describeLink(ref)}`, linkRequest(RTM_DELLINK, ref));
}

export function setLinkUp(socket: NetlinkSocket, ref: LinkRef, up: boolean): void {
  const { operation, request } = setLinkUpStep(ref, up);
  socket.execute(operation, request);
}

export function setLinkUpStep(ref: LinkRef, up: boolean): NetlinkStep {
  return { operation: `set link ${describeLink(ref)} ${up ? "up" : "down"}`, request: linkRequest(RTM_NEWLINK, ref, 0, up ? IFF_UP : 0, IFF_UP) };
}

/**
 * How the link makes its IPv6 link-local address, as `ip link set DEV addrgenmode MODE`. Set
 * before the link comes up: "none" then keeps it without any IPv6 address, so it sends no router
 * solicitations or neighbour discovery of its own. (The kernel refuses this at creation.)
 */
export function setAddrGenModeStep(ref: LinkRef, mode: AddrGenMode): NetlinkStep {
  const request = linkRequest(RTM_NEWLINK, ref).nest(IFLA_AF_SPEC, (spec) =>
    spec.nest(AF_INET6, (inet6) => inet6.u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODES[mode])),
  );
  return { operation: `set link ${describeLink(ref)} addrgenmode ${mode}`, request };
}

/** ARP on or off (IFF_NOARP), as `ip link set DEV arp on|off`. */
export function setArp(socket: NetlinkSocket, ref: LinkRef, on: boolean): void {
  const request = linkRequest(RTM_NEWLINK, ref, 0, on ? 0 : IFF_NOARP, IFF_NOARP);
  socket.execute(`set link ${describeLink(ref)} arp ${on ? "on" : "off"}`, request);
}

export function setMtu(socket: NetlinkSocket, ref: LinkRef, mtu: number): void {
  socket.execute(`set link ${describeLink(ref)} mtu ${mtu}`, linkRequest(RTM_NEWLINK, ref).u32(IFLA_MTU, mtu));
}

export function setMac(socket: NetlinkSocket, ref: LinkRef, mac: string): void {
  const request = linkRequest(RTM_NEWLINK, ref).attr(IFLA_ADDRESS, parseMac(mac));
  socket.execute(`set link ${describeLink(ref)} address ${mac}`, request);
}

export function setName(socket: NetlinkSocket, ref: LinkRef, newName: string): void {
  // The new name travels in IFLA_IFNAME, so the link must be named by its index here.
  const operation = `rename link ${describeLink(ref)} to ${newName}`;
  const request = linkRequest(RTM_NEWLINK, resolveLinkIndex(socket, ref, operation)).string(IFLA_IFNAME, checkName(newName));
  socket.execute(operation, request);
}

export function setNetns(socket: NetlinkSocket, ref: LinkRef, netns: Netns): void {
  const request = linkRequest(RTM_NEWLINK, ref).u32(IFLA_NET_NS_FD, netns.fd);
  socket.execute(`move link ${describeLink(ref)} to netns ${netns.path}`, request);
}
