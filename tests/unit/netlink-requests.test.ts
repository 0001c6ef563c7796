/**
 * The requests each operation sends, captured by a fake socket and decoded field by field
 * against the UAPI layouts (struct ifinfomsg / ifaddrmsg / rtmsg / ndmsg and their attributes).
 */
import { describe, expect, test } from "bun:test";
import { SyscallError } from "../../src/datapath/errors.ts";
import { addAddress, deleteAddress } from "../../src/datapath/netlink/address.ts";
import * as K from "../../src/datapath/netlink/constants.ts";
import { createVeth, createVxlan, deleteLink, getLink, setLinkUp, setName } from "../../src/datapath/netlink/link.ts";
import { addNeighbour, deleteNeighbour } from "../../src/datapath/netlink/neighbour.ts";
import { addRoute, deleteRoute, replaceRoute } from "../../src/datapath/netlink/route.ts";
import { Attributes, MessageBuilder, type NetlinkMessage, parseMessages, Struct } from "../../src/datapath/netlink/message.ts";
import type { NetlinkSocket } from "../../src/datapath/netlink/socket.ts";
import type { Netns } from "../../src/datapath/netns.ts";

interface Sent {
  kind: "execute" | "query" | "dump";
  operation: string;
  message: NetlinkMessage;
}

/** Records requests; answers a get for a link by name with a link of ifindex 7, else ENODEV. */
class FakeSocket {
  readonly sent: Sent[] = [];
  known = new Set<string>();

  execute(operation: string, request: MessageBuilder): void {
    this.record("execute", operation, request);
  }
  query(operation: string, request: MessageBuilder): NetlinkMessage {
    const { message } = this.record("query", operation, request);
    const name = new Attributes(message.payload.subarray(K.IFINFOMSG_LEN)).string(K.IFLA_IFNAME);
    if (!name || !this.known.has(name)) throw new SyscallError(operation, 19);
    const reply = new MessageBuilder(K.RTM_NEWLINK, 0).struct(new Struct(K.IFINFOMSG_LEN).setS32(4, 7).bytes).string(K.IFLA_IFNAME, name);
    return parseMessages(reply.finish(1))[0]!;
  }
  dump(operation: string, request: MessageBuilder): NetlinkMessage[] {
    this.record("dump", operation, request);
    return [];
  }

  private record(kind: Sent["kind"], operation: string, request: MessageBuilder): Sent {
    const sent = { kind, operation, message: parseMessages(request.finish(1))[0]! };
    this.sent.push(sent);
    return sent;
  }
}

function fake(...known: string[]): { socket: NetlinkSocket; fake: FakeSocket } {
  const socket = new FakeSocket();
  for (const name of known) socket.known.add(name);
  return { socket: socket as unknown as NetlinkSocket, fake: socket };
}

/** The raw (unmasked) attribute types of a run of attributes, to see NLA_F_NESTED. */
function rawTypes(bytes: Uint8Array): number[] {
  const types: number[] = [];
  for (let offset = 0; offset + 4 <= bytes.byteLength; ) {
    const header = new Struct(bytes.subarray(offset, offset + 4));
    types.push(header.u16(2));
    offset += (header.u16(0) + 3) & ~3;
  }
  return types;
}

function body(message: NetlinkMessage, headerLength: number): { header: Struct; attributes: Attributes; raw: Uint8Array } {
  const raw = message.payload.subarray(headerLength);
  return { header: new Struct(message.payload.subarray(0, headerLength)), attributes: new Attributes(raw), raw };
}

