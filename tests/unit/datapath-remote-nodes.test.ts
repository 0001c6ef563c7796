/**
 * RemoteNodes against an in-memory ipcache and routing table: what each routing mode programs
 * for a node, that an upsert replaces exactly the previous state, that a failure half-way leaves
 * the previous state, and that the first upsert after a restart removes an earlier run's leftovers.
 */
import { describe, expect, test } from "bun:test";
import { SyscallError } from "../../src/datapath/errors.ts";
import type { IpcacheEntry } from "../../src/datapath/maps/ipcache.ts";
import type { Netlink, Route, RouteSpec } from "../../src/datapath/netlink/index.ts";
import { NODE_ROUTE_PROTOCOL, RemoteNodes, type IpcacheWriter } from "../../src/datapath/remote-nodes.ts";
import { parseCidr } from "../../src/net/ipv4.ts";

class FakeIpcache implements IpcacheWriter {
  readonly entries = new Map<string, { identity: number; tunnelEndpoint?: string }>();
  failOn: string | undefined;

  upsertIpcache(cidr: string, identity: number, options: { tunnelEndpoint?: string } = {}): void {
    if (cidr === this.failOn) throw new Error(`map full at ${cidr}`);
    this.entries.set(cidr, options.tunnelEndpoint ? { identity, tunnelEndpoint: options.tunnelEndpoint } : { identity });
  }
  deleteIpcache(cidr: string): void {
    this.entries.delete(cidr);
  }
  listIpcache(): IpcacheEntry[] {
    return [...this.entries].map(([cidr, value]) => ({ cidr, ...value }));
  }
  dump(): string[] {
    return [...this.entries].map(([cidr, v]) => `${cidr} ${v.identity}${v.tunnelEndpoint ? ` -> ${v.tunnelEndpoint}` : ""}`).sort();
  }
}

/** The routing-table part of Netlink RemoteNodes uses. */
class FakeRoutes {
  readonly routes = new Map<string, { via: string; protocol: number }>();
  unreachable = new Set<string>();

  replaceRoute(spec: RouteSpec): void {
    if (this.unreachable.has(spec.via!)) throw new SyscallError(`replace route ${spec.dst} via ${spec.via}`, 101, "Network is unreachable");
    this.routes.set(spec.dst, { via: spec.via!, protocol: spec.protocol ?? 3 });
  }
  deleteRoute(spec: RouteSpec): void {
    if (!this.routes.delete(spec.dst)) throw new SyscallError(`delete route ${spec.dst}`, 3);
  }
  routes_(): Route[] {
    return [...this.routes].map(([dst, r]) => ({ family: 4, dst, via: r.via, table: 254, protocol: r.protocol, scope: "universe", type: 1, onlink: false }));
  }
  dump(): string[] {
    return [...this.routes].map(([dst, r]) => `${dst} via ${r.via}`).sort();
  }
}

function setUp(mode: "tunnel" | "native", autoDirectNodeRoutes = mode === "native") {
  const ipcache = new FakeIpcache();
  const table = new FakeRoutes();
  const netlink = { replaceRoute: (s: RouteSpec) => table.replaceRoute(s), deleteRoute: (s: RouteSpec) => table.deleteRoute(s), routes: () => table.routes_() } as unknown as Netlink;
  const nodes = new RemoteNodes({ mode, autoDirectNodeRoutes, localPodCidr: parseCidr("10.0.1.0/24"), localAddresses: () => ["192.168.0.1"], ipcache, netlink });
  return { ipcache, table, nodes };
}

