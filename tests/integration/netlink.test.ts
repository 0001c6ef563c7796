/**
 * rtnetlink against the real kernel, entirely inside throwaway namespaces: every link, address,
 * route and neighbour below lives in PREFIX-a / PREFIX-b / PREFIX-c, which afterAll removes.
 * Each effect is checked twice: through our own listing and independently through `ip -j`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { SyscallError } from "../../src/datapath/errors.ts";
import { NLM_F_REQUEST, RTM_GETLINK } from "../../src/datapath/netlink/constants.ts";
import { type Link, Netlink } from "../../src/datapath/netlink/index.ts";
import { getLink } from "../../src/datapath/netlink/link.ts";
import { MessageBuilder, Struct } from "../../src/datapath/netlink/message.ts";
import { NetlinkSocket } from "../../src/datapath/netlink/socket.ts";
import { Netns } from "../../src/datapath/netns.ts";
import {
  execInNetns,
  ipJson,
  netnsPath,
  run,
  spawnInNetns,
  TestNamespaces,
  uniquePrefix,
  waitFor,
} from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const P = uniquePrefix("tnl");
const A0 = `${P}-a0`; // veth end in namespace a
const B0 = `${P}-b0`; // its peer, created directly in namespace b
const IP_A = "10.231.0.1";
const IP_B = "10.231.0.2";

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  operstate: string;
  link_netnsid?: number;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; scope: string; address?: string }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  flags: string[];
  metric?: number;
  prefsrc?: string;
  metrics?: { mtu?: number }[];
  table?: string;
}
interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state: string[];
}

describePrivileged("netlink: rtnetlink over FFI inside throwaway namespaces", () => {
  const spaces = new TestNamespaces(P);
  let nsA = "";
  let nsB = "";
  let nsC = "";
  let netnsB: Netns;
  let netnsC: Netns;
  let nlA: Netlink;
  let nlB: Netlink;
  let veth: Link;

  beforeAll(() => {
    nsA = spaces.create("a");
    nsB = spaces.create("b");
    nsC = spaces.create("c");
    netnsB = Netns.open(netnsPath(nsB));
    netnsC = Netns.open(netnsPath(nsC));
    nlA = Netlink.open({ netns: netnsPath(nsA) }); // by path
    nlB = Netlink.open({ netns: netnsB }); // by handle

    veth = nlA.createVeth({ name: A0, peerName: B0, peerNetns: netnsB, mtu: 1450, peerMac: "02:00:0a:e7:00:02" });
    nlA.addAddress(A0, `${IP_A}/24`);
    nlB.addAddress(B0, `${IP_B}/24`);
    nlA.setLinkUp(veth);
    nlB.setLinkUp(B0);
    nlA.setLinkUp("lo");
    nlB.setLinkUp("lo");
  });

  afterAll(() => {
    // Sockets and handles pin their namespaces: close them before removing the namespaces.
    for (const closable of [nlA, nlB, netnsB, netnsC]) closable?.close();
    spaces.removeAll();
  });

  test("a veth joins two namespaces, addressed and up: our listing agrees with ip", () => {
    expect(veth).toMatchObject({ name: A0, kind: "veth", mtu: 1450 });
    expect(veth.parentIndex).toBeGreaterThan(0);
    expect(veth.linkNetnsId).toBeGreaterThanOrEqual(0); // the peer lives in another namespace

    const ours = nlA.link(A0)!;
    expect(ours.up).toBe(true);
    const peer = nlB.link(B0)!;
    expect(peer).toMatchObject({ kind: "veth", mtu: 1450, mac: "02:00:0a:e7:00:02", up: true });
    expect(peer.index).toBe(veth.parentIndex!);
    expect(nlB.link(peer.index)!.name).toBe(B0);
    expect(nlA.links().map((link) => link.name).sort()).toEqual([A0, "lo"].sort());
    expect(nlA.addresses({ link: A0 }).filter((a) => a.family === 4)).toEqual([
      expect.objectContaining({ address: IP_A, prefixLength: 24, cidr: `${IP_A}/24`, scope: "universe", linkIndex: veth.index }),
    ]);

    const [ipA] = ipJson<IpLink[]>(["-d", "link", "show", A0], nsA);
    expect(ipA).toMatchObject({ ifindex: veth.index, mtu: 1450, address: ours.mac, linkinfo: { info_kind: "veth" } });
    expect(ipA!.flags).toContain("UP");
    const [ipB] = ipJson<IpLink[]>(["link", "show", B0], nsB);
    expect(ipB).toMatchObject({ ifindex: peer.index, address: "02:00:0a:e7:00:02" });
    const [addrB] = ipJson<IpAddr[]>(["-4", "addr", "show", B0], nsB);
    expect(addrB!.addr_info).toEqual([expect.objectContaining({ local: IP_B, prefixlen: 24, scope: "global" })]);
    // Nothing leaked into namespace c or the test runner's own namespace.
    expect(ipJson<IpLink[]>(["link"], nsC).map((link) => link.ifname)).toEqual(["lo"]);
    expect(run(["ip", "-o", "link"]).stdout).not.toContain(P);
  });

  test("real TCP traffic crosses the veth", async () => {
    await expectTcp(nsB, IP_B, 7101, nsA, "hello over our veth\n");
  });

  test("routes: via, onlink, scope link, a non-main table, src/mtu/metric, replace, delete", () => {
    nlA.addRoute({ dst: "10.232.0.0/24", via: IP_B });
    nlA.addRoute({ dst: "10.233.0.0/24", via: "192.0.2.1", dev: A0, onlink: true });
    nlA.addRoute({ dst: "10.234.0.0/24", dev: A0, scope: "link" });
    nlA.addRoute({ dst: "10.235.0.0/24", via: IP_B, src: IP_A, mtu: 1300, metric: 50 });
    nlA.addRoute({ dst: "default", via: IP_B, table: 100 });
    nlA.addRoute({ dst: "10.236.0.0/24", dev: A0, table: 1000 }); // > 255: only RTA_TABLE can say it

    const main = nlA.routes();
    expect(main.find((r) => r.dst === "10.232.0.0/24")).toMatchObject({ via: IP_B, dev: veth.index, scope: "universe", table: 254 });
    expect(main.find((r) => r.dst === "10.233.0.0/24")).toMatchObject({ via: "192.0.2.1", onlink: true });
    expect(main.find((r) => r.dst === "10.234.0.0/24")).toMatchObject({ scope: "link", dev: veth.index });
    expect(main.find((r) => r.dst === "10.235.0.0/24")).toMatchObject({ src: IP_A, mtu: 1300, metric: 50 });
    expect(main.some((r) => r.dst === "default")).toBe(false);
    expect(nlA.routes({ table: 100 })).toEqual([expect.objectContaining({ dst: "default", via: IP_B, table: 100 })]);
    expect(nlA.routes({ table: 1000 })).toEqual([expect.objectContaining({ dst: "10.236.0.0/24", table: 1000 })]);
    expect(nlA.routes({ table: 4242 })).toEqual([]);
    expect(nlA.routes({ table: "all", link: A0 }).length).toBeGreaterThanOrEqual(7);

    const ip = (dst: string, table = "main") => ipJson<IpRoute[]>(["route", "show", "table", table, dst], nsA)[0];
    expect(ip("10.232.0.0/24")).toMatchObject({ gateway: IP_B, dev: A0 });
    expect(ip("10.233.0.0/24")!.flags).toContain("onlink");
    expect(ip("10.234.0.0/24")).toMatchObject({ dev: A0, scope: "link" });
    expect(ip("10.235.0.0/24")).toMatchObject({ prefsrc: IP_A, metric: 50, metrics: [{ mtu: 1300 }] });
    expect(ip("default", "100")).toMatchObject({ gateway: IP_B, dev: A0 });
    expect(ip("10.236.0.0/24", "1000")).toMatchObject({ dev: A0 });

    nlA.replaceRoute({ dst: "10.232.0.0/24", dev: A0, scope: "link" });
    expect(ip("10.232.0.0/24")).toEqual(expect.not.objectContaining({ gateway: IP_B }));
    nlA.replaceRoute({ dst: "10.232.0.0/24", via: IP_B });
    expect(ip("10.232.0.0/24")).toMatchObject({ gateway: IP_B });

    for (const dst of ["10.232.0.0/24", "10.233.0.0/24", "10.234.0.0/24", "10.235.0.0/24"]) nlA.deleteRoute({ dst });
    nlA.deleteRoute({ dst: "default", table: 100 });
    nlA.deleteRoute({ dst: "10.236.0.0/24", table: 1000 });
    const left = ipJson<IpRoute[]>(["-4", "route", "show", "table", "all", "dev", A0], nsA).filter((r) => r.table !== "local");
    expect(left.map((r) => r.dst)).toEqual(["10.231.0.0/24"]);
    expect(nlA.routes({ table: "all", link: A0, family: 4 }).filter((r) => r.table !== 255).map((r) => r.dst)).toEqual(["10.231.0.0/24"]);
    expect(() => nlA.deleteRoute({ dst: "10.232.0.0/24" })).toThrow(/^delete route 10\.232\.0\.0\/24: ESRCH/);
  });

  test("traffic follows a route we added (to an address behind the peer)", async () => {
    nlB.addAddress("lo", "10.240.0.1/32");
    nlA.addRoute({ dst: "10.240.0.0/24", via: IP_B });
    try {
      await expectTcp(nsB, "10.240.0.1", 7102, nsA, "routed\n");
    } finally {
      nlA.deleteRoute({ dst: "10.240.0.0/24", via: IP_B });
      nlB.deleteAddress("lo", "10.240.0.1/32");
    }
    expect(nlB.addresses({ link: "lo" }).map((a) => a.address)).not.toContain("10.240.0.1");
  });

  test("neighbours: a permanent entry is visible to ip neigh, replaced, then deleted", () => {
    nlA.addNeighbour({ dev: A0, ip: "10.231.0.9", mac: "02:00:00:00:00:09", permanent: true });
    expect(nlA.neighbours({ link: A0 }).find((n) => n.ip === "10.231.0.9")).toMatchObject({
      family: 4,
      mac: "02:00:00:00:00:09",
      state: "permanent",
      permanent: true,
      linkIndex: veth.index,
    });
    const show = () => ipJson<IpNeigh[]>(["neigh", "show", "dev", A0, "to", "10.231.0.9"], nsA);
    expect(show()).toEqual([expect.objectContaining({ dst: "10.231.0.9", lladdr: "02:00:00:00:00:09", state: ["PERMANENT"] })]);
    expect(() => nlA.addNeighbour({ dev: A0, ip: "10.231.0.9", mac: "02:00:00:00:00:10" })).toThrow(/EEXIST/);
    nlA.replaceNeighbour({ dev: A0, ip: "10.231.0.9", mac: "02:00:00:00:00:10", permanent: true });
    expect(show()[0]!.lladdr).toBe("02:00:00:00:00:10");
    nlA.deleteNeighbour({ dev: A0, ip: "10.231.0.9" });
    expect(show()).toEqual([]);
    expect(nlA.neighbours({ link: A0 }).some((n) => n.ip === "10.231.0.9")).toBe(false);
  });

  test("a collect-metadata vxlan device shows as external to ip -d", () => {
    const name = `${P}-vx`;
    const vxlan = nlA.createVxlan({ name, external: true, port: 8472, learning: false, mtu: 1400 });
    expect(vxlan).toMatchObject({ kind: "vxlan", mtu: 1400, vxlan: { external: true, port: 8472, learning: false } });
    const [ip] = ipJson<IpLink[]>(["-d", "link", "show", name], nsA);
    expect(ip!.linkinfo).toMatchObject({ info_kind: "vxlan", info_data: { external: true, port: 8472, learning: false } });
    nlA.deleteLink(name);
    expect(nlA.link(name)).toBeUndefined();
  });

  test("a classic vxlan with vni, local address and underlay device", () => {
    const name = `${P}-vx42`;
    const vxlan = nlA.createVxlan({ name, vni: 42, local: IP_A, dev: A0, port: 4789 });
    expect(vxlan.vxlan).toMatchObject({ external: false, vni: 42, local: IP_A, dev: veth.index, port: 4789, learning: true });
    const [ip] = ipJson<IpLink[]>(["-d", "link", "show", name], nsA);
    expect(ip!.linkinfo!.info_data).toMatchObject({ id: 42, local: IP_A, link: A0, port: 4789 });
    nlA.deleteLink(vxlan);
  });

  test("set mtu, mac, name, down; move to another namespace; delete", () => {
    const [x, y, renamed] = [`${P}-x`, `${P}-y`, `${P}-xr`];
    const link = nlA.createVeth({ name: x, peerName: y });
    nlA.setMtu(x, 1280);
    nlA.setMac(link, "02:00:00:00:01:01");
    nlA.setLinkUp(x);
    nlA.setName(x, renamed);
    expect(nlA.link(link.index)).toMatchObject({ name: renamed, mtu: 1280, mac: "02:00:00:00:01:01", up: true });
    expect(nlA.link(x)).toBeUndefined();
    const [ip] = ipJson<IpLink[]>(["link", "show", renamed], nsA);
    expect(ip).toMatchObject({ mtu: 1280, address: "02:00:00:00:01:01" });
    expect(ip!.flags).toContain("UP");

    nlA.setLinkDown(renamed);
    expect(nlA.link(renamed)!.up).toBe(false);
    expect(ipJson<IpLink[]>(["link", "show", renamed], nsA)[0]!.flags).not.toContain("UP");

    nlA.setNetns(renamed, netnsC);
    expect(nlA.link(renamed)).toBeUndefined();
    expect(ipJson<IpLink[]>(["link"], nsC).map((l) => l.ifname)).toContain(renamed);
    const nlC = Netlink.open({ netns: netnsC });
    try {
      expect(nlC.link(renamed)).toMatchObject({ mtu: 1280, mac: "02:00:00:00:01:01" });
      nlC.deleteLink(renamed);
      expect(nlC.link(renamed)).toBeUndefined();
    } finally {
      nlC.close();
    }
    expect(nlA.link(y)).toBeUndefined(); // deleting one end of a veth removes both
    expect(ipJson<IpLink[]>(["link"], nsC).map((l) => l.ifname)).toEqual(["lo"]);
  });

  test("IPv6 addresses and routes", () => {
    nlA.addAddress(A0, "fd00:e7::1/64", { noDad: true });
    nlB.addAddress(B0, "fd00:e7::2/64", { noDad: true });
    expect(nlA.addresses({ link: A0 }).find((a) => a.family === 6 && a.scope === "universe")).toMatchObject({
      address: "fd00:e7::1",
      prefixLength: 64,
    });
    const [ip] = ipJson<IpAddr[]>(["-6", "addr", "show", A0, "scope", "global"], nsA);
    expect(ip!.addr_info).toContainEqual(expect.objectContaining({ local: "fd00:e7::1", prefixlen: 64, scope: "global" }));
    nlA.addRoute({ dst: "fd00:e8::/64", via: "fd00:e7::2" });
    expect(nlA.routes({ family: 6 }).find((r) => r.dst === "fd00:e8::/64")).toMatchObject({ via: "fd00:e7::2", dev: veth.index });
    expect(ipJson<IpRoute[]>(["-6", "route", "show", "fd00:e8::/64"], nsA)[0]).toMatchObject({ gateway: "fd00:e7::2" });
    nlA.deleteRoute({ dst: "fd00:e8::/64" });
    nlA.deleteAddress(A0, "fd00:e7::1/64");
    expect(nlA.addresses({ link: A0 }).some((a) => a.address === "fd00:e7::1")).toBe(false);
  });

  test("addresses with a peer and without a prefix route", () => {
    nlA.addAddress(A0, "10.241.0.1/32", { peer: "10.241.0.2" });
    nlA.addAddress(A0, "10.242.0.1/24", { noPrefixRoute: true });
    expect(nlA.addresses({ link: A0 }).find((a) => a.address === "10.241.0.1")).toMatchObject({ peer: "10.241.0.2" });
    const [ip] = ipJson<IpAddr[]>(["-4", "addr", "show", A0], nsA);
    expect(ip!.addr_info).toContainEqual(expect.objectContaining({ local: "10.241.0.1", address: "10.241.0.2" }));
    expect(nlA.routes().some((r) => r.dst === "10.242.0.0/24")).toBe(false);
    nlA.deleteAddress(A0, "10.241.0.1/32");
    nlA.deleteAddress(A0, "10.242.0.1/24");
    expect(nlA.addresses({ link: A0 }).filter((a) => a.family === 4).map((a) => a.cidr)).toEqual([`${IP_A}/24`]);
  });

  test("errors name the operation and the object, with errno and the kernel's extended ack", () => {
    const duplicate = catchError(() => nlA.createVeth({ name: A0, peerName: `${P}-dup` }));
    expect(duplicate).toBeInstanceOf(SyscallError);
    expect(duplicate).toMatchObject({ code: "EEXIST", message: `create veth ${A0}/${P}-dup: EEXIST (file exists)` });

    const missing = catchError(() => nlA.deleteLink(`${P}-nope`));
    expect(missing).toMatchObject({ code: "ENODEV", message: `delete link ${P}-nope: ENODEV (no such device)` });
    expect(catchError(() => nlA.addAddress(`${P}-nope`, "10.0.0.1/24"))).toMatchObject({ code: "ENODEV" });
    expect(catchError(() => nlA.setLinkUp(`${P}-nope`)).message).toStartWith(`set link ${P}-nope up: ENODEV`);
    expect(nlA.link(`${P}-nope`)).toBeUndefined();

    // The kernel explains these in an extended ack, which must reach the message.
    const unreachable = catchError(() => nlA.addRoute({ dst: "10.243.0.0/24", via: "192.0.2.1" }));
    expect(unreachable).toMatchObject({ code: "ENETUNREACH" });
    expect(unreachable.message).toMatch(/^add route 10\.243\.0\.0\/24 via 192\.0\.2\.1: ENETUNREACH \(network is unreachable\): \S+/);
    const tooBig = catchError(() => nlA.setMtu(A0, 1_000_000));
    expect(tooBig.message).toMatch(new RegExp(`^set link ${A0} mtu 1000000: EINVAL \\(invalid argument\\): .*mtu`));

    expect(() => nlA.createVeth({ name: "a-name-much-too-long", peerName: "p" })).toThrow(TypeError);
    expect(() => nlA.addAddress(A0, "10.0.0.300/24")).toThrow(/invalid IP address/);
  });

  test("a batch runs every step in one datagram; the first failure is thrown, later steps still ran", async () => {
    const nlC = Netlink.open({ netns: netnsC });
    const [C0, C1] = [`${P}-c0`, `${P}-c1`];
    try {
      nlC.createVeth({ name: C0, peerName: C1 });
      const c0 = nlC.link(C0)!.index;
      const c1 = nlC.link(C1)!.index;
      nlC.batch((batch) =>
        batch
          .setAddrGenMode(c0, "none")
          .addAddress(c0, "10.232.0.1/32")
          .setLinkUp(c0)
          .setLinkUp(C1)
          .addRoute({ dst: "10.232.1.0/24", dev: c0, scope: "link" }),
      );
      const [link] = ipJson<(IpLink & { inet6_addr_gen_mode?: string })[]>(["-d", "link", "show", C0], nsC);
      expect(link!.flags).toContain("UP");
      expect(link!.inet6_addr_gen_mode).toBe("none");
      const [addresses] = ipJson<IpAddr[]>(["addr", "show", C0], nsC);
      expect(addresses!.addr_info.map((a) => `${a.family} ${a.local}`)).toEqual(["inet 10.232.0.1"]);
      // The control: the peer, left to the default mode, gets its link-local address once it has carrier.
      await waitFor(`an IPv6 link-local address on ${C1}`, () => ipJson<IpAddr[]>(["-6", "addr", "show", C1], nsC)[0]?.addr_info.length === 1);
      expect(ipJson<IpAddr[]>(["-6", "addr", "show", C0], nsC)).toEqual([]);
      expect(ipJson<IpRoute[]>(["route", "show", "10.232.1.0/24"], nsC)).toEqual([expect.objectContaining({ dev: C0, scope: "link" })]);

      const failure = catchError(() =>
        nlC.batch((batch) =>
          batch
            .addAddress(c0, "10.232.0.1/32")
            .addRoute({ dst: "10.232.2.0/24", dev: c0, scope: "link" })
            .addRoute({ dst: "10.232.1.0/24", dev: c1, scope: "link" }),
        ),
      );
      expect(failure).toBeInstanceOf(SyscallError);
      expect(failure.message).toStartWith(`add address 10.232.0.1/32 to ifindex ${c0}: EEXIST`);
      expect(ipJson<IpRoute[]>(["route", "show", "10.232.2.0/24"], nsC)).toEqual([expect.objectContaining({ dev: C0 })]);
      expect(ipJson<IpRoute[]>(["route", "show", "10.232.1.0/24"], nsC)).toEqual([expect.objectContaining({ dev: C0 })]);
    } finally {
      nlC.close();
      execInNetns(nsC, ["ip", "link", "del", C0]);
    }
  });

  test("a receive that gets no reply times out instead of hanging", () => {
    const socket = NetlinkSocket.open({ timeoutMs: 100 });
    try {
      const started = performance.now();
      expect(() => socket["receive"]("wait for nothing", (seq: number) => seq === 1)).toThrow(
        "wait for nothing: ETIMEDOUT (connection timed out): no reply from the kernel within 100 ms",
      );
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      socket.close();
    }
  });

  test("the reply to an abandoned request is skipped by its sequence number", () => {
    const netnsA = Netns.open(netnsPath(nsA));
    const socket = netnsA.run(() => NetlinkSocket.open());
    try {
      // Ask for A0 and never read the answer: the next request, for lo, must not receive it.
      const abandoned = new MessageBuilder(RTM_GETLINK, 0).struct(new Struct(16).setS32(4, veth.index).bytes);
      socket["send"]("abandoned get", abandoned, NLM_F_REQUEST);
      expect(getLink(socket, "lo")!.name).toBe("lo");
      expect(getLink(socket, veth.index)!.name).toBe(A0);
    } finally {
      socket.close();
      netnsA.close();
    }
  });

  test("a handle keeps acting on its own namespace, and fails cleanly once closed", () => {
    const handle = Netlink.open({ netns: netnsB });
    expect(handle.link(B0)).toBeDefined();
    expect(handle.link(A0)).toBeUndefined();
    handle.close();
    expect(() => handle.links()).toThrow(/closed/);
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

/** Listens with nc in `serverNs`, connects from `clientNs`, and checks the bytes arrived. */
async function expectTcp(serverNs: string, address: string, port: number, clientNs: string, message: string): Promise<void> {
  const server = spawnInNetns(serverNs, ["timeout", "10", "nc", "-l", address, String(port)]);
  try {
    await waitFor(`nc listening on ${address}:${port}`, () =>
      execInNetns(serverNs, ["ss", "-Hltn", `sport = :${port}`]).stdout.includes(`${address}:${port}`),
    );
    execInNetns(clientNs, ["nc", "-N", "-w", "5", address, String(port)], { stdin: message });
    expect(await server.exited).toBe(0);
    expect(await new Response(server.stdout).text()).toBe(message);
  } finally {
    server.kill();
  }
}