describe("link requests", () => {
  test("create veth: RTM_NEWLINK CREATE|EXCL, the peer as an ifinfomsg plus attributes inside VETH_INFO_PEER", () => {
    const { socket, fake: f } = fake("v0");
    const link = createVeth(socket, { name: "v0", peerName: "v1", mtu: 1400, mac: "02:00:00:00:00:01", peerNetns: { fd: 42, path: "/x" } as Netns });
    expect(link.index).toBe(7); // read back by name after the create
    const [create, readBack] = f.sent;
    expect(create!.kind).toBe("execute");
    expect(create!.operation).toBe("create veth v0/v1");
    expect(create!.message.type).toBe(K.RTM_NEWLINK);
    expect(create!.message.flags).toBe(K.NLM_F_CREATE | K.NLM_F_EXCL);
    const { header, attributes, raw } = body(create!.message, K.IFINFOMSG_LEN);
    expect(header.bytes).toEqual(new Uint8Array(16));
    expect(rawTypes(raw)).toEqual([K.IFLA_IFNAME, K.IFLA_MTU, K.IFLA_ADDRESS, K.IFLA_LINKINFO | K.NLA_F_NESTED]);
    expect(attributes.string(K.IFLA_IFNAME)).toBe("v0");
    expect(attributes.u32(K.IFLA_MTU)).toBe(1400);
    expect(attributes.bytes(K.IFLA_ADDRESS)).toEqual(Uint8Array.of(2, 0, 0, 0, 0, 1));
    const info = attributes.nested(K.IFLA_LINKINFO)!;
    expect(info.string(K.IFLA_INFO_KIND)).toBe("veth");
    const peer = info.nested(K.IFLA_INFO_DATA)!.bytes(K.VETH_INFO_PEER)!;
    expect(peer.subarray(0, K.IFINFOMSG_LEN)).toEqual(new Uint8Array(16));
    const peerAttributes = new Attributes(peer.subarray(K.IFINFOMSG_LEN));
    expect(peerAttributes.types).toEqual([K.IFLA_IFNAME, K.IFLA_MTU, K.IFLA_NET_NS_FD]);
    expect(peerAttributes.string(K.IFLA_IFNAME)).toBe("v1");
    expect(peerAttributes.u32(K.IFLA_NET_NS_FD)).toBe(42);
    expect(readBack!.kind).toBe("query");
  });

  test("create vxlan external: collect-metadata, learning off, big-endian port, no VNI", () => {
    const { socket, fake: f } = fake("vx");
    createVxlan(socket, { name: "vx", external: true, learning: false, port: 8472 });
    const data = body(f.sent[0]!.message, K.IFINFOMSG_LEN).attributes.nested(K.IFLA_LINKINFO)!.nested(K.IFLA_INFO_DATA)!;
    expect(data.types.sort()).toEqual([K.IFLA_VXLAN_LEARNING, K.IFLA_VXLAN_PORT, K.IFLA_VXLAN_COLLECT_METADATA].sort());
    expect(data.bytes(K.IFLA_VXLAN_PORT)).toEqual(Uint8Array.of(0x21, 0x18));
    expect(data.u8(K.IFLA_VXLAN_COLLECT_METADATA)).toBe(1);
    expect(data.u8(K.IFLA_VXLAN_LEARNING)).toBe(0);
  });

  test("create vxlan with vni, IPv4 local and an underlay named by its ifindex", () => {
    const { socket, fake: f } = fake("vx");
    createVxlan(socket, { name: "vx", vni: 42, local: "192.0.2.1", dev: 3 });
    const data = body(f.sent[0]!.message, K.IFINFOMSG_LEN).attributes.nested(K.IFLA_LINKINFO)!.nested(K.IFLA_INFO_DATA)!;
    expect(data.u32(K.IFLA_VXLAN_ID)).toBe(42);
    expect(data.u32(K.IFLA_VXLAN_LINK)).toBe(3);
    expect(data.bytes(K.IFLA_VXLAN_LOCAL)).toEqual(Uint8Array.of(192, 0, 2, 1));
  });

  test("a link named by name is sent with ifindex 0 and IFLA_IFNAME; by index without a name", () => {
    const { socket, fake: f } = fake();
    setLinkUp(socket, "eth9", true);
    setLinkUp(socket, 12, false);
    deleteLink(socket, "eth9");
    const [up, down, del] = f.sent.map((sent) => body(sent.message, K.IFINFOMSG_LEN));
    expect([up!.header.s32(4), up!.header.u32(8), up!.header.u32(12)]).toEqual([0, K.IFF_UP, K.IFF_UP]);
    expect(up!.attributes.string(K.IFLA_IFNAME)).toBe("eth9");
    expect([down!.header.s32(4), down!.header.u32(8), down!.header.u32(12)]).toEqual([12, 0, K.IFF_UP]);
    expect(down!.attributes.types).toEqual([]);
    expect(f.sent.map((sent) => [sent.message.type, sent.operation])).toEqual([
      [K.RTM_NEWLINK, "set link eth9 up"],
      [K.RTM_NEWLINK, "set link ifindex 12 down"],
      [K.RTM_DELLINK, "delete link eth9"],
    ]);
    expect(del!.attributes.string(K.IFLA_IFNAME)).toBe("eth9");
  });

  test("rename resolves the index first, since IFLA_IFNAME then carries the new name", () => {
    const { socket, fake: f } = fake("old");
    setName(socket, "old", "new");
    const rename = body(f.sent[1]!.message, K.IFINFOMSG_LEN);
    expect(rename.header.s32(4)).toBe(7);
    expect(rename.attributes.string(K.IFLA_IFNAME)).toBe("new");
  });

  test("a missing link by name is undefined for a get and ENODEV, named, for an operation", () => {
    const { socket } = fake();
    expect(getLink(socket, "nope")).toBeUndefined();
    expect(() => addAddress(socket, "nope", "10.0.0.1/24")).toThrow("add address 10.0.0.1/24 to nope: ENODEV (no such device)");
  });

  test("names and indexes are validated before anything is sent", () => {
    const { socket, fake: f } = fake();
    expect(() => setLinkUp(socket, "sixteen-chars-xx", true)).toThrow(TypeError);
    expect(() => setLinkUp(socket, "a/b", true)).toThrow(TypeError);
    expect(() => setLinkUp(socket, 0, true)).toThrow("invalid ifindex 0");
    expect(f.sent).toEqual([]);
  });
});

