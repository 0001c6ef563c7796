/**
 * Identity-based L3/L4 policy in the real datapath.
 *
 * 1. Verdicts of the compiled programs: cil_from_container (egress) and cil_from_host (ingress)
 *    run with BPF_PROG_TEST_RUN on crafted packets against random policies, and must answer as
 *    the model in src/datapath/maps/policy.ts does (unit-tested case by case), drop reason included.
 * 2. Real traffic: a node namespace with three pods (identities 1000, 1001, 1002 given by hand),
 *    TCP/UDP echo servers and ping, through NodeDatapath.setEndpointPolicy and the ipcache.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { BpfMap, BpfObject, bytes, RingBufferReader, testRun, type BpfProgram } from "../../src/datapath/bpf/index.ts";
import { EndpointFlags, EndpointInfo, EndpointKey, ENDPOINTS_MAP } from "../../src/datapath/maps/endpoints.ts";
import { MetricsDirection, MetricsKey, METRICS_MAP, metricsValuePerCpu } from "../../src/datapath/maps/metrics.ts";
import {
  normalizePolicyRules,
  policyKeyWithin,
  policyVerdict,
  portRangeToPrefixes,
  type PolicyQuery,
  type PolicyRule,
} from "../../src/datapath/maps/policy.ts";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { NodeDatapath, PolicyMapFullError, type EndpointAttachment, type NodeDatapathConfig } from "../../src/datapath/node.ts";
import { readObject } from "../../src/datapath/objects.ts";
import { mapPinRoot, pinnedMapPath } from "../../src/datapath/pinned.ts";
import { writeSysctl } from "../../src/datapath/sysctl.ts";
import { TestNamespaces, uniquePrefix, waitFor } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { startEchoServer, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tpol");
const octet = process.pid % 200;
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const SCTP = 132;
const GRE = 47;
const HOST = 1;
const WORLD = 2;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

type Metrics = BpfMap<{ reason: number; dir: number }, { packets: bigint; bytes: bigint }[]>;

function openMetrics(bpfRoot: string): Metrics {
  return BpfMap.openPinned(pinnedMapPath(bpfRoot, METRICS_MAP), MetricsKey, metricsValuePerCpu());
}

function dropCount(metrics: Metrics, reason: number, direction: "ingress" | "egress"): number {
  const perCpu = metrics.lookup({ reason, dir: MetricsDirection[direction] }) ?? [];
  return Number(perCpu.reduce((sum, v) => sum + v.packets, 0n));
}

/* ------------------------------------------------------------------------------------------ */

