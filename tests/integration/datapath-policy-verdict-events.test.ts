/**
 * Policy-verdict events of the compiled programs: cil_from_container (egress) and cil_from_host
 * (ingress) run with BPF_PROG_TEST_RUN on crafted packets; every record they write to the real
 * cilium_events ring is read back and decoded with the Hubble parser's record decoder. Verdicts
 * and match types must be the model's (src/datapath/maps/policy.ts, unit-tested by hand), and
 * the aggregation rules those of bpf/lib/policy_log.h.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { BpfMap, BpfObject, RingBufferReader, testRun, u32, type BpfProgram } from "../../src/datapath/bpf/index.ts";
import { EndpointInfo, EndpointKey, ENDPOINTS_MAP } from "../../src/datapath/maps/endpoints.ts";
import { MonitorAggregation, NODE_CONFIG_MAP, NodeConfig, type MonitorAggregationLevel } from "../../src/datapath/maps/node-config.ts";
import { normalizePolicyRules, policyKeyWithin, policyMatchType, policyVerdict, type PolicyQuery, type PolicyRule } from "../../src/datapath/maps/policy.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { NodeDatapath } from "../../src/datapath/node.ts";
import { readObject } from "../../src/datapath/objects.ts";
import { mapPinRoot, pinnedMapPath } from "../../src/datapath/pinned.ts";
import { decodeEventRecord, type EventRecord } from "../../src/hubble/parser/record.ts";
import { TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const prefix = uniquePrefix("tpve");
const octet = (process.pid % 200) + 1;
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const GRE = 47;
const HOST = 1;
const WORLD = 2;
const POLICY_VERDICT = 5;
const EP = 310;

describePrivileged("policy-verdict events of the compiled programs (BPF_PROG_TEST_RUN, real ring)", () => {
  const namespaces = new TestNamespaces(prefix);
  const bpfRoot = `/sys/fs/bpf/${prefix}`;
  const podCidr = `10.204.${octet}.0/24`;
  const local = `10.204.${octet}.10`;
  /** Remotes by direction and identity (separate address pairs so no query is another's reply). */
  const remotes: Record<"ingress" | "egress", Record<number, string>> = {
    ingress: { 1000: `10.204.${octet}.20`, 1001: "10.78.3.4", [HOST]: `10.204.${octet}.1`, [WORLD]: "192.0.2.9" },
    egress: { 1000: `10.204.${octet}.30`, 1001: "10.78.9.9", [HOST]: "10.99.0.3", [WORLD]: "198.51.100.9" },
  };
  let netns: Netns;
  let datapath: NodeDatapath | undefined;
  let lxc: BpfObject | undefined;
  let host: BpfObject | undefined;
  let reader: RingBufferReader | undefined;
  const records: EventRecord[] = [];

  beforeAll(() => {
    netns = Netns.open(Netns.pathOf(namespaces.create("node")));
    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: false, netns });
    // The endpoint sits "behind" lo: a test run without a context comes in on the loopback device.
    const endpoints = BpfMap.openPinned(pinnedMapPath(bpfRoot, ENDPOINTS_MAP), EndpointKey, EndpointInfo);
    endpoints.update({ ip4: local }, { ifindex: 1, lxcId: EP, flags: 0, mac: "02:00:00:00:01:0a", nodeMac: "02:00:00:00:01:01", secIdentity: 3000 });
    endpoints.close();
    // Written behind the datapath's back: it adopts the maps' entries when it starts (as after an agent restart).
    datapath.close();
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: false, netns });
    for (const direction of ["ingress", "egress"] as const) {
      datapath.upsertIpcache(`${remotes[direction][1000]}/32`, 1000);
      datapath.upsertIpcache(remotes[direction][HOST]!, HOST);
    }
    datapath.upsertIpcache("10.78.0.0/16", 1001);
    lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot: mapPinRoot(bpfRoot) });
    lxc.load();
    host = BpfObject.open(readObject("bpf_host"), { name: "bpf_host", pinRoot: mapPinRoot(bpfRoot) });
    host.load();
    reader = new RingBufferReader(lxc.map("cilium_events"), (bytes) => records.push(decodeEventRecord(bytes)), { pollIntervalMs: 3_600_000 });
  });

  afterAll(() => {
    reader?.close();
    lxc?.close();
    host?.close();
    datapath?.close();
    netns?.close();
    namespaces.removeAll();
    rmSync(bpfRoot, { recursive: true, force: true });
  });

  function setAggregation(level: MonitorAggregationLevel): void {
    const config = BpfMap.openPinned(pinnedMapPath(bpfRoot, NODE_CONFIG_MAP), u32, NodeConfig);
    try {
      config.update(0, { ...config.lookup(0)!, monitorAggregation: MonitorAggregation[level] });
    } finally {
      config.close();
    }
  }

  let sourcePort = 30000;

  function packet(saddr: string, daddr: string, protocol: number, port: number, options: { fragment?: boolean; sport?: number; tcpFlags?: number } = {}): Uint8Array {
    const l4 = protocol === TCP ? 20 : 8;
    const data = new Uint8Array(14 + 20 + l4);
    const view = new DataView(data.buffer);
    data.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
    view.setUint16(12, 0x0800);
    view.setUint8(14, 0x45);
    view.setUint16(16, 20 + l4);
    if (options.fragment) view.setUint16(20, 100);
    view.setUint8(22, 64);
    view.setUint8(23, protocol);
    data.set(saddr.split(".").map(Number), 26);
    data.set(daddr.split(".").map(Number), 30);
    const sport = options.sport ?? sourcePort++;
    if (protocol === ICMP) {
      view.setUint8(34, port);
      view.setUint16(38, sport);
    } else if (protocol !== GRE) {
      view.setUint16(34, sport);
      view.setUint16(36, port);
      if (protocol === TCP) {
        view.setUint8(46, 0x50);
        view.setUint8(47, options.tcpFlags ?? 0x02);
      }
    }
    return data;
  }

  /** Runs one packet through the program of its direction; returns the verdict records it wrote. */
  function run(direction: "ingress" | "egress", data: Uint8Array): EventRecord[] {
    const program: BpfProgram = direction === "egress" ? lxc!.program("cil_from_container") : host!.program("cil_from_host");
    records.length = 0;
    netns.run(() => testRun(program, { data }));
    reader!.consumeNow();
    return records.filter((r) => r.type === POLICY_VERDICT);
  }

  type Query = PolicyQuery & { wirePort: number; fragment: boolean };
  const queries: Query[] = [];
  for (const direction of ["ingress", "egress"] as const) {
    for (const identity of [1000, 1001, HOST, WORLD]) {
      for (const [protocol, wirePort, fragment] of [
        [TCP, 80, false],
        [TCP, 86, false],
        [TCP, 443, false],
        [UDP, 53, false],
        [UDP, 80, false],
        [ICMP, 8, false],
        [GRE, 0, false],
        [TCP, 80, true],
      ] as const) {
        queries.push({ direction, identity, protocol, port: fragment || protocol === GRE ? undefined : wirePort, wirePort, fragment });
      }
    }
  }

  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  function randomRules(count: number): PolicyRule[] {
    const rules: PolicyRule[] = [];
    for (let i = 0; i < count; i++) {
      const protocol = pick([0, TCP, TCP, UDP, ICMP, GRE]);
      const prefixLength = protocol === 0 ? 0 : pick([0, 13, 16, 16]);
      const mask = prefixLength === 0 ? 0 : (0xffff << (16 - prefixLength)) & 0xffff;
      const port = protocol === 0 ? 0 : pick([8, 53, 80, 86, 443]) & mask;
      rules.push({ direction: pick(["ingress", "egress"] as const), identity: pick([0, 0, 1000, 1001, HOST, WORLD]), protocol, port, prefixLength, deny: random() < 0.25 });
    }
    const denies = normalizePolicyRules(EP, rules).filter((e) => e.deny);
    return rules.filter((r) => r.deny || !denies.some((d) => policyKeyWithin(normalizePolicyRules(EP, [r])[0]!.key, d.key)));
  }

  test("at aggregation none: one verdict per judged packet, verdict and match type as the model says, only in enforced directions", () => {
    setAggregation("none");
    const policies: { ingress: boolean; egress: boolean; rules: PolicyRule[] }[] = [
      { ingress: false, egress: false, rules: [] },
      { ingress: true, egress: true, rules: [] },
      {
        ingress: true,
        egress: false,
        rules: [
          { direction: "ingress", identity: 1000, protocol: TCP, port: 80, prefixLength: 16, deny: false },
          { direction: "ingress", identity: 0, protocol: UDP, port: 0, prefixLength: 0, deny: false },
          { direction: "ingress", identity: 1001, protocol: 0, port: 0, prefixLength: 0, deny: false },
          { direction: "ingress", identity: 1001, protocol: TCP, port: 443, prefixLength: 16, deny: true },
          { direction: "ingress", identity: 0, protocol: ICMP, port: 8, prefixLength: 16, deny: false },
          { direction: "ingress", identity: 1000, protocol: UDP, port: 0, prefixLength: 0, deny: false },
        ],
      },
      {
        ingress: false,
        egress: true,
        rules: [
          { direction: "egress", identity: 0, protocol: 0, port: 0, prefixLength: 0, deny: false },
          { direction: "egress", identity: WORLD, protocol: TCP, port: 80, prefixLength: 13, deny: true },
          { direction: "egress", identity: 0, protocol: UDP, port: 53, prefixLength: 16, deny: true },
          { direction: "egress", identity: 0, protocol: TCP, port: 86, prefixLength: 16, deny: false },
        ],
      },
    ];
    for (let i = 0; i < 6; i++) policies.push({ ingress: random() < 0.8, egress: random() < 0.8, rules: randomRules(3 + Math.floor(random() * 10)) });

    const mismatches: string[] = [];
    const matchTypesSeen = new Set<number>();
    for (const [index, policy] of policies.entries()) {
      datapath!.setEndpointPolicy(EP, { ingressEnforced: policy.ingress, egressEnforced: policy.egress, entries: policy.rules });
      const entries = normalizePolicyRules(EP, policy.rules);
      for (const q of queries) {
        const remote = remotes[q.direction][q.identity]!;
        const data = q.direction === "egress" ? packet(local, remote, q.protocol, q.wirePort, q) : packet(remote, local, q.protocol, q.wirePort, q);
        const verdicts = run(q.direction, data);
        const enforced = q.direction === "ingress" ? policy.ingress : policy.egress;
        const expected = enforced
          ? [{ direction: q.direction === "ingress" ? 1 : 2, dropReason: policyVerdict(EP, entries, true, q), matchType: policyMatchType(EP, entries, q), remoteIdentity: q.identity, dport: q.port ?? 0, proto: q.protocol, source: EP }]
          : [];
        const actual = verdicts.map((r) => ({ direction: r.direction, ...r.policy!, source: r.sourceEndpoint }));
        for (const a of actual) matchTypesSeen.add(a.matchType);
        if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(`policy ${index} ${JSON.stringify(q)}: program ${JSON.stringify(actual)}, model ${JSON.stringify(expected)}`);
      }
    }
    expect(mismatches).toEqual([]);
    // The hand-picked policies exercise every match type this datapath can report.
    expect([...matchTypesSeen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test("at the default level (medium): allows only for new connections, denies for every packet; the packet is captured", () => {
    setAggregation("medium");
    datapath!.setEndpointPolicy(EP, {
      ingressEnforced: true,
      egressEnforced: true,
      entries: [
        { direction: "egress", identity: 1000, protocol: TCP, port: 80, prefixLength: 16, deny: false },
        { direction: "ingress", identity: 1000, protocol: TCP, port: 80, prefixLength: 16, deny: false },
      ],
    });
    for (const direction of ["egress", "ingress"] as const) {
      const remote = remotes[direction][1000]!;
      const [saddr, daddr] = direction === "egress" ? [local, remote] : [remote, local];
      const sport = sourcePort++;
      const syn = run(direction, packet(saddr, daddr, TCP, 80, { sport, tcpFlags: 0x02 }));
      expect(syn.map((r) => r.policy!.dropReason)).toEqual([0]);
      expect(syn[0]!.packet.length).toBe(14 + 20 + 20);
      expect([...syn[0]!.packet.subarray(26, 34)]).toEqual([...saddr.split(".").map(Number), ...daddr.split(".").map(Number)]);
      // The same connection's next packet is established: judged again, allowed, not reported.
      expect(run(direction, packet(saddr, daddr, TCP, 80, { sport, tcpFlags: 0x10 }))).toEqual([]);
      // A denied port is reported every time.
      const deniedSport = sourcePort++;
      for (let i = 0; i < 2; i++) {
        const denied = run(direction, packet(saddr, daddr, TCP, 81, { sport: deniedSport }));
        expect(denied.map((r) => [r.policy!.dropReason, r.policy!.matchType, r.policy!.dport])).toEqual([[133, 0, 81]]);
      }
    }
  });
});