describe("address requests", () => {
  test("add: ifaddrmsg, IFA_LOCAL our address, IFA_ADDRESS the peer, IFA_FLAGS for noprefixroute", () => {
    const { socket, fake: f } = fake();
    addAddress(socket, 5, "10.1.0.1/32", { peer: "10.1.0.2", scope: "link", noPrefixRoute: true });
    const { message } = f.sent[0]!;
    expect([message.type, message.flags]).toEqual([K.RTM_NEWADDR, K.NLM_F_CREATE | K.NLM_F_EXCL]);
    const { header, attributes } = body(message, K.IFADDRMSG_LEN);
    expect([header.u8(0), header.u8(1), header.u8(2), header.u8(3), header.u32(4)]).toEqual([K.AF_INET, 32, 0, K.RT_SCOPE_LINK, 5]);
    expect(attributes.bytes(K.IFA_LOCAL)).toEqual(Uint8Array.of(10, 1, 0, 1));
    expect(attributes.bytes(K.IFA_ADDRESS)).toEqual(Uint8Array.of(10, 1, 0, 2));
    expect(attributes.u32(K.IFA_FLAGS)).toBe(K.IFA_F_NOPREFIXROUTE);
  });

  test("IPv6 add and delete", () => {
    const { socket, fake: f } = fake();
    addAddress(socket, 5, "fd00::1/64", { noDad: true });
    deleteAddress(socket, 5, "fd00::1/64");
    const add = body(f.sent[0]!.message, K.IFADDRMSG_LEN);
    expect([add.header.u8(0), add.header.u8(1)]).toEqual([K.AF_INET6, 64]);
    expect(add.attributes.bytes(K.IFA_LOCAL)!.byteLength).toBe(16);
    expect(add.attributes.u32(K.IFA_FLAGS)).toBe(K.IFA_F_NODAD);
    expect(f.sent[1]!.message.type).toBe(K.RTM_DELADDR);
  });

  test("a peer of another family is refused", () => {
    const { socket } = fake();
    expect(() => addAddress(socket, 5, "10.0.0.1/32", { peer: "fd00::1" })).toThrow(TypeError);
  });
});

