/**
 * Conntrack and masquerade garbage collection by the real agent (`--conntrack-gc-interval 1s`) on
 * the real kernel: expired entries and orphaned NAT mappings written into the pinned maps go,
 * live ones stay, and connections (pod to pod, and masqueraded to the outside) carry on across
 * GC passes. The counts are in `cilium status --verbose` and the entries in `cilium bpf ct list
 * global` / `cilium bpf nat list`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { monotonicNs } from "../../src/datapath/clock.ts";
import { collectConntrackGarbage, openConntrackMaps, type ConntrackMaps } from "../../src/datapath/conntrack-gc.ts";
import { CtKeyFlags, type CtEntryValue, type CtKeyValue } from "../../src/datapath/maps/conntrack.ts";
import { NatDir, type NatEntryValue, type NatTupleValue } from "../../src/datapath/maps/nat.ts";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { connectOutside } from "../helpers/outside.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { startEchoServer, startStream, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tgc");
const octet = (process.pid % 200) + 20;
const PORT = 7300;
const SECOND = 1_000_000_000n;
const TCP = 6;

function ctKey(saddr: string, daddr: string, sport: number, dport: number, flags: number = CtKeyFlags.Out): CtKeyValue {
  return { saddr, daddr, sport, dport, proto: TCP, flags };
}

function ctEntry(expires: bigint): CtEntryValue {
  return { expires, txPackets: 1n, txBytes: 60n, rxPackets: 0n, rxBytes: 0n, created: 0, txFlagsSeen: 0x82, rxFlagsSeen: 0, flags: 0, srcSecId: 2 };
}

/** A masquerade pair: EGRESS {pod, remote, pod port, remote port} and INGRESS {remote, node, remote port, nat port}. */
function natPair(pod: string, remote: string, podPort: number, remotePort: number, node: string, natPort: number, lastSeen: bigint): [NatTupleValue, NatEntryValue][] {
  return [
    [
      { saddr: pod, daddr: remote, sport: podPort, dport: remotePort, proto: TCP, dir: NatDir.Egress },
      { toAddr: node, toPort: natPort, created: lastSeen, lastSeen },
    ],
    [
      { saddr: remote, daddr: node, sport: remotePort, dport: natPort, proto: TCP, dir: NatDir.Ingress },
      { toAddr: pod, toPort: podPort, created: lastSeen, lastSeen },
    ],
  ];
}