describePrivileged("policy verdicts of the compiled programs (BPF_PROG_TEST_RUN)", () => {
  const namespaces = new TestNamespaces(`${prefix}v`);
  const bpfRoot = `/sys/fs/bpf/${prefix}v`;
  const podCidr = `10.203.${octet}.0/24`;
  const local = `10.203.${octet}.10`;
  const EP = 300;
  /**
   * Remote addresses by identity (as the ipcache gives it), one for ingress and one for egress
   * queries: packets without ports are tracked by addresses alone, and an allowed ingress packet
   * would make the egress packets of the same address pair conntrack replies, which bypass policy.
   */
  const remotes: Record<"ingress" | "egress", Record<number, string>> = {
    ingress: { 1000: `10.203.${octet}.20`, 1001: `10.203.${octet}.21`, 1002: "10.77.3.4", [HOST]: `10.203.${octet}.1`, [WORLD]: "192.0.2.7" },
    egress: { 1000: `10.203.${octet}.30`, 1001: `10.203.${octet}.31`, 1002: "10.77.9.9", [HOST]: "10.99.0.1", [WORLD]: "198.51.100.7" },
  };
  let netns: Netns;
  let datapath: NodeDatapath | undefined;
  let lxc: BpfObject | undefined;
  let host: BpfObject | undefined;
  let metrics: Metrics | undefined;

  beforeAll(() => {
    netns = Netns.open(Netns.pathOf(namespaces.create("node")));
    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: false, netns });
    // A fixture endpoint "behind" lo: a test run without a context comes in on the loopback device.
    const endpoints = BpfMap.openPinned(pinnedMapPath(bpfRoot, ENDPOINTS_MAP), EndpointKey, EndpointInfo);
    endpoints.update({ ip4: local }, { ifindex: 1, lxcId: EP, flags: 0, mac: "02:00:00:00:01:0a", nodeMac: "02:00:00:00:01:01", secIdentity: 3000 });
    endpoints.close();
    // Written behind the datapath's back: it adopts the maps' entries when it starts (as after an agent restart).
    datapath.close();
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: false, netns });
    for (const direction of ["ingress", "egress"] as const) {
      datapath.upsertIpcache(`${remotes[direction][1000]}/32`, 1000);
      datapath.upsertIpcache(remotes[direction][1001]!, 1001);
      datapath.upsertIpcache(remotes[direction][HOST]!, HOST);
    }
    datapath.upsertIpcache("10.77.0.0/16", 1002);
    // Programs of our own over the same pinned maps, to run them on crafted packets.
    lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot: mapPinRoot(bpfRoot) });
    lxc.load();
    host = BpfObject.open(readObject("bpf_host"), { name: "bpf_host", pinRoot: mapPinRoot(bpfRoot) });
    host.load();
    metrics = openMetrics(bpfRoot);
  });

  afterAll(() => {
    metrics?.close();
    lxc?.close();
    host?.close();
    datapath?.close();
    netns?.close();
    namespaces.removeAll();
    rmSync(bpfRoot, { recursive: true, force: true });
  });

  let sourcePort = 20000;

  /** Ethernet + IPv4 + an L4 header for one query; a later fragment when `fragment`. */
  function packet(saddr: string, daddr: string, protocol: number, port: number, fragment = false): Uint8Array {
    const l4 = protocol === TCP || protocol === SCTP ? 20 : 8;
    const data = new Uint8Array(14 + 20 + l4);
    const view = new DataView(data.buffer);
    data.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
    view.setUint16(12, 0x0800);
    view.setUint8(14, 0x45);
    view.setUint16(16, 20 + l4);
    if (fragment) view.setUint16(20, 100); // offset 800 bytes: no L4 header
    view.setUint8(22, 64);
    view.setUint8(23, protocol);
    data.set(saddr.split(".").map(Number), 26);
    data.set(daddr.split(".").map(Number), 30);
    const sport = sourcePort++;
    if (protocol === ICMP) {
      view.setUint8(34, port); // type
      view.setUint16(38, sport); // echo id
    } else if (protocol !== GRE) {
      view.setUint16(34, sport);
      view.setUint16(36, port);
      if (protocol === TCP) {
        view.setUint8(46, 0x50);
        view.setUint8(47, 0x02); // SYN
      }
    }
    return data;
  }

  /** The verdict of the real program: 0 allowed, else the drop reason it counted. */
  function runQuery(program: BpfProgram, direction: "ingress" | "egress", q: PolicyQuery & { fragment: boolean; wirePort: number }): number {
    const remote = remotes[direction][q.identity]!;
    const data = direction === "egress" ? packet(local, remote, q.protocol, q.wirePort, q.fragment) : packet(remote, local, q.protocol, q.wirePort, q.fragment);
    const before = [dropCount(metrics!, 133, direction), dropCount(metrics!, 181, direction)];
    const { retval } = testRun(program, { data });
    const after = [dropCount(metrics!, 133, direction), dropCount(metrics!, 181, direction)];
    if (retval === TC_ACT_SHOT) {
      if (after[0]! > before[0]!) return 133;
      if (after[1]! > before[1]!) return 181;
      return -1; // dropped for another reason
    }
    expect(retval).toBe(direction === "egress" ? TC_ACT_OK : TC_ACT_REDIRECT);
    return 0;
  }

  const queries: (PolicyQuery & { fragment: boolean; wirePort: number })[] = [];
  for (const direction of ["ingress", "egress"] as const) {
    for (const identity of [1000, 1001, 1002, HOST, WORLD]) {
      for (const [protocol, wirePort, fragment] of [
        [TCP, 80, false],
        [TCP, 81, false],
        [TCP, 86, false],
        [TCP, 443, false],
        [UDP, 80, false],
        [UDP, 53, false],
        [SCTP, 80, false],
        [ICMP, 8, false],
        [ICMP, 13, false],
        [GRE, 0, false],
        [TCP, 80, true],
        [UDP, 53, true],
      ] as const) {
        const port = fragment || protocol === GRE ? undefined : wirePort;
        queries.push({ direction, identity, protocol, port, wirePort, fragment });
      }
    }
  }

  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  function randomRules(count: number): PolicyRule[] {
    const rules: PolicyRule[] = [];
    for (let i = 0; i < count; i++) {
      const protocol = pick([0, TCP, TCP, UDP, ICMP, SCTP, GRE]);
      const prefixLength = protocol === 0 ? 0 : pick([0, 13, 14, 15, 16, 16]);
      const mask = prefixLength === 0 ? 0 : (0xffff << (16 - prefixLength)) & 0xffff;
      const port = protocol === 0 ? 0 : pick([8, 13, 53, 80, 81, 86, 443]) & mask;
      rules.push({ direction: pick(["ingress", "egress"] as const), identity: pick([0, 0, 1000, 1001, 1002, HOST, WORLD]), protocol, port, prefixLength, deny: random() < 0.25 });
    }
    // Keep the control plane's guarantee: no allow inside a deny of the same identity.
    const denies = normalizePolicyRules(EP, rules).filter((e) => e.deny);
    return rules.filter((r) => r.deny || !denies.some((d) => policyKeyWithin(normalizePolicyRules(EP, [r])[0]!.key, d.key)));
  }

  test("hand-picked policies and random ones: the programs agree with the model on every query", () => {
    const policies: { ingress: boolean; egress: boolean; rules: PolicyRule[] }[] = [
      { ingress: false, egress: false, rules: [] },
      { ingress: true, egress: true, rules: [] },
      {
        ingress: true,
        egress: true,
        rules: [
          { direction: "ingress", identity: 1000, protocol: TCP, port: 80, prefixLength: 16, deny: false },
          { direction: "ingress", identity: 0, protocol: UDP, port: 0, prefixLength: 0, deny: false },
          { direction: "ingress", identity: 1001, protocol: 0, port: 0, prefixLength: 0, deny: false },
          { direction: "ingress", identity: 1001, protocol: TCP, port: 443, prefixLength: 16, deny: true },
          { direction: "ingress", identity: 0, protocol: ICMP, port: 8, prefixLength: 16, deny: false },
          { direction: "egress", identity: 0, protocol: 0, port: 0, prefixLength: 0, deny: false },
          { direction: "egress", identity: WORLD, protocol: TCP, port: 80, prefixLength: 13, deny: true },
          { direction: "egress", identity: 0, protocol: UDP, port: 53, prefixLength: 16, deny: true },
        ],
      },
    ];
    for (let i = 0; i < 10; i++) policies.push({ ingress: random() < 0.8, egress: random() < 0.8, rules: randomRules(3 + Math.floor(random() * 12)) });
    // Another endpoint's entries must never matter.
    datapath!.setEndpointPolicy(EP + 1, { ingressEnforced: true, egressEnforced: true, entries: randomRules(6) });

    const lxcProgram = lxc!.program("cil_from_container");
    const hostProgram = host!.program("cil_from_host");
    const mismatches: string[] = [];
    let checked = 0;
    netns.run(() => {
      for (const [index, policy] of policies.entries()) {
        datapath!.setEndpointPolicy(EP, { ingressEnforced: policy.ingress, egressEnforced: policy.egress, entries: policy.rules });
        const entries = normalizePolicyRules(EP, policy.rules);
        for (const q of queries) {
          const enforced = q.direction === "ingress" ? policy.ingress : policy.egress;
          const expected = policyVerdict(EP, entries, enforced, q);
          const actual = runQuery(q.direction === "ingress" ? hostProgram : lxcProgram, q.direction, q);
          checked++;
          if (actual !== expected) mismatches.push(`policy ${index} ${JSON.stringify(q)}: program ${actual}, model ${expected}`);
        }
      }
    });
    expect(mismatches).toEqual([]);
    expect(checked).toBe(policies.length * queries.length);
  });
});