describe("tunnel mode", () => {
  test("pod CIDRs become tunnelled ipcache prefixes (WORLD), the node IP REMOTE_NODE; no routes", () => {
    const { ipcache, table, nodes } = setUp("tunnel");
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24", "10.0.3.0/24"] });
    expect(ipcache.dump()).toEqual(["10.0.2.0/24 2 -> 192.168.0.2", "10.0.3.0/24 2 -> 192.168.0.2", "192.168.0.2/32 6"]);
    expect(table.dump()).toEqual([]);
    expect(nodes.list()).toEqual([{ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24", "10.0.3.0/24"] }]);
  });

  test("an upsert with a new IP and CIDRs replaces the old entries; delete removes all; both idempotent", () => {
    const { ipcache, nodes } = setUp("tunnel");
    ipcache.upsertIpcache("10.0.2.7/32", 300, { tunnelEndpoint: "192.168.0.2" }); // an endpoint: not the node's to remove
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    nodes.upsert({ name: "b", ipv4: "192.168.0.3", podCidrs: ["10.0.4.0/24"] });
    expect(ipcache.dump()).toEqual(["10.0.2.7/32 300 -> 192.168.0.2", "10.0.4.0/24 2 -> 192.168.0.3", "192.168.0.3/32 6"]);
    nodes.delete("b");
    nodes.delete("b");
    nodes.delete("never-seen");
    expect(ipcache.dump()).toEqual(["10.0.2.7/32 300 -> 192.168.0.2"]);
    expect(nodes.list()).toEqual([]);
  });

  test("a failure half-way restores what the node had and throws", () => {
    const { ipcache, nodes } = setUp("tunnel");
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    const before = ipcache.dump();
    ipcache.failOn = "10.0.6.0/24";
    expect(() => nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.5.0/24", "10.0.6.0/24"] })).toThrow("map full at 10.0.6.0/24");
    expect(ipcache.dump()).toEqual(before);
    expect(nodes.list()[0]!.podCidrs).toEqual(["10.0.2.0/24"]);
  });

  test("the first upsert after a restart removes an earlier run's prefixes for that node IP", () => {
    const { ipcache, nodes } = setUp("tunnel");
    ipcache.upsertIpcache("10.0.9.0/24", 2, { tunnelEndpoint: "192.168.0.2" }); // left by the previous agent
    ipcache.upsertIpcache("10.0.8.0/24", 2, { tunnelEndpoint: "192.168.0.9" }); // another node's
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    expect(ipcache.dump()).toEqual(["10.0.2.0/24 2 -> 192.168.0.2", "10.0.8.0/24 2 -> 192.168.0.9", "192.168.0.2/32 6"]);
  });

  test("bad input is refused with the problem named, before anything is written", () => {
    const { ipcache, nodes } = setUp("tunnel");
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    const before = ipcache.dump();
    const bad: [unknown, RegExp][] = [
      [{ name: "", ipv4: "192.168.0.3", podCidrs: [] }, /name must be a non-empty string/],
      [{ name: "c", ipv4: "192.168.0", podCidrs: [] }, /not an IPv4 address/],
      [{ name: "c", ipv4: "192.168.0.1", podCidrs: [] }, /address of this node/],
      [{ name: "c", ipv4: "192.168.0.2", podCidrs: [] }, /already belongs to node b/],
      [{ name: "c", ipv4: "192.168.0.3", podCidrs: "10.0.3.0/24" }, /podCidrs must be an array/],
      [{ name: "c", ipv4: "192.168.0.3", podCidrs: ["10.0.3.0/33"] }, /pod CIDR "10.0.3.0\/33"/],
      [{ name: "c", ipv4: "192.168.0.3", podCidrs: ["10.0.0.0/16"] }, /overlaps this node's pod CIDR 10.0.1.0\/24/],
      [{ name: "c", ipv4: "192.168.0.3", podCidrs: ["10.0.2.128/25"] }, /overlaps 10.0.2.0\/24 of node b/],
    ];
    for (const [input, problem] of bad) expect(() => nodes.upsert(input as never)).toThrow(problem);
    expect(ipcache.dump()).toEqual(before);
  });
});

describe("native mode", () => {
  test("auto-direct-node-routes: pod CIDRs routed via the node IP with our protocol; no tunnel entries", () => {
    const { ipcache, table, nodes } = setUp("native");
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    expect(table.dump()).toEqual(["10.0.2.0/24 via 192.168.0.2"]);
    expect(table.routes.get("10.0.2.0/24")!.protocol).toBe(NODE_ROUTE_PROTOCOL);
    expect(ipcache.dump()).toEqual(["192.168.0.2/32 6"]);
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.3.0/24"] });
    expect(table.dump()).toEqual(["10.0.3.0/24 via 192.168.0.2"]);
    nodes.delete("b");
    expect(table.dump()).toEqual([]);
    expect(ipcache.dump()).toEqual([]);
  });

  test("without auto-direct-node-routes only the node's identity is programmed", () => {
    const { ipcache, table, nodes } = setUp("native", false);
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    expect(table.dump()).toEqual([]);
    expect(ipcache.dump()).toEqual(["192.168.0.2/32 6"]);
  });

  test("a node IP not on a shared network: the error says so and nothing stays", () => {
    const { ipcache, table, nodes } = setUp("native");
    table.unreachable.add("172.16.0.2");
    expect(() => nodes.upsert({ name: "far", ipv4: "172.16.0.2", podCidrs: ["10.0.2.0/24"] })).toThrow(/route 10.0.2.0\/24 via 172.16.0.2: .*directly attached/);
    expect(ipcache.dump()).toEqual([]);
    expect(table.dump()).toEqual([]);
    expect(nodes.list()).toEqual([]);
  });

  test("the first upsert after a restart removes our earlier routes via that node IP, not others'", () => {
    const { table, nodes } = setUp("native");
    table.routes.set("10.0.9.0/24", { via: "192.168.0.2", protocol: NODE_ROUTE_PROTOCOL });
    table.routes.set("10.0.7.0/24", { via: "192.168.0.2", protocol: 3 }); // the operator's own
    nodes.upsert({ name: "b", ipv4: "192.168.0.2", podCidrs: ["10.0.2.0/24"] });
    expect(table.dump()).toEqual(["10.0.2.0/24 via 192.168.0.2", "10.0.7.0/24 via 192.168.0.2"]);
  });
});