describePrivileged("conntrack and masquerade GC (real agent, real kernel)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  let node: TestNode;
  let maps: ConntrackMaps;
  let outsideNs: string;
  let client: Pod;
  let server: Pod;
  const nodeIp = `10.97.${octet}.1`;
  const outsideIp = `10.97.${octet}.2`;

  async function gcRuns(): Promise<number> {
    return (await node.api("GET", "/healthz")).body["conntrack-gc"].runs;
  }

  /** Waits for `passes` more GC passes of the agent. */
  async function gcPasses(passes: number): Promise<void> {
    const target = (await gcRuns()) + passes;
    const deadline = Date.now() + 10_000;
    while ((await gcRuns()) < target) {
      if (Date.now() > deadline) throw new Error(`the agent ran no GC pass for 10 s:\n${await node.logs()}`);
      await Bun.sleep(100);
    }
  }

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n", podCidr: `10.204.${octet}.0/24`, extraAgentArgs: ["--conntrack-gc-interval", "1s"] });
    outsideNs = namespaces.create("out");
    connectOutside({ nodeNetns: node.netnsPath, outsideNetns: `/var/run/netns/${outsideNs}`, prefix, nodeIp, outsideIp });
    await node.startAgent();
    client = node.addPod("client");
    server = node.addPod("server");
    servers.push(await startEchoServer(server.netns, "tcp", PORT));
    servers.push(await startEchoServer(outsideNs, "tcp", PORT));
    maps = openConntrackMaps(node.bpfRoot);
  }, 60_000);

  afterAll(async () => {
    maps?.close();
    for (const s of servers) s.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  test("expired conntrack entries and orphaned NAT mappings go; live ones stay; counts are reported", async () => {
    const now = monotonicNs();
    const expired = ctKey("10.77.0.1", "10.77.0.2", 1111, 80);
    const live = ctKey("10.77.0.3", "10.77.0.4", 2222, 80);
    maps.ct.update(expired, ctEntry(now - SECOND));
    maps.ct.update(live, ctEntry(now + 3600n * SECOND));
    // Idle for a minute: one pair has no conntrack entry at all, one has an expired one, one a live one.
    const orphan = natPair("10.77.1.1", "10.77.1.2", 3333, 80, nodeIp, 40001, now - 60n * SECOND);
    const ofExpired = natPair("10.77.0.1", "10.77.0.2", 1111, 80, nodeIp, 40002, now - 60n * SECOND);
    const ofLive = natPair("10.77.0.3", "10.77.0.4", 2222, 80, nodeIp, 40003, now - 60n * SECOND);
    for (const [key, value] of [...orphan, ...ofExpired, ...ofLive]) maps.snat.update(key, value);

    await gcPasses(2);
    expect(maps.ct.lookup(expired)).toBeUndefined();
    expect(maps.ct.lookup(live)?.expires).toBe(now + 3600n * SECOND);
    for (const [key] of [...orphan, ...ofExpired]) expect(maps.snat.lookup(key)).toBeUndefined();
    for (const [key, value] of ofLive) expect(maps.snat.lookup(key)).toEqual(value);

    const status = node.cilium(["status", "--verbose"]).stdout;
    expect(status).toMatch(/Conntrack GC:\s+interval 1s, \d+ runs, [1-9]\d* entries deleted; last: \d+\/\d+ conntrack, \d+\/\d+ NAT entries deleted/);
    const ctList = node.cilium(["bpf", "ct", "list", "global", "--bpf-root", node.bpfRoot]).stdout;
    expect(ctList).toContain(`TCP OUT 10.77.0.3:2222 -> 10.77.0.4:80 expires=${(now + 3600n * SECOND) / SECOND} `);
    expect(ctList).not.toContain("10.77.0.1:1111");
    const natList = node.cilium(["bpf", "nat", "list", "--bpf-root", node.bpfRoot]).stdout;
    expect(natList).toContain(`TCP OUT 10.77.0.3:2222 -> 10.77.0.4:80 XLATE_SRC ${nodeIp}:40003 `);
    expect(natList).toContain(`TCP IN 10.77.0.4:80 -> ${nodeIp}:40003 XLATE_DST 10.77.0.3:2222 `);
    expect(natList).not.toContain("10.77.1.1");

    maps.ct.delete(live);
    for (const [key] of ofLive) maps.snat.delete(key);
  }, 30_000);

  test("connections keep working across GC passes, and their entries stay", async () => {
    const toPod = startStream(client.netns, server.ip, PORT, 20);
    const toOutside = startStream(client.netns, outsideIp, PORT, 20);
    await Bun.sleep(500);
    await gcPasses(3);
    const stoppedAt = Date.now();
    const [podStream, outsideStream] = await Promise.all([toPod.stop(), toOutside.stop()]);
    for (const stream of [podStream, outsideStream]) {
      expect(stream.closed).toBe(false);
      expect(stream.sent).toBeGreaterThan(50);
      // Answers kept coming to the end; only the last few, in flight at the stop, may be missing.
      expect(stream.received).toBeGreaterThanOrEqual(stream.sent - 10);
      expect(stream.lastReceivedAt!).toBeGreaterThan(stoppedAt - 1000);
    }
    // Both connections' entries were live through the passes; the agent's GC ran meanwhile.
    const entries = maps.ct.batchLookup().map(([key]) => key);
    expect(entries.some((k) => k.saddr === client.ip && k.daddr === server.ip && k.dport === PORT && k.flags === CtKeyFlags.Out)).toBe(true);
    expect(entries.some((k) => k.saddr === client.ip && k.daddr === server.ip && k.dport === PORT && k.flags === CtKeyFlags.In)).toBe(true);
    expect(entries.some((k) => k.saddr === client.ip && k.daddr === outsideIp && k.dport === PORT)).toBe(true);
    const nat = maps.snat.batchLookup().map(([key]) => key);
    expect(nat.some((k) => k.dir === NatDir.Egress && k.saddr === client.ip && k.daddr === outsideIp && k.dport === PORT)).toBe(true);
    expect(nat.some((k) => k.dir === NatDir.Ingress && k.saddr === outsideIp && k.daddr === nodeIp && k.sport === PORT)).toBe(true);
  }, 30_000);

  test("a pass with a clock past every deadline removes the closed connections' entries and NAT mappings", () => {
    // The streams above have closed; an hour later, as far as their entries' deadlines go, they are garbage.
    const later = monotonicNs() + 7n * 3600n * SECOND;
    const stats = collectConntrackGarbage(maps, { now: later });
    expect(stats.ctDeleted).toBeGreaterThanOrEqual(3);
    expect(stats.natDeleted).toBeGreaterThanOrEqual(2);
    expect(maps.ct.batchLookup().filter(([key]) => key.saddr === client.ip)).toEqual([]);
    expect(maps.snat.batchLookup().filter(([key]) => key.saddr === client.ip || key.daddr === nodeIp)).toEqual([]);
  });
});