/* ------------------------------------------------------------------------------------------ */

interface Pod {
  name: string;
  netns: string;
  ip: string;
  endpoint: EndpointAttachment;
}

describePrivileged("policy enforcement with real traffic", () => {
  const namespaces = new TestNamespaces(prefix);
  const bpfRoot = `/sys/fs/bpf/${prefix}`;
  const podCidr = `10.202.${octet}.0/24`;
  const gateway = `10.202.${octet}.1`;
  const servers: EchoServer[] = [];
  const children = new Set<ReturnType<typeof Bun.spawn>>();
  let node: Netns;
  let nodeNs: string;
  let datapath: NodeDatapath | undefined;
  let metrics: Metrics | undefined;
  let eventsMap: BpfMap<Uint8Array, Uint8Array> | undefined;
  let events: RingBufferReader | undefined;
  const drops: { reason: number; source: number; srcIdentity: number; dstIdentity: number; dstId: number; dir: number }[] = [];
  const pods: Pod[] = [];
  const config = (): NodeDatapathConfig => ({ bpfRoot, podCidr, mtu: 1500, masquerade: false, netns: node });

  function plumbPod(index: number, identity: number): Pod {
    const netns = namespaces.create(`p${index}`);
    const ip = `10.202.${octet}.${10 + index}`;
    const hostName = `${prefix}l${index}`;
    const podNetns = Netns.open(Netns.pathOf(netns));
    const hostLink = Netlink.open({ netns: node });
    const podLink = Netlink.open({ netns: podNetns });
    try {
      hostLink.createVeth({ name: hostName, peerName: `${prefix}t${index}`, peerNetns: podNetns });
      podLink.setName(`${prefix}t${index}`, "eth0");
      podLink.addAddress("eth0", `${ip}/32`);
      podLink.setLinkUp("lo");
      podLink.setLinkUp("eth0");
      podLink.addRoute({ dst: `${gateway}/32`, dev: "eth0", scope: "link" });
      podLink.addRoute({ dst: "default", via: gateway, dev: "eth0" });
      hostLink.setLinkUp(hostName);
      writeSysctl(`net/ipv4/conf/${hostName}/rp_filter`, "0", { netns: node });
      const veth = hostLink.link(hostName)!;
      const mac = podLink.link("eth0")!.mac!;
      return { name: `p${index}`, netns, ip, endpoint: { id: 200 + index, ipv4: ip, ifname: hostName, ifindex: veth.index, mac, identity } };
    } finally {
      hostLink.close();
      podLink.close();
      podNetns.close();
    }
  }

  const p = (i: number) => pods[i]!;

  beforeAll(async () => {
    nodeNs = namespaces.create("node");
    node = Netns.open(Netns.pathOf(nodeNs));
    const nodeLink = Netlink.open({ netns: node });
    nodeLink.setLinkUp("lo");
    nodeLink.close();
    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start(config());
    for (const [index, identity] of [1000, 1001, 1002].entries()) {
      const pod = plumbPod(index, identity);
      datapath.applyEndpoint(pod.endpoint);
      datapath.upsertIpcache(pod.ip, identity);
      pods.push(pod);
    }
    datapath.upsertIpcache(`${gateway}/32`, HOST);

    for (const [netns, protocol, port] of [
      [p(1).netns, "tcp", 7000],
      [p(1).netns, "udp", 7000],
      [p(1).netns, "tcp", 8000],
      [p(1).netns, "tcp", 8005],
      [p(1).netns, "tcp", 8006],
      [p(0).netns, "tcp", 7000],
      [p(2).netns, "tcp", 7000],
      [nodeNs, "tcp", 7000],
    ] as const) {
      servers.push(await startEchoServer(netns, protocol, port));
    }
    metrics = openMetrics(bpfRoot);
    eventsMap = BpfMap.openPinned(pinnedMapPath(bpfRoot, "cilium_events"), bytes(0), bytes(0));
    events = new RingBufferReader(
      eventsMap.fd,
      (record) => {
        const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
        if (record[0] !== 1) return; // drops only
        drops.push({
          reason: record[1]!,
          source: view.getUint16(2, true),
          srcIdentity: view.getUint32(16, true),
          dstIdentity: view.getUint32(20, true),
          dstId: view.getUint16(24, true),
          dir: record[27]! & 3,
        });
      },
      { pollIntervalMs: 50 },
    );
  });

  afterAll(() => {
    for (const child of children) child.kill();
    for (const server of servers) server.stop();
    events?.close();
    eventsMap?.close();
    metrics?.close();
    datapath?.close();
    node?.close();
    namespaces.removeAll();
    rmSync(bpfRoot, { recursive: true, force: true });
  });

  /* ---- traffic ---------------------------------------------------------------------------- */

  async function spawnAndWait(argv: string[], timeoutMs: number): Promise<{ code: number; stdout: string }> {
    const child = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    children.add(child);
    const timer = setTimeout(() => child.kill(), timeoutMs + 4000);
    try {
      const code = await child.exited;
      return { code, stdout: (await new Response(child.stdout).text()).trim() };
    } finally {
      clearTimeout(timer);
      children.delete(child);
    }
  }

  type Probe = [from: number | "host", what: "tcp" | "udp" | "ping", to: number, port?: number];

  /** Runs probes in parallel; answers "from→to what/port: allowed|denied" lines to compare. */
  async function reach(probes: Probe[], timeoutMs = 1000): Promise<string[]> {
    const helpers = join(import.meta.dir, "../helpers");
    return Promise.all(
      probes.map(async ([from, what, to, port]) => {
        const netns = from === "host" ? nodeNs : p(from).netns;
        const target = p(to).ip;
        const argv =
          what === "ping"
            ? ["ip", "netns", "exec", netns, "ping", "-n", "-c", "1", "-W", String(Math.ceil(timeoutMs / 1000)), target]
            : ["ip", "netns", "exec", netns, process.execPath, join(helpers, "probe.ts"), what, target, String(port), String(timeoutMs)];
        const { code } = await spawnAndWait(argv, timeoutMs);
        const label = `${from === "host" ? "host" : `p${from}`}→p${to} ${what}${port === undefined ? "" : `/${port}`}`;
        return `${label}: ${code === 0 ? "allowed" : "denied"}`;
      }),
    );
  }

  const expectation = (probes: Probe[], allowed: boolean[]) =>
    probes.map(([from, what, to, port], i) => `${from === "host" ? "host" : `p${from}`}→p${to} ${what}${port === undefined ? "" : `/${port}`}: ${allowed[i] ? "allowed" : "denied"}`);

  async function expectReach(cases: [...Probe, boolean][]): Promise<void> {
    const probes = cases.map((c) => c.slice(0, -1) as unknown as Probe);
    expect(await reach(probes)).toEqual(expectation(probes, cases.map((c) => c.at(-1) as boolean)));
  }

  const ingress = (r: Partial<PolicyRule>): PolicyRule => ({ direction: "ingress", identity: 1000, protocol: TCP, port: 7000, prefixLength: 16, deny: false, ...r });
  const egress = (r: Partial<PolicyRule>): PolicyRule => ({ ...ingress(r), direction: "egress" });
  const setIngress = (pod: number, entries: PolicyRule[]) =>
    datapath!.setEndpointPolicy(p(pod).endpoint.id, { ingressEnforced: true, egressEnforced: false, entries });
  const unenforce = (pod: number) => datapath!.setEndpointPolicy(p(pod).endpoint.id, { ingressEnforced: false, egressEnforced: false, entries: [] });

  async function drainEvents(): Promise<void> {
    await Bun.sleep(20);
    events!.consumeNow();
  }

  /* ---- cases ------------------------------------------------------------------------------ */

  test("the ipcache holds what the agent wrote", () => {
    expect(datapath!.listIpcache()).toEqual([
      { cidr: `${gateway}/32`, identity: HOST },
      { cidr: `${p(0).ip}/32`, identity: 1000 },
      { cidr: `${p(1).ip}/32`, identity: 1001 },
      { cidr: `${p(2).ip}/32`, identity: 1002 },
    ]);
  });

  test("no enforcement: everything flows", async () => {
    await expectReach([
      [0, "tcp", 1, 7000, true],
      [0, "udp", 1, 7000, true],
      [2, "tcp", 1, 8000, true],
      ["host", "tcp", 1, 7000, true],
      [0, "ping", 1, undefined, true],
      [1, "tcp", 0, 7000, true],
    ]);
  }, 20_000);

  test("ingress enforced without entries: default deny (133, counted and reported); the pod's own connections still work", async () => {
    setIngress(1, []);
    const before = dropCount(metrics!, 133, "ingress");
    drops.length = 0;
    await expectReach([
      [0, "tcp", 1, 7000, false],
      [0, "udp", 1, 7000, false],
      [2, "tcp", 1, 8000, false],
      ["host", "tcp", 1, 7000, false],
      [0, "ping", 1, undefined, false],
      // p1's egress is not enforced: it reaches out, and the answers pass by conntrack.
      [1, "tcp", 0, 7000, true],
      [1, "tcp", 2, 7000, true],
    ]);
    expect(dropCount(metrics!, 133, "ingress")).toBeGreaterThanOrEqual(before + 5);
    await drainEvents();
    const drop = drops.find((d) => d.reason === 133 && d.source === p(0).endpoint.id);
    expect(drop).toMatchObject({ srcIdentity: 1000, dstIdentity: 1001, dstId: p(1).endpoint.id, dir: 1 });
    expect(drops.some((d) => d.reason === 133 && d.srcIdentity === HOST && d.dstId === p(1).endpoint.id)).toBe(true);
  }, 20_000);

  test("allow by exact identity and TCP port", async () => {
    setIngress(1, [ingress({})]);
    await expectReach([
      [0, "tcp", 1, 7000, true],
      [0, "udp", 1, 7000, false],
      [0, "tcp", 1, 8000, false],
      [2, "tcp", 1, 7000, false],
      ["host", "tcp", 1, 7000, false],
    ]);
  }, 20_000);

  test("allow by any identity", async () => {
    setIngress(1, [ingress({ identity: 0 })]);
    await expectReach([
      [0, "tcp", 1, 7000, true],
      [2, "tcp", 1, 7000, true],
      ["host", "tcp", 1, 7000, true],
      [0, "udp", 1, 7000, false],
      [2, "tcp", 1, 8000, false],
    ]);
  }, 20_000);

  test("L3-only allow: any protocol and port from one identity", async () => {
    setIngress(1, [ingress({ identity: 1002, protocol: 0, port: 0 })]);
    await expectReach([
      [2, "tcp", 1, 7000, true],
      [2, "udp", 1, 7000, true],
      [2, "tcp", 1, 8006, true],
      [2, "ping", 1, undefined, true],
      [0, "tcp", 1, 7000, false],
      [0, "ping", 1, undefined, false],
    ]);
  }, 20_000);

  test("a port range through portRangeToPrefixes", async () => {
    const prefixes = portRangeToPrefixes(7999, 8005);
    expect(prefixes).toEqual([
      { port: 7999, prefixLength: 16 },
      { port: 8000, prefixLength: 14 },
      { port: 8004, prefixLength: 15 },
    ]);
    setIngress(1, prefixes.map(({ port, prefixLength }) => ingress({ port, prefixLength })));
    await expectReach([
      [0, "tcp", 1, 8000, true],
      [0, "tcp", 1, 8005, true],
      [0, "tcp", 1, 8006, false],
      [0, "tcp", 1, 7000, false],
    ]);
  }, 20_000);

  test("UDP and TCP on the same port are told apart", async () => {
    setIngress(1, [ingress({ protocol: UDP })]);
    await expectReach([
      [0, "udp", 1, 7000, true],
      [0, "tcp", 1, 7000, false],
    ]);
  }, 20_000);

  test("deny beats allow: identity deny over any-identity allow, any-identity deny over identity allow (181)", async () => {
    const before = dropCount(metrics!, 181, "ingress");
    setIngress(1, [ingress({ identity: 0, protocol: 0, port: 0 }), ingress({ identity: 1000, deny: true })]);
    await expectReach([
      [0, "tcp", 1, 7000, false],
      [0, "udp", 1, 7000, true],
      [0, "tcp", 1, 8000, true],
      [2, "tcp", 1, 7000, true],
    ]);
    const afterFirst = dropCount(metrics!, 181, "ingress");
    expect(afterFirst).toBeGreaterThan(before);

    setIngress(1, [ingress({ identity: 1000, protocol: 0, port: 0 }), ingress({ identity: 0, deny: true })]);
    drops.length = 0;
    await expectReach([
      [0, "tcp", 1, 7000, false],
      [0, "udp", 1, 7000, true],
      [0, "tcp", 1, 8000, true],
      [2, "tcp", 1, 8000, false], // not allowed at all: 133
    ]);
    expect(dropCount(metrics!, 181, "ingress")).toBeGreaterThan(afterFirst);
    await drainEvents();
    expect(drops.some((d) => d.reason === 181 && d.srcIdentity === 1000 && d.dstId === p(1).endpoint.id)).toBe(true);
    expect(drops.some((d) => d.reason === 133 && d.srcIdentity === 1002 && d.dstId === p(1).endpoint.id)).toBe(true);
  }, 20_000);

  test("egress enforcement at the source: destination identities from the endpoint map and the ipcache", async () => {
    unenforce(1);
    const before = dropCount(metrics!, 133, "egress");
    datapath!.setEndpointPolicy(p(0).endpoint.id, { ingressEnforced: false, egressEnforced: true, entries: [egress({ identity: 1001 })] });
    await expectReach([
      [0, "tcp", 1, 7000, true],
      [0, "udp", 1, 7000, false],
      [0, "tcp", 2, 7000, false],
      ["host", "tcp", 0, 7000, true], // towards p0: its ingress is open, its answers are replies
      [2, "tcp", 0, 7000, true],
    ]);
    expect(dropCount(metrics!, 133, "egress")).toBeGreaterThan(before);

    // The host is identity 1 through the ipcache entry of the gateway address.
    const probeHost = async () => (await spawnAndWait(["ip", "netns", "exec", p(0).netns, process.execPath, join(import.meta.dir, "../helpers/probe.ts"), "tcp", gateway, "7000", "1000"], 1000)).code === 0;
    expect(await probeHost()).toBe(false);
    datapath!.setEndpointPolicy(p(0).endpoint.id, { ingressEnforced: false, egressEnforced: true, entries: [egress({ identity: 1001 }), egress({ identity: HOST })] });
    expect(await probeHost()).toBe(true);
    unenforce(0);
  }, 20_000);

  test("host to pod with ingress enforced: identity 1 allowed or not; without its ipcache entry the host is world", async () => {
    setIngress(1, [ingress({ identity: 1000 })]);
    await expectReach([["host", "tcp", 1, 7000, false]]);
    setIngress(1, [ingress({ identity: 1000 }), ingress({ identity: HOST })]);
    await expectReach([
      ["host", "tcp", 1, 7000, true],
      [0, "tcp", 1, 7000, true],
    ]);
    datapath!.deleteIpcache(gateway);
    await expectReach([["host", "tcp", 1, 7000, false]]);
    setIngress(1, [ingress({ identity: 1000 }), ingress({ identity: WORLD })]);
    await expectReach([["host", "tcp", 1, 7000, true]]);
    datapath!.upsertIpcache(`${gateway}/32`, HOST);
    await expectReach([["host", "tcp", 1, 7000, false]]);
  }, 20_000);

  test("ICMP: echo request (type 8) allowed by type; the echo reply passes as a conntrack reply", async () => {
    setIngress(1, [ingress({ protocol: ICMP, port: 8 })]);
    setIngress(0, []); // p0 accepts nothing new, yet gets its echo replies
    await expectReach([
      [0, "ping", 1, undefined, true],
      [2, "ping", 1, undefined, false],
      [0, "tcp", 1, 7000, false],
    ]);
    unenforce(0);
  }, 20_000);

  /** A long-lived TCP connection that reports every answer with its arrival time. */
  function timedStream(from: number, to: number, port: number): { answers: number[]; stop(): void } {
    const script = `
      const times = [];
      const socket = await Bun.connect({ hostname: process.env.TPOL_HOST, port: Number(process.env.TPOL_PORT), socket: {
        data(_s, d) { for (const line of Buffer.from(d).toString().split("\\n")) if (line) console.log(Date.now()); },
        close() { console.log("closed"); process.exit(0); },
        error() { console.log("closed"); process.exit(0); },
      } });
      setInterval(() => socket.write("ping\\n"), 20);`;
    const child = Bun.spawn(["ip", "netns", "exec", p(from).netns, process.execPath, "-e", script], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
      env: { ...process.env, TPOL_HOST: p(to).ip, TPOL_PORT: String(port) },
    });
    children.add(child);
    const answers: number[] = [];
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of child.stdout) {
        buffered += decoder.decode(chunk);
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (/^\d+$/.test(line)) answers.push(Number(line));
      }
    })();
    return {
      answers,
      stop() {
        child.kill();
        children.delete(child);
      },
    };
  }

  test("revocation: an established stream stops being answered within 1 s; a reply-only direction keeps flowing", async () => {
    setIngress(1, [ingress({})]);
    const forward = timedStream(0, 1, 7000); // p0 -> p1:7000, allowed by p1's ingress
    const outbound = timedStream(1, 0, 7000); // p1 -> p0: p1 only receives replies
    try {
      await Bun.sleep(700);
      expect(forward.answers.length).toBeGreaterThan(5);
      expect(outbound.answers.length).toBeGreaterThan(5);
      const revokedAt = Date.now();
      expect(setIngress(1, [])).toEqual({ added: 0, removed: 1 });
      await Bun.sleep(2000);
      const late = forward.answers.filter((t) => t > revokedAt + 1000);
      expect(late).toEqual([]);
      expect(outbound.answers.filter((t) => t > revokedAt + 1000).length).toBeGreaterThan(20);
      // And back: the same connection is answered again once allowed.
      const countBefore = forward.answers.length;
      setIngress(1, [ingress({})]);
      await waitFor("the stream to be answered again (after TCP's retransmission backoff)", () => forward.answers.length > countBefore, 8000);
    } finally {
      forward.stop();
      outbound.stop();
    }
  }, 20_000);

  test("setEndpointPolicy writes only differences, reads them back, and converges after a restart", () => {
    const id = p(2).endpoint.id;
    const entries = [
      ingress({}),
      ingress({ protocol: UDP, port: 0, prefixLength: 0 }),
      ingress({ identity: 0, protocol: ICMP, port: 8 }),
      ingress({ identity: 1001, deny: true, protocol: 0, port: 0 }),
      egress({ identity: 0, protocol: 0, port: 0 }),
    ];
    expect(datapath!.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries })).toEqual({ added: 5, removed: 0 });
    expect(datapath!.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries })).toEqual({ added: 0, removed: 0 });
    const changed = [...entries.slice(0, 4), egress({ identity: 0, protocol: TCP, port: 0, prefixLength: 0 }), ingress({ port: 7001 })];
    expect(datapath!.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries: changed })).toEqual({ added: 2, removed: 1 });
    // A verdict change is one write.
    const flipped = [ingress({ deny: true }), ...changed.slice(1)];
    expect(datapath!.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries: flipped })).toEqual({ added: 1, removed: 0 });

    const held = datapath!.endpointPolicy(id);
    expect(held.ingressEnforced).toBe(true);
    expect(held.egressEnforced).toBe(true);
    expect(held.entries).toEqual([
      { direction: "egress", identity: 0, protocol: TCP, port: 0, prefixLength: 0, deny: false },
      { direction: "ingress", identity: 0, protocol: ICMP, port: 8, prefixLength: 16, deny: false },
      { direction: "ingress", identity: 1000, protocol: TCP, port: 7000, prefixLength: 16, deny: true },
      { direction: "ingress", identity: 1000, protocol: TCP, port: 7001, prefixLength: 16, deny: false },
      { direction: "ingress", identity: 1000, protocol: UDP, port: 0, prefixLength: 0, deny: false },
      { direction: "ingress", identity: 1001, protocol: 0, port: 0, prefixLength: 0, deny: true },
    ]);

    // An agent restart: a fresh datapath reads the map, re-applying endpoints keeps enforcement.
    datapath!.close();
    datapath = NodeDatapath.start(config());
    for (const pod of pods) datapath.applyEndpoint(pod.endpoint);
    expect(datapath.listEndpoints().find((e) => e.info.lxcId === id)!.info.flags).toBe(EndpointFlags.PolicyIngress | EndpointFlags.PolicyEgress);
    expect(datapath.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries: flipped })).toEqual({ added: 0, removed: 0 });
    expect(datapath.endpointPolicy(id)).toEqual(held);
    // Only the enforcement bits change; other endpoints' entries are untouched.
    const others = datapath.endpointPolicy(p(1).endpoint.id);
    expect(datapath.setEndpointPolicy(id, { ingressEnforced: false, egressEnforced: false, entries: [] })).toEqual({ added: 0, removed: 6 });
    expect(datapath.listEndpoints().find((e) => e.info.lxcId === id)!.info.flags).toBe(0);
    expect(datapath.endpointPolicy(p(1).endpoint.id)).toEqual(others);
  });

  test("overflow fails closed: enforcement on, denies written, new allows left out; with no room at all, no allows", async () => {
    const id = p(1).endpoint.id;
    setIngress(1, [ingress({})]);
    const total = () => [0, 1, 2].reduce((n, i) => n + datapath!.endpointPolicy(p(i).endpoint.id).entries.length, 0);
    const used = total();
    datapath!.close();
    datapath = NodeDatapath.start({ ...config(), policyMaxEntries: used + 3 });
    const filler = Array.from({ length: 10 }, (_, i) => ingress({ identity: 5000 + i }));
    const wanted = [ingress({}), ingress({ protocol: UDP }), ingress({ identity: 1002, protocol: 0, port: 0, deny: true }), ...filler];
    let error: unknown;
    try {
      datapath.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: true, entries: wanted });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyMapFullError);
    expect((error as Error).message).toContain(`endpoint ${id}`);
    expect((error as Error).message).toContain("needs 13 entries");
    expect((error as Error).message).toContain(`limit is ${used + 3}`);
    expect(datapath.endpointPolicy(id)).toEqual({
      ingressEnforced: true,
      egressEnforced: true,
      entries: [ingress({}), ingress({ identity: 1002, protocol: 0, port: 0, prefixLength: 0, deny: true })],
    });
    await expectReach([
      [0, "tcp", 1, 7000, true], // an allow it already had stays
      [0, "udp", 1, 7000, false], // a new allow is left out
      [2, "tcp", 1, 7000, false],
      [1, "tcp", 0, 7000, false], // egress now enforced, and nothing allows it
    ]);

    // No room even for the denies: every allow goes.
    const remaining = total();
    datapath.close();
    datapath = NodeDatapath.start({ ...config(), policyMaxEntries: remaining - 1 });
    expect(() =>
      datapath!.setEndpointPolicy(id, { ingressEnforced: true, egressEnforced: false, entries: [ingress({}), ...filler.map((f) => ({ ...f, deny: true }))] }),
    ).toThrow(/every allow entry of the endpoint was removed/);
    expect(datapath.endpointPolicy(id).entries.filter((e) => !e.deny)).toEqual([]);
    await expectReach([[0, "tcp", 1, 7000, false]]);

    datapath.close();
    datapath = NodeDatapath.start(config());
    for (const pod of pods) datapath.applyEndpoint(pod.endpoint);
    unenforce(1);
    await expectReach([[0, "tcp", 1, 7000, true]]);
  }, 30_000);

  test("removeEndpoint removes the endpoint's policy entries and leaves its ipcache entry to the agent", () => {
    const pod = p(2);
    datapath!.setEndpointPolicy(pod.endpoint.id, { ingressEnforced: true, egressEnforced: false, entries: [ingress({}), ingress({ port: 7001 })] });
    const otherEntries = datapath!.endpointPolicy(p(1).endpoint.id);
    datapath!.removeEndpoint(pod.endpoint);
    expect(datapath!.endpointPolicy(pod.endpoint.id)).toEqual({ ingressEnforced: false, egressEnforced: false, entries: [] });
    expect(datapath!.endpointPolicy(p(1).endpoint.id)).toEqual(otherEntries);
    expect(datapath!.listIpcache().some((e) => e.cidr === `${pod.ip}/32`)).toBe(true);
    datapath!.deleteIpcache(pod.ip);
    expect(datapath!.listIpcache().some((e) => e.cidr === `${pod.ip}/32`)).toBe(false);
  });

  test("policy set before the endpoint is applied is enforced from its first packet; removeStale drops policy of dead endpoints", async () => {
    const pod = p(2);
    datapath!.setEndpointPolicy(pod.endpoint.id, { ingressEnforced: true, egressEnforced: false, entries: [ingress({ identity: 1000 })] });
    datapath!.applyEndpoint(pod.endpoint);
    expect(datapath!.listEndpoints().find((e) => e.info.lxcId === pod.endpoint.id)!.info.flags).toBe(EndpointFlags.PolicyIngress);
    await expectReach([
      [0, "tcp", 2, 7000, true],
      [1, "tcp", 2, 7000, false],
    ]);
    // Explicit enforcement in applyEndpoint wins and is remembered.
    datapath!.applyEndpoint({ ...pod.endpoint, policyEnforcement: { ingress: true, egress: true } });
    expect(datapath!.endpointPolicy(pod.endpoint.id)).toMatchObject({ ingressEnforced: true, egressEnforced: true });

    // After a restart, entries of an endpoint id that is neither live nor in cilium_lxc go.
    datapath!.setEndpointPolicy(999, { ingressEnforced: true, egressEnforced: false, entries: [ingress({}), ingress({ port: 1 })] });
    datapath!.close();
    datapath = NodeDatapath.start(config());
    const live = pods.map((x) => x.endpoint);
    for (const endpoint of live) datapath.applyEndpoint(endpoint);
    expect(datapath.removeStale(live)).toEqual(["policy entries of endpoint 999 (2)"]);
    expect(datapath.endpointPolicy(999).entries).toEqual([]);
    expect(datapath.endpointPolicy(pod.endpoint.id).entries).toEqual([ingress({ identity: 1000 })]);
    datapath.removeEndpoint(pod.endpoint);
  }, 20_000);
});
