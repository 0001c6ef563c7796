/**
 * The policy and ipcache map codecs against the C layouts of bpf/lib/maps.h (offsets and bytes
 * written by hand from the structs), and the conversion of rules to keys.
 */
import { describe, expect, test } from "bun:test";
import { EndpointFlags, EndpointInfo } from "../../src/datapath/maps/endpoints.ts";
import { checkIdentity, IpcacheKey, ipcacheCidrOf, ipcacheKeyOf, RemoteEndpointInfo } from "../../src/datapath/maps/ipcache.ts";
import {
  normalizePolicyKey,
  normalizePolicyRules,
  PolicyEntry,
  PolicyKey,
  policyKeyId,
  policyKeyOf,
  policyKeyWithin,
  policyRuleOf,
  type PolicyRule,
} from "../../src/datapath/maps/policy.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const rule = (overrides: Partial<PolicyRule>): PolicyRule => ({
  direction: "ingress",
  identity: 1000,
  protocol: 6,
  port: 80,
  prefixLength: 16,
  deny: false,
  ...overrides,
});

describe("layouts", () => {
  test("policy_key is 16 bytes with network-order fields at the C offsets", () => {
    expect(PolicyKey.size).toBe(16);
    expect(PolicyKey.fields.map((f) => [f.name, f.offset, f.codec.size])).toEqual([
      ["prefixlen", 0, 4],
      ["endpointId", 4, 2],
      ["direction", 6, 1],
      ["pad0", 7, 1],
      ["identity", 8, 4],
      ["protocol", 12, 1],
      ["pad1", 13, 1],
      ["dport", 14, 2],
    ]);
    const bytes = PolicyKey.encode({ prefixlen: 96, endpointId: 0x0102, direction: 2, identity: 0x000003e8, protocol: 6, dport: 8080 });
    // prefixlen host order (LE), then endpoint 0x0102 BE, dir 2, pad, identity 1000 BE, proto 6, pad, port 8080 BE
    expect(hex(bytes)).toBe("60000000" + "0102" + "02" + "00" + "000003e8" + "06" + "00" + "1f90");
  });

  test("policy_entry is 8 bytes: flags then padding", () => {
    expect(PolicyEntry.size).toBe(8);
    expect(hex(PolicyEntry.encode({ flags: 1 }))).toBe("0100000000000000");
  });

  test("ipcache key and remote_endpoint_info", () => {
    expect(IpcacheKey.size).toBe(8);
    expect(hex(IpcacheKey.encode({ prefixlen: 24, ip4: "10.1.2.0" }))).toBe("180000000a010200");
    expect(RemoteEndpointInfo.size).toBe(12);
    expect(RemoteEndpointInfo.fields.map((f) => [f.name, f.offset])).toEqual([
      ["secIdentity", 0],
      ["tunnelEndpoint", 4],
      ["flags", 8],
      ["pad", 9],
    ]);
    expect(hex(RemoteEndpointInfo.encode({ secIdentity: 258, tunnelEndpoint: "192.168.0.9", flags: 0 }))).toBe("02010000c0a8000900000000");
  });

  test("endpoint flags: bit 0 ingress enforced, bit 1 egress enforced, at offset 6 of endpoint_info", () => {
    expect(EndpointFlags).toEqual({ PolicyIngress: 1, PolicyEgress: 2 });
    expect(EndpointInfo.offsetOf("flags")).toBe(6);
  });
});

