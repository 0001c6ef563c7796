/** Routes (RTM_*ROUTE): listing, add, replace, delete; any table, IPv4 and IPv6. */
import {
  AF_UNSPEC,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RT_TABLE_UNSPEC,
  RTA_DST,
  RTA_GATEWAY,
  RTA_METRICS,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTAX_MTU,
  RTM_DELROUTE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTMSG_LEN,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_BOOT,
} from "./constants.ts";
import { addressFamily, formatIp, type IpAddress, type IpFamily, ipFamily, parseIp, parsePrefix } from "./inet.ts";
import { describeLink, type LinkRef, resolveLinkIndex } from "./link.ts";
import { decodeBody, MessageBuilder, type NetlinkMessage, Struct } from "./message.ts";
import { type Scope, scopeName, scopeValue } from "./scope.ts";
import type { NetlinkSocket, NetlinkStep } from "./socket.ts";

export interface Route {
  family: IpFamily;
  /** "default" or a CIDR, e.g. "10.0.0.0/24". */
  dst: string;
  via?: string;
  /** ifindex of the output device (RTA_OIF). */
  dev?: number;
  table: number;
  /** RTPROT_*: 2 kernel, 3 boot (iproute2's default), 4 static, ... */
  protocol: number;
  scope: Scope;
  /** RTN_*: 1 unicast, 2 local, 3 broadcast, ... */
  type: number;
  src?: string;
  metric?: number;
  mtu?: number;
  onlink: boolean;
}

export interface RouteSpec {
  /** A CIDR, a bare address (a host route) or "default". */
  dst: string;
  via?: string;
  dev?: LinkRef;
  /** Take the gateway as directly reachable on dev even with no covering subnet. */
  onlink?: boolean;
  /** Defaults as iproute2: "link" without a gateway, "universe" with one (and any on delete). */
  scope?: Scope;
  /** Routing table id; default main (254). */
  table?: number;
  src?: string;
  mtu?: number;
  metric?: number;
  /** RTPROT_* of a new route; default 3 ("boot"), as iproute2. */
  protocol?: number;
}

export interface RouteFilter {
  /** A table id, or "all"; default the main table, as `ip route`. */
  table?: number | "all";
  link?: LinkRef;
  family?: IpFamily;
}

function decodeRoute(message: NetlinkMessage): Route | undefined {
  const { header, attributes } = decodeBody(message, RTMSG_LEN);
  const family = ipFamily(header.u8(0));
  if (!family) return undefined;
  const dstLength = header.u8(1);
  const dst = attributes.bytes(RTA_DST);
  const route: Route = {
    family,
    dst: dst ? `${formatIp(dst)}/${dstLength}` : "default",
    // RTA_TABLE carries ids above 255, which do not fit rtm_table.
    table: attributes.u32(RTA_TABLE) ?? header.u8(4),
    protocol: header.u8(5),
    scope: scopeName(header.u8(6)),
    type: header.u8(7),
    onlink: (header.u32(8) & RTNH_F_ONLINK) !== 0,
  };
  const gateway = attributes.bytes(RTA_GATEWAY);
  if (gateway) route.via = formatIp(gateway);
  const dev = attributes.u32(RTA_OIF);
  if (dev !== undefined) route.dev = dev;
  const src = attributes.bytes(RTA_PREFSRC);
  if (src) route.src = formatIp(src);
  const metric = attributes.u32(RTA_PRIORITY);
  if (metric !== undefined) route.metric = metric;
  const mtu = attributes.nested(RTA_METRICS)?.u32(RTAX_MTU);
  if (mtu !== undefined) route.mtu = mtu;
  return route;
}

