/** Netlink framing and attribute encoding/decoding, against hand-written bytes (no kernel). */
import { describe, expect, test } from "bun:test";
import {
  IFLA_IFNAME,
  IFLA_LINKINFO,
  IFLA_MTU,
  NLA_F_NESTED,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  RTM_NEWLINK,
} from "../../src/datapath/netlink/constants.ts";
import { decodeLink } from "../../src/datapath/netlink/link.ts";
import { align, Attributes, MessageBuilder, parseErrorReply, parseMessages } from "../../src/datapath/netlink/message.ts";

/** Bytes from a hex string with spaces, newlines and "# comments" ignored. */
function hex(text: string): Uint8Array {
  const digits = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

describe("MessageBuilder", () => {
  test("align rounds up to 4", () => {
    expect([0, 1, 3, 4, 5, 8, 9].map(align)).toEqual([0, 4, 4, 4, 8, 8, 12]);
  });

  test("writes the nlmsghdr, the family header and padded attributes", () => {
    const bytes = new MessageBuilder(RTM_NEWLINK, 0x600)
      .struct(new Uint8Array(16))
      .string(IFLA_IFNAME, "abcd") // 4 + 5 bytes -> padded to 12
      .u32(IFLA_MTU, 1500)
      .u8(99, 7) // 4 + 1 -> padded to 8
      .finish(0x01020304, 0x55, 0x05);
    expect(bytes).toEqual(
      hex(`
        3c000000 1000 0506 04030201 55000000   # len 60, RTM_NEWLINK, CREATE|EXCL|REQUEST|ACK, seq, pid
        00000000 00000000 00000000 00000000    # ifinfomsg
        0900 0300 61626364 00 000000           # IFLA_IFNAME "abcd\\0" + 3 bytes padding
        0800 0400 dc050000                     # IFLA_MTU 1500
        0500 6300 07 000000                    # type 99, u8 7 + padding
      `),
    );
  });

  test("nests set NLA_F_NESTED and the length of everything inside, padding included", () => {
    const bytes = new MessageBuilder(RTM_NEWLINK, 0)
      .nest(IFLA_LINKINFO, (info) => info.string(1, "veth").nest(2, (data) => data.be16(15, 8472)))
      .finish(1);
    expect(bytes).toEqual(
      hex(`
        2c000000 1000 0000 01000000 00000000
        1c00 1280                              # IFLA_LINKINFO | NLA_F_NESTED, 28 bytes
          0900 0100 76657468 00 000000         #   IFLA_INFO_KIND "veth"
          0c00 0280                            #   IFLA_INFO_DATA | NLA_F_NESTED, 12 bytes
            0600 0f00 2118 0000                #     a __be16 port 8472, big-endian
      `),
    );
  });

  test("grows past its initial buffer", () => {
    const payload = new Uint8Array(1000).fill(0xab);
    const bytes = new MessageBuilder(1, 0).attr(1, payload).attr(2, payload).finish(9);
    expect(bytes.byteLength).toBe(16 + 2 * 1004);
    const [message] = parseMessages(bytes);
    expect(new Attributes(message!.payload).bytes(2)).toEqual(payload);
  });

  test("refuses an attribute longer than 64 KiB", () => {
    expect(() => new MessageBuilder(1, 0).attr(1, new Uint8Array(70000))).toThrow(RangeError);
  });
});

describe("parseMessages", () => {
  test("splits a datagram into aligned messages", () => {
    const datagram = hex(`
      15000000 1000 0200 07000000 d2040000  0102030405 000000   # 21 bytes (5 payload), padded to 24
      14000000 0300 0200 07000000 d2040000  00000000            # NLMSG_DONE, error 0
    `);
    const messages = parseMessages(datagram);
    expect(messages.map(({ type, flags, seq, pid }) => ({ type, flags, seq, pid }))).toEqual([
      { type: RTM_NEWLINK, flags: NLM_F_MULTI, seq: 7, pid: 1234 },
      { type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 7, pid: 1234 },
    ]);
    expect(messages[0]!.payload).toEqual(hex("0102030405"));
  });

  test("throws on a length that runs past the datagram or below the header", () => {
    expect(() => parseMessages(hex("40000000 1000 0000 01000000 00000000"))).toThrow(/malformed netlink message: length 64/);
    expect(() => parseMessages(hex("08000000 1000 0000 01000000 00000000"))).toThrow(/malformed/);
  });
});

describe("Attributes", () => {
  test("reads typed values, strings without their NUL, and masks NLA_F_* flags off types", () => {
    const attributes = new Attributes(
      hex(`
        0800 0100 2a000000      # 1: u32 42
        0600 0200 1f90 0000     # 2: be16 8080
        0800 0300 ffffffff      # 3: s32 -1
        0900 0480 6c6f00 00 00000000   # 4|NESTED: "lo\\0" (+ junk after NUL, + padding)
      `),
    );
    expect(attributes.types).toEqual([1, 2, 3, 4]);
    expect(attributes.u32(1)).toBe(42);
    expect(attributes.be16(2)).toBe(8080);
    expect(attributes.s32(3)).toBe(-1);
    expect(attributes.string(4)).toBe("lo");
    expect(attributes.u32(2)).toBeUndefined(); // too short for a u32
    expect(attributes.has(5)).toBe(false);
  });

  test("nested attributes parse recursively", () => {
    const outer = new Attributes(
      hex(`
        1800 1280
          0900 0100 76786c616e 000000   # IFLA_INFO_KIND "vxlan" (no NUL: also accepted)
          0500 0200 01 000000           # a u8 1
      `),
    );
    const inner = outer.nested(IFLA_LINKINFO)!;
    expect(inner.string(1)).toBe("vxlan");
    expect(inner.u8(2)).toBe(1);
    expect(outer.nested(NLA_F_NESTED | 99)).toBeUndefined();
  });

  test("a truncated tail is ignored, not read past", () => {
    const attributes = new Attributes(hex("0800 0100 01000000  2000 0200 0102"));
    expect(attributes.types).toEqual([1]);
  });
});

describe("a hand-captured RTM_NEWLINK for a veth", () => {
  const blob = hex(`
    70000000 1000 0200 01000000 34120000   # nlmsghdr: 112 bytes, RTM_NEWLINK, NLM_F_MULTI, seq 1
    00 00 0100                              # ifinfomsg: AF_UNSPEC, pad, ARPHRD_ETHER
    07000000                                #   ifi_index 7
    03100100                                #   ifi_flags UP|BROADCAST|MULTICAST|LOWER_UP
    00000000                                #   ifi_change
    0a00 0300 7665746830 00 0000            # IFLA_IFNAME "veth0"
    0800 0d00 e8030000                      # IFLA_TXQLEN 1000 (not decoded: must be skipped)
    0500 1000 06 000000                     # IFLA_OPERSTATE IF_OPER_UP
    0800 0400 dc050000                      # IFLA_MTU 1500
    0800 0500 08000000                      # IFLA_LINK 8 (the peer)
    0a00 0100 020000000007 0000             # IFLA_ADDRESS 02:00:00:00:00:07
    0800 2500 00000000                      # IFLA_LINK_NETNSID 0
    1000 1200                               # IFLA_LINKINFO (the kernel sends it without NLA_F_NESTED)
      0900 0100 76657468 00 000000          #   IFLA_INFO_KIND "veth"
  `);

  test("the blob is consistent with its own nlmsg_len", () => {
    expect(blob.byteLength).toBe(112);
  });

  test("decodes to a Link", () => {
    const [message] = parseMessages(blob);
    expect(decodeLink(message!)).toEqual({
      index: 7,
      name: "veth0",
      mtu: 1500,
      mac: "02:00:00:00:00:07",
      flags: 0x11003,
      up: true,
      operState: "up",
      kind: "veth",
      parentIndex: 8,
      linkNetnsId: 0,
    });
  });

  test("a message too short for its ifinfomsg is an error, not garbage", () => {
    const [message] = parseMessages(hex("18000000 1000 0000 01000000 00000000 0000000007000000"));
    expect(() => decodeLink(message!)).toThrow(/too short/);
  });
});

describe("parseErrorReply", () => {
  const EINVAL_NEG = "eaffffff";
  const echoedHeader = "24000000 1000 0506 05000000 00000000"; // our 36-byte request's nlmsghdr
  const extAck = `
    2400 0100 6d7475206772656174657220746861 6e20646576696365206d6178696d756d 00   # MSG (31 chars + NUL)
    0800 0200 20000000                                                               # OFFS 32
  `;

  test("a plain ACK is errno 0", () => {
    const [message] = parseMessages(hex(`24000000 0200 0001 05000000 00000000 00000000 ${echoedHeader}`));
    expect(parseErrorReply(message!)).toEqual({ errno: 0 });
  });

  test("a capped error carries the errno and the extended-ack text and offset", () => {
    const payload = `${EINVAL_NEG} ${echoedHeader} ${extAck}`;
    const length = (16 + hex(payload).byteLength).toString(16).padStart(2, "0");
    const flags = (NLM_F_CAPPED | NLM_F_ACK_TLVS).toString(16).padStart(4, "0");
    const [message] = parseMessages(hex(`${length}000000 0200 ${flags.slice(2)}${flags.slice(0, 2)} 05000000 00000000 ${payload}`));
    expect(message!.type).toBe(NLMSG_ERROR);
    expect(parseErrorReply(message!)).toEqual({ errno: 22, message: "mtu greater than device maximum", offset: 32 });
  });

  test("an uncapped error skips the echoed request before the TLVs", () => {
    // The whole 40-byte request comes back: header, ifinfomsg, IFLA_MTU 1000000.
    const echoedRequest = "28000000 1000 0506 05000000 00000000 00000000 07000000 00000000 00000000 0800 0400 40420f00";
    const payload = `${EINVAL_NEG} ${echoedRequest} ${extAck}`;
    const length = (16 + hex(payload).byteLength).toString(16).padStart(2, "0");
    const [message] = parseMessages(hex(`${length}000000 0200 0002 05000000 00000000 ${payload}`));
    expect(parseErrorReply(message!)).toEqual({ errno: 22, message: "mtu greater than device maximum", offset: 32 });
  });

  test("without NLM_F_ACK_TLVS nothing after the header is read as TLVs", () => {
    const [message] = parseMessages(hex(`24000000 0200 0001 05000000 00000000 ${EINVAL_NEG} ${echoedHeader}`));
    expect(parseErrorReply(message!)).toEqual({ errno: 22 });
  });

  test("NLMSG_DONE carries a dump's error and its TLVs right after it", () => {
    const payload = `a1ffffff 0d00 0100 6e6f7420686572650000 0000`; // -95, MSG "not here"
    const length = (16 + hex(payload).byteLength).toString(16).padStart(2, "0");
    const [message] = parseMessages(hex(`${length}000000 0300 0202 05000000 00000000 ${payload}`));
    expect(parseErrorReply(message!)).toEqual({ errno: 95, message: "not here" });
  });

  test("a truncated error message is rejected", () => {
    const [message] = parseMessages(hex("12000000 0200 0000 05000000 00000000 eaff 0000"));
    expect(() => parseErrorReply(message!)).toThrow(/truncated/);
  });
});