describe("route requests", () => {
  test("a gateway route: unicast, universe scope, boot protocol, main table", () => {
    const { socket, fake: f } = fake();
    addRoute(socket, { dst: "10.2.0.0/16", via: "10.1.0.1", dev: 5, metric: 10, mtu: 1400, src: "10.1.0.2" });
    const { message } = f.sent[0]!;
    expect([message.type, message.flags]).toEqual([K.RTM_NEWROUTE, K.NLM_F_CREATE | K.NLM_F_EXCL]);
    const { header, attributes, raw } = body(message, K.RTMSG_LEN);
    // family, dst_len, src_len, tos, table, protocol, scope, type, flags
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((offset) => header.u8(offset))).toEqual([K.AF_INET, 16, 0, 0, 254, K.RTPROT_BOOT, 0, K.RTN_UNICAST]);
    expect(header.u32(8)).toBe(0);
    expect(attributes.u32(K.RTA_TABLE)).toBe(254);
    expect(attributes.bytes(K.RTA_DST)).toEqual(Uint8Array.of(10, 2, 0, 0));
    expect(attributes.bytes(K.RTA_GATEWAY)).toEqual(Uint8Array.of(10, 1, 0, 1));
    expect(attributes.u32(K.RTA_OIF)).toBe(5);
    expect(attributes.u32(K.RTA_PRIORITY)).toBe(10);
    expect(attributes.bytes(K.RTA_PREFSRC)).toEqual(Uint8Array.of(10, 1, 0, 2));
    expect(attributes.nested(K.RTA_METRICS)!.u32(K.RTAX_MTU)).toBe(1400);
    expect(rawTypes(raw)).toContain(K.RTA_METRICS | K.NLA_F_NESTED);
  });

  test("a device route defaults to link scope; onlink sets RTNH_F_ONLINK", () => {
    const { socket, fake: f } = fake();
    addRoute(socket, { dst: "10.3.0.0/24", dev: 5 });
    addRoute(socket, { dst: "10.4.0.0/24", via: "192.0.2.1", dev: 5, onlink: true });
    expect(body(f.sent[0]!.message, K.RTMSG_LEN).header.u8(6)).toBe(K.RT_SCOPE_LINK);
    expect(body(f.sent[1]!.message, K.RTMSG_LEN).header.u32(8)).toBe(K.RTNH_F_ONLINK);
  });

  test("default route in a table above 255: rtm_table unspec, RTA_TABLE the id, no RTA_DST", () => {
    const { socket, fake: f } = fake();
    replaceRoute(socket, { dst: "default", via: "10.1.0.1", table: 1000 });
    const { message } = f.sent[0]!;
    expect(message.flags).toBe(K.NLM_F_CREATE | K.NLM_F_REPLACE);
    const { header, attributes } = body(message, K.RTMSG_LEN);
    expect([header.u8(1), header.u8(4)]).toEqual([0, K.RT_TABLE_UNSPEC]);
    expect(attributes.u32(K.RTA_TABLE)).toBe(1000);
    expect(attributes.has(K.RTA_DST)).toBe(false);
  });

  test("delete matches any scope, protocol and type unless given", () => {
    const { socket, fake: f } = fake();
    deleteRoute(socket, { dst: "10.2.0.0/16" });
    const { header } = body(f.sent[0]!.message, K.RTMSG_LEN);
    expect([header.u8(5), header.u8(6), header.u8(7)]).toEqual([0, K.RT_SCOPE_NOWHERE, 0]);
    expect(f.sent[0]!.operation).toBe("delete route 10.2.0.0/16");
  });

  test("IPv6 routes take their family from the prefix; mixed families are refused", () => {
    const { socket, fake: f } = fake();
    addRoute(socket, { dst: "fd00:1::/64", via: "fd00::1" });
    expect(body(f.sent[0]!.message, K.RTMSG_LEN).header.u8(0)).toBe(K.AF_INET6);
    expect(() => addRoute(socket, { dst: "10.0.0.0/8", via: "fd00::1" })).toThrow(/another address family/);
  });
});

describe("neighbour requests", () => {
  test("add permanent: ndmsg with NUD_PERMANENT, NDA_DST and NDA_LLADDR", () => {
    const { socket, fake: f } = fake();
    addNeighbour(socket, { dev: 5, ip: "10.1.0.9", mac: "02:00:00:00:00:09", permanent: true });
    deleteNeighbour(socket, { dev: 5, ip: "10.1.0.9" });
    const { message, operation } = f.sent[0]!;
    expect(operation).toBe("add neighbour 10.1.0.9 lladdr 02:00:00:00:00:09 dev ifindex 5");
    expect([message.type, message.flags]).toEqual([K.RTM_NEWNEIGH, K.NLM_F_CREATE | K.NLM_F_EXCL]);
    const { header, attributes } = body(message, K.NDMSG_LEN);
    expect([header.u8(0), header.s32(4), header.u16(8)]).toEqual([K.AF_INET, 5, K.NUD_PERMANENT]);
    expect(attributes.bytes(K.NDA_DST)).toEqual(Uint8Array.of(10, 1, 0, 9));
    expect(attributes.bytes(K.NDA_LLADDR)).toEqual(Uint8Array.of(2, 0, 0, 0, 0, 9));
    const del = body(f.sent[1]!.message, K.NDMSG_LEN);
    expect(f.sent[1]!.message.type).toBe(K.RTM_DELNEIGH);
    expect(del.attributes.types).toEqual([K.NDA_DST]);
  });
});
