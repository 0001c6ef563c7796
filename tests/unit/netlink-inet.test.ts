/** Text <-> bytes for IP addresses, prefixes and MACs, and scope names. */
import { describe, expect, test } from "bun:test";
import { formatIp, formatMac, parseIp, parseMac, parsePrefix } from "../../src/datapath/netlink/inet.ts";
import { scopeName, scopeValue } from "../../src/datapath/netlink/scope.ts";

describe("IP addresses", () => {
  test("IPv4 parses to network-order bytes and back", () => {
    expect(parseIp("10.231.0.1")).toEqual({ family: 4, bytes: Uint8Array.of(10, 231, 0, 1) });
    expect(formatIp(Uint8Array.of(192, 0, 2, 255))).toBe("192.0.2.255");
  });

  test("IPv4 rejects out-of-range, short, octal-looking and hex forms", () => {
    for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "0x1.2.3.4", "1.2.3.-4", ""]) {
      expect(() => parseIp(bad)).toThrow(`invalid IP address "${bad}"`);
    }
  });

  test("IPv6 parses every shorthand", () => {
    const words = (text: string) => {
      const { family, bytes } = parseIp(text);
      expect(family).toBe(6);
      return Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
    };
    expect(words("::")).toEqual(["0", "0", "0", "0", "0", "0", "0", "0"]);
    expect(words("::1")).toEqual(["0", "0", "0", "0", "0", "0", "0", "1"]);
    expect(words("fe80::1:2")).toEqual(["fe80", "0", "0", "0", "0", "0", "1", "2"]);
    expect(words("2001:DB8:0:0:1:0:0:1")).toEqual(["2001", "db8", "0", "0", "1", "0", "0", "1"]);
    expect(words("::ffff:10.0.0.1")).toEqual(["0", "0", "0", "0", "0", "ffff", "a00", "1"]);
    expect(words("fd00::")).toEqual(["fd00", "0", "0", "0", "0", "0", "0", "0"]);
  });

  test("IPv6 rejects malformed text", () => {
    for (const bad of ["1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "1:2:3:4:5:6:7::8:9", "fe80::1%eth0"]) {
      expect(() => parseIp(bad)).toThrow(TypeError);
    }
  });

  test("IPv6 prints as inet_ntop does (RFC 5952, glibc's dotted forms)", () => {
    const roundTrip = (text: string) => formatIp(parseIp(text).bytes);
    expect(roundTrip("2001:0db8:0000:0000:0001:0000:0000:0001")).toBe("2001:db8::1:0:0:1"); // first of equal runs
    expect(roundTrip("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // a single zero is not compressed
    expect(roundTrip("fe80:0:0:0:6cf1:baff:fe04:f53a")).toBe("fe80::6cf1:baff:fe04:f53a");
    expect(roundTrip("0:0:0:0:0:0:0:0")).toBe("::");
    expect(roundTrip("0:0:0:0:0:0:0:1")).toBe("::1");
    expect(roundTrip("1:0:0:0:0:0:0:0")).toBe("1::");
    expect(roundTrip("::ffff:a00:1")).toBe("::ffff:10.0.0.1");
    expect(roundTrip("::a00:1")).toBe("::10.0.0.1");
    expect(roundTrip("fd00:e7::1")).toBe("fd00:e7::1");
  });

  test("formatIp refuses other lengths", () => {
    expect(() => formatIp(new Uint8Array(6))).toThrow(TypeError);
  });
});

describe("prefixes", () => {
  test("a CIDR has an address and a length; a bare address is a host prefix", () => {
    expect(parsePrefix("10.0.0.0/8")).toEqual({ address: { family: 4, bytes: Uint8Array.of(10, 0, 0, 0) }, length: 8 });
    expect(parsePrefix("10.0.0.1").length).toBe(32);
    expect(parsePrefix("fd00::/64").length).toBe(64);
    expect(parsePrefix("fd00::1").length).toBe(128);
    expect(parsePrefix("0.0.0.0/0").length).toBe(0);
  });

  test("lengths must be decimal and within the family", () => {
    for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "10.0.0.0/1e1"]) {
      expect(() => parsePrefix(bad)).toThrow(TypeError);
    }
  });
});

describe("MAC addresses", () => {
  test("parse with colons or dashes, print lower-case with colons", () => {
    expect(parseMac("02:00:0A:e7:00:2")).toEqual(Uint8Array.of(2, 0, 10, 0xe7, 0, 2));
    expect(parseMac("02-00-0a-e7-00-02")).toEqual(Uint8Array.of(2, 0, 10, 0xe7, 0, 2));
    expect(formatMac(Uint8Array.of(2, 0, 10, 0xe7, 0, 2))).toBe("02:00:0a:e7:00:02");
  });

  test("reject anything but six hex bytes", () => {
    for (const bad of ["02:00:00:00:00", "02:00:00:00:00:00:00", "02:00:00:00:00:zz", "0200.0000.0000", "020:00:00:00:00:00"]) {
      expect(() => parseMac(bad)).toThrow(`invalid MAC address "${bad}"`);
    }
  });
});

describe("scopes", () => {
  test("names map to rt_scope_t values and back; unnamed values stay numbers", () => {
    expect(["universe", "site", "link", "host", "nowhere"].map((name) => scopeValue(name as "link"))).toEqual([0, 200, 253, 254, 255]);
    expect(scopeName(253)).toBe("link");
    expect(scopeName(100)).toBe(100);
    expect(scopeValue(100)).toBe(100);
    expect(() => scopeValue("global" as "link")).toThrow(TypeError);
  });
});
