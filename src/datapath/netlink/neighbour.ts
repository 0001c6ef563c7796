/** Neighbour (ARP / NDP) entries (RTM_*NEIGH). */
import {
  AF_UNSPEC,
  NDA_DST,
  NDA_LLADDR,
  NDMSG_LEN,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NUD_DELAY,
  NUD_FAILED,
  NUD_INCOMPLETE,
  NUD_NOARP,
  NUD_PERMANENT,
  NUD_PROBE,
  NUD_REACHABLE,
  NUD_STALE,
  RTM_DELNEIGH,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from "./constants.ts";
import { addressFamily, formatIp, formatMac, type IpFamily, ipFamily, parseIp, parseMac } from "./inet.ts";
import { describeLink, type LinkRef, resolveLinkIndex } from "./link.ts";
import { decodeBody, MessageBuilder, type NetlinkMessage, Struct } from "./message.ts";
import type { NetlinkSocket } from "./socket.ts";

export type NeighbourState =
  | "none"
  | "incomplete"
  | "reachable"
  | "stale"
  | "delay"
  | "probe"
  | "failed"
  | "noarp"
  | "permanent";

const STATES: [number, NeighbourState][] = [
  [NUD_PERMANENT, "permanent"],
  [NUD_NOARP, "noarp"],
  [NUD_REACHABLE, "reachable"],
  [NUD_STALE, "stale"],
  [NUD_DELAY, "delay"],
  [NUD_PROBE, "probe"],
  [NUD_FAILED, "failed"],
  [NUD_INCOMPLETE, "incomplete"],
];

export interface Neighbour {
  family: IpFamily;
  linkIndex: number;
  ip: string;
  mac?: string;
  /** The NUD_* state (the kernel sets one bit at a time). */
  state: NeighbourState;
  permanent: boolean;
}

export interface NeighbourSpec {
  dev: LinkRef;
  ip: string;
  mac: string;
  /** NUD_PERMANENT (never expires, never probed) instead of NUD_REACHABLE. */
  permanent?: boolean;
}

function decodeNeighbour(message: NetlinkMessage): Neighbour | undefined {
  const { header, attributes } = decodeBody(message, NDMSG_LEN);
  const family = ipFamily(header.u8(0));
  const dst = attributes.bytes(NDA_DST);
  if (!family || !dst) return undefined;
  const state = header.u16(8);
  const neighbour: Neighbour = {
    family,
    linkIndex: header.s32(4),
    ip: formatIp(dst),
    state: STATES.find(([bit]) => state & bit)?.[1] ?? "none",
    permanent: (state & NUD_PERMANENT) !== 0,
  };
  const mac = attributes.bytes(NDA_LLADDR);
  if (mac) neighbour.mac = formatMac(mac);
  return neighbour;
}

/** struct ndmsg. */
function ndmsg(family: number, index: number, state: number): Uint8Array {
  return new Struct(NDMSG_LEN).setU8(0, family).setS32(4, index).setU16(8, state).bytes;
}

export function listNeighbours(socket: NetlinkSocket, filter: { link?: LinkRef } = {}): Neighbour[] {
  const operation = filter.link === undefined ? "list neighbours" : `list neighbours of ${describeLink(filter.link)}`;
  const index = filter.link === undefined ? undefined : resolveLinkIndex(socket, filter.link, operation);
  const request = new MessageBuilder(RTM_GETNEIGH, 0).struct(ndmsg(AF_UNSPEC, 0, 0));
  return socket
    .dump(operation, request)
    .map(decodeNeighbour)
    .filter((entry): entry is Neighbour => entry !== undefined && (index === undefined || entry.linkIndex === index));
}

function setNeighbour(socket: NetlinkSocket, spec: NeighbourSpec, verb: string, flags: number): void {
  const operation = `${verb} neighbour ${spec.ip} lladdr ${spec.mac} dev ${describeLink(spec.dev)}`;
  const ip = parseIp(spec.ip);
  const mac = parseMac(spec.mac);
  const index = resolveLinkIndex(socket, spec.dev, operation);
  const state = spec.permanent ? NUD_PERMANENT : NUD_REACHABLE;
  const request = new MessageBuilder(RTM_NEWNEIGH, flags)
    .struct(ndmsg(addressFamily(ip.family), index, state))
    .attr(NDA_DST, ip.bytes)
    .attr(NDA_LLADDR, mac);
  socket.execute(operation, request);
}

/** Adds an entry; fails with EEXIST when there is one for that IP on that link. */
export function addNeighbour(socket: NetlinkSocket, spec: NeighbourSpec): void {
  setNeighbour(socket, spec, "add", NLM_F_CREATE | NLM_F_EXCL);
}

/** Adds or overwrites an entry. */
export function replaceNeighbour(socket: NetlinkSocket, spec: NeighbourSpec): void {
  setNeighbour(socket, spec, "replace", NLM_F_CREATE | NLM_F_REPLACE);
}

export function deleteNeighbour(socket: NetlinkSocket, spec: { dev: LinkRef; ip: string }): void {
  const operation = `delete neighbour ${spec.ip} dev ${describeLink(spec.dev)}`;
  const ip = parseIp(spec.ip);
  const index = resolveLinkIndex(socket, spec.dev, operation);
  const request = new MessageBuilder(RTM_DELNEIGH, 0).struct(ndmsg(addressFamily(ip.family), index, 0)).attr(NDA_DST, ip.bytes);
  socket.execute(operation, request);
}