describe("rules to keys", () => {
  test("one port: prefix 96", () => {
    expect(policyKeyOf(7, rule({}))).toEqual({ prefixlen: 96, endpointId: 7, direction: 1, identity: 1000, protocol: 6, dport: 80 });
  });

  test("any port of a protocol: prefix 80; a port prefix: 80 + bits", () => {
    expect(policyKeyOf(7, rule({ port: 0, prefixLength: 0 })).prefixlen).toBe(80);
    expect(policyKeyOf(7, rule({ port: 8080, prefixLength: 13 }))).toMatchObject({ prefixlen: 93, dport: 8080 });
  });

  test("any protocol: prefix 64, protocol and port zero whatever prefixLength says", () => {
    expect(policyKeyOf(7, rule({ direction: "egress", identity: 0, protocol: 0, port: 0, prefixLength: 9 }))).toEqual({
      prefixlen: 64,
      endpointId: 7,
      direction: 2,
      identity: 0,
      protocol: 0,
      dport: 0,
    });
  });

  test("ICMP: the port is the ICMP type", () => {
    expect(policyKeyOf(3, rule({ protocol: 1, port: 8 }))).toMatchObject({ prefixlen: 96, protocol: 1, dport: 8 });
  });

  test("rejects what would silently widen or cannot be expressed", () => {
    expect(() => policyKeyOf(7, rule({ port: 80, prefixLength: 0 }))).toThrow(/bits outside/);
    expect(() => policyKeyOf(7, rule({ port: 81, prefixLength: 15 }))).toThrow(/bits outside/);
    expect(() => policyKeyOf(7, rule({ protocol: 0, port: 80 }))).toThrow(/needs a protocol/);
    expect(() => policyKeyOf(7, rule({ direction: "both" as never }))).toThrow(/direction/);
    expect(() => policyKeyOf(7, rule({ direction: "toString" as never }))).toThrow(/direction/);
    expect(() => policyKeyOf(7, rule({ identity: -1 }))).toThrow(/identity/);
    expect(() => policyKeyOf(7, rule({ identity: 2 ** 32 }))).toThrow(/identity/);
    expect(() => policyKeyOf(7, rule({ protocol: 256 }))).toThrow(/protocol/);
    expect(() => policyKeyOf(7, rule({ port: 65536 }))).toThrow(/port/);
    expect(() => policyKeyOf(7, rule({ prefixLength: 17 }))).toThrow(/prefixLength/);
    expect(() => policyKeyOf(7, rule({ deny: "yes" as never }))).toThrow(/deny/);
    expect(() => policyKeyOf(70000, rule({}))).toThrow(/endpoint id/);
  });

  test("keys back to rules", () => {
    for (const r of [
      rule({}),
      rule({ deny: true, direction: "egress", identity: 0 }),
      rule({ port: 0, prefixLength: 0, protocol: 17 }),
      rule({ port: 1024, prefixLength: 6 }),
      rule({ protocol: 0, port: 0, prefixLength: 0 }),
    ]) {
      expect(policyRuleOf(policyKeyOf(9, r), r.deny)).toEqual(r);
    }
  });

  test("duplicates merge; allowed and denied at once is denied", () => {
    const entries = normalizePolicyRules(5, [rule({}), rule({}), rule({ deny: true }), rule({ port: 443 })]);
    expect(entries.map((e) => [e.key.dport, e.deny])).toEqual([
      [80, true],
      [443, false],
    ]);
  });

  test("trie node identity ignores bits beyond the prefix; nesting", () => {
    const wide = policyKeyOf(5, rule({ port: 0, prefixLength: 0 }));
    const messy = { ...wide, dport: 1234 };
    expect(policyKeyId(messy)).toBe(policyKeyId(wide));
    expect(normalizePolicyKey(messy)).toEqual(wide);
    const narrow = policyKeyOf(5, rule({ port: 443 }));
    expect(policyKeyWithin(narrow, wide)).toBe(true);
    expect(policyKeyWithin(wide, narrow)).toBe(false);
    expect(policyKeyWithin(narrow, narrow)).toBe(true);
    expect(policyKeyWithin(narrow, policyKeyOf(5, rule({ identity: 1001, port: 0, prefixLength: 0 })))).toBe(false);
    expect(policyKeyWithin(narrow, policyKeyOf(5, rule({ protocol: 0, port: 0 })))).toBe(true);
    expect(policyKeyWithin(narrow, policyKeyOf(6, rule({ protocol: 0, port: 0 })))).toBe(false);
  });
});

describe("ipcache keys", () => {
  test("CIDRs and bare addresses", () => {
    expect(ipcacheKeyOf("10.0.0.0/8")).toEqual({ prefixlen: 8, ip4: "10.0.0.0" });
    expect(ipcacheKeyOf("10.1.2.3")).toEqual({ prefixlen: 32, ip4: "10.1.2.3" });
    expect(ipcacheKeyOf("0.0.0.0/0")).toEqual({ prefixlen: 0, ip4: "0.0.0.0" });
    expect(ipcacheCidrOf({ prefixlen: 32, ip4: "10.1.2.3" })).toBe("10.1.2.3/32");
  });

  test("host bits, garbage and identity 0 are refused", () => {
    expect(() => ipcacheKeyOf("10.1.2.3/24")).toThrow(/host bits/);
    expect(() => ipcacheKeyOf("10.1.2/24")).toThrow();
    expect(() => ipcacheKeyOf("10.1.2.3/33")).toThrow();
    expect(() => checkIdentity(0)).toThrow(/security identity/);
    expect(checkIdentity(1)).toBe(1);
  });
});