/** struct rtmsg. */
interface RtmsgFields {
  family: number;
  dstLength: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

function rtmsg(fields: RtmsgFields): Uint8Array {
  return new Struct(RTMSG_LEN)
    .setU8(0, fields.family)
    .setU8(1, fields.dstLength)
    .setU8(4, fields.table)
    .setU8(5, fields.protocol)
    .setU8(6, fields.scope)
    .setU8(7, fields.type)
    .setU32(8, fields.flags).bytes;
}

export function listRoutes(socket: NetlinkSocket, filter: RouteFilter = {}): Route[] {
  const operation = "list routes";
  const table = filter.table ?? RT_TABLE_MAIN;
  const index = filter.link === undefined ? undefined : resolveLinkIndex(socket, filter.link, operation);
  const family = filter.family === undefined ? AF_UNSPEC : addressFamily(filter.family);
  // Filtered here rather than by the kernel: its table filter fails (ENOENT) for a table that
  // does not exist yet, where an empty list is the useful answer.
  const request = new MessageBuilder(RTM_GETROUTE, 0).struct(
    rtmsg({ family, dstLength: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 }),
  );
  return socket
    .dump(operation, request)
    .map(decodeRoute)
    .filter(
      (route): route is Route =>
        route !== undefined &&
        (table === "all" || route.table === table) &&
        (index === undefined || route.dev === index) &&
        (filter.family === undefined || route.family === filter.family),
    );
}

/** "ip route"-like text of a route, for error messages. */
function describeRoute(spec: RouteSpec): string {
  return [
    spec.dst,
    spec.via && `via ${spec.via}`,
    spec.dev !== undefined && `dev ${describeLink(spec.dev)}`,
    spec.table !== undefined && `table ${spec.table}`,
  ]
    .filter(Boolean)
    .join(" ");
}

function routeRequest(socket: NetlinkSocket, type: number, flags: number, spec: RouteSpec, operation: string): MessageBuilder {
  const isDelete = type === RTM_DELROUTE;
  const dst = spec.dst === "default" ? undefined : parsePrefix(spec.dst);
  const via = spec.via === undefined ? undefined : parseIp(spec.via);
  const src = spec.src === undefined ? undefined : parseIp(spec.src);
  const family = dst?.address.family ?? via?.family ?? src?.family ?? 4;
  for (const [what, address] of [["via", via], ["src", src]] as [string, IpAddress | undefined][]) {
    if (address && address.family !== family) throw new TypeError(`${operation}: ${what} is of another address family than dst`);
  }
  const table = spec.table ?? RT_TABLE_MAIN;
  // iproute2's defaults: a delete matches any scope, protocol and type unless given.
  const scope =
    spec.scope !== undefined ? scopeValue(spec.scope) : isDelete ? RT_SCOPE_NOWHERE : via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  const request = new MessageBuilder(type, flags).struct(
    rtmsg({
      family: addressFamily(family),
      dstLength: dst?.length ?? 0,
      table: table < 256 ? table : RT_TABLE_UNSPEC,
      protocol: isDelete ? 0 : (spec.protocol ?? RTPROT_BOOT),
      scope,
      type: isDelete ? 0 : RTN_UNICAST,
      flags: spec.onlink ? RTNH_F_ONLINK : 0,
    }),
  );
  request.u32(RTA_TABLE, table);
  if (dst) request.attr(RTA_DST, dst.address.bytes);
  if (via) request.attr(RTA_GATEWAY, via.bytes);
  if (spec.dev !== undefined) request.u32(RTA_OIF, resolveLinkIndex(socket, spec.dev, operation));
  if (src) request.attr(RTA_PREFSRC, src.bytes);
  if (spec.metric !== undefined) request.u32(RTA_PRIORITY, spec.metric);
  const mtu = spec.mtu;
  if (mtu !== undefined) request.nest(RTA_METRICS, (metrics) => metrics.u32(RTAX_MTU, mtu));
  return request;
}

export function addRoute(socket: NetlinkSocket, spec: RouteSpec): void {
  const { operation, request } = addRouteStep(socket, spec);
  socket.execute(operation, request);
}

/** Adding a route; a `dev` given by name is looked up here, one given by index is not. */
export function addRouteStep(socket: NetlinkSocket, spec: RouteSpec): NetlinkStep {
  const operation = `add route ${describeRoute(spec)}`;
  return { operation, request: routeRequest(socket, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, spec, operation) };
}

export function replaceRoute(socket: NetlinkSocket, spec: RouteSpec): void {
  const operation = `replace route ${describeRoute(spec)}`;
  socket.execute(operation, routeRequest(socket, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, spec, operation));
}

export function deleteRoute(socket: NetlinkSocket, spec: RouteSpec): void {
  const operation = `delete route ${describeRoute(spec)}`;
  socket.execute(operation, routeRequest(socket, RTM_DELROUTE, 0, spec, operation));
}
