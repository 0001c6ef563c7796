import { describe, expect, test } from "bun:test";
import { attachmentResult, formatResult, mergeDns, parsePrevResult, type AttachmentNetwork, type CniResult } from "../../src/cni/result.ts";
import { SUPPORTED_VERSIONS } from "../../src/cni/spec.ts";

const network: AttachmentNetwork = {
  hostInterface: { name: "lxc0123456789a", mac: "aa:bb:cc:00:00:01" },
  podInterface: { name: "eth0", mac: "aa:bb:cc:00:00:02", sandbox: "/var/run/netns/pod" },
  mtu: 1450,
  ip: "10.200.0.7",
  gateway: "10.200.0.1",
};

describe("ADD result per cniVersion", () => {
  test("1.1.0 carries interface MTU and no IP version", () => {
    expect(attachmentResult(network, "1.1.0")).toEqual({
      cniVersion: "1.1.0",
      interfaces: [
        { name: "lxc0123456789a", mac: "aa:bb:cc:00:00:01", mtu: 1450 },
        { name: "eth0", mac: "aa:bb:cc:00:00:02", mtu: 1450, sandbox: "/var/run/netns/pod" },
      ],
      ips: [{ address: "10.200.0.7/32", gateway: "10.200.0.1", interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.200.0.1" }],
      dns: {},
    });
  });

  test("1.0.0 has neither interface MTU nor IP version", () => {
    const result = attachmentResult(network, "1.0.0");
    expect(result.interfaces).toEqual([
      { name: "lxc0123456789a", mac: "aa:bb:cc:00:00:01" },
      { name: "eth0", mac: "aa:bb:cc:00:00:02", sandbox: "/var/run/netns/pod" },
    ]);
    expect(result.ips).toEqual([{ address: "10.200.0.7/32", gateway: "10.200.0.1", interface: 1 }]);
  });

  for (const version of ["0.3.0", "0.3.1", "0.4.0"] as const) {
    test(`${version} tags IPs with version "4"`, () => {
      const result = attachmentResult(network, version);
      expect(result.cniVersion).toBe(version);
      expect(result.ips).toEqual([{ version: "4", address: "10.200.0.7/32", gateway: "10.200.0.1", interface: 1 }]);
      expect((result.interfaces as object[]).every((i) => !("mtu" in i))).toBe(true);
      expect(result.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.200.0.1" }]);
    });
  }

  test("every supported version yields the four result keys", () => {
    for (const version of SUPPORTED_VERSIONS) {
      expect(Object.keys(attachmentResult(network, version)).sort()).toEqual(["cniVersion", "dns", "interfaces", "ips", "routes"]);
    }
  });

  test("formatting for an older version drops 1.1-only route fields and adds IPv6 versions", () => {
    const result: CniResult = {
      cniVersion: "1.1.0",
      interfaces: [{ name: "eth0", socketPath: "/x", pciID: "0000:00:01.0" }],
      ips: [{ address: "fd00::2/64", interface: 0 }],
      routes: [{ dst: "::/0", gw: "fd00::1", mtu: 1400, advmss: 1300, priority: 5, table: 100, scope: 0 }],
      dns: {},
    };
    expect(formatResult(result, "0.4.0")).toEqual({
      cniVersion: "0.4.0",
      interfaces: [{ name: "eth0" }],
      ips: [{ version: "6", address: "fd00::2/64", interface: 0 }],
      routes: [{ dst: "::/0", gw: "fd00::1" }],
      dns: {},
    });
    expect(formatResult(result, "1.1.0").routes).toEqual(result.routes);
  });
});

describe("prevResult (chaining)", () => {
  const previous = parsePrevResult({
    cniVersion: "0.4.0",
    interfaces: [{ name: "net0", mac: "02:00:00:00:00:01", sandbox: "/var/run/netns/pod", vendorField: 1 }],
    ips: [{ version: "4", address: "192.168.1.5/24", gateway: "192.168.1.1", interface: 0 }],
    routes: [{ dst: "192.168.0.0/16" }],
    dns: { nameservers: ["192.168.1.53"], domain: "corp" },
  });

  test("its entries come first, unchanged but for the version format; ours point past them", () => {
    const result = attachmentResult(network, "1.0.0", { previous, dns: { nameservers: ["10.96.0.10", "192.168.1.53"], search: ["svc"] } });
    expect(result.interfaces).toEqual([
      { name: "net0", mac: "02:00:00:00:00:01", sandbox: "/var/run/netns/pod", vendorField: 1 },
      { name: "lxc0123456789a", mac: "aa:bb:cc:00:00:01" },
      { name: "eth0", mac: "aa:bb:cc:00:00:02", sandbox: "/var/run/netns/pod" },
    ]);
    expect(result.ips).toEqual([
      { address: "192.168.1.5/24", gateway: "192.168.1.1", interface: 0 },
      { address: "10.200.0.7/32", gateway: "10.200.0.1", interface: 2 },
    ]);
    expect(result.routes).toEqual([{ dst: "192.168.0.0/16" }, { dst: "0.0.0.0/0", gw: "10.200.0.1" }]);
    expect(result.dns).toEqual({ nameservers: ["192.168.1.53", "10.96.0.10"], domain: "corp", search: ["svc"] });
  });

  test("an empty prevResult adds nothing", () => {
    expect(attachmentResult(network, "1.0.0", { previous: parsePrevResult({ cniVersion: "1.0.0" }) })).toEqual(attachmentResult(network, "1.0.0"));
  });

  test("malformed entries are invalid config (7) naming the field", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ interfaces: {} }, "prevResult.interfaces"],
      [{ interfaces: [{ mac: "x" }] }, "prevResult.interfaces[0].name"],
      [{ ips: ["10.0.0.1/24"] }, "prevResult.ips[0]"],
      [{ ips: [{ address: "10.0.0.1/24", interface: -1 }] }, "prevResult.ips[0].interface"],
      [{ routes: [{ gw: "10.0.0.1" }] }, "prevResult.routes[0].dst"],
      [{ dns: [] }, "prevResult.dns"],
    ];
    for (const [raw, field] of cases) {
      expect(() => parsePrevResult(raw)).toThrow(field);
      try {
        parsePrevResult(raw);
      } catch (error) {
        expect((error as { code: number }).code).toBe(7);
      }
    }
  });
});

test("DNS merging keeps order and drops duplicates", () => {
  expect(mergeDns({ nameservers: ["a", "b"], options: ["ndots:5"] }, { nameservers: ["b", "c"], domain: "d" })).toEqual({
    nameservers: ["a", "b", "c"],
    domain: "d",
    options: ["ndots:5"],
  });
  expect(mergeDns({}, {})).toEqual({});
});
