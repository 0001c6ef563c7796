import { describe, expect, test } from "bun:test";
import { FlowParser, RecentEndpoints, type EndpointInfo, type EndpointResolver } from "../../src/hubble/parser/index.ts";
import { EventRecordError } from "../../src/hubble/parser/record.ts";
import { TraceObservationPoint, Verdict } from "../../src/hubble/flow/types.ts";

/** Builds a 176-byte cilium_events record exactly as bpf/lib/events.h lays it out. */
interface Hdr {
  type: number;
  subtype: number;
  source?: number;
  hash?: number;
  srcIdentity?: number;
  dstIdentity?: number;
  dstId?: number;
  reason?: number;
  flags?: number;
  ifindex?: number;
  ktime?: bigint;
  origIp4?: number;
  line?: number;
  file?: number;
}

function record(h: Hdr, packet: number[]): Uint8Array {
  const buf = new Uint8Array(176);
  const v = new DataView(buf.buffer);
  v.setUint8(0, h.type);
  v.setUint8(1, h.subtype);
  v.setUint16(2, h.source ?? 0, true);
  v.setUint32(4, h.hash ?? 0xdeadbeef, true);
  v.setUint32(8, packet.length, true);
  v.setUint16(12, Math.min(packet.length, 128), true);
  v.setUint16(14, 1, true);
  v.setUint32(16, h.srcIdentity ?? 0, true);
  v.setUint32(20, h.dstIdentity ?? 0, true);
  v.setUint16(24, h.dstId ?? 0, true);
  v.setUint8(26, h.reason ?? 0);
  v.setUint8(27, h.flags ?? 0);
  v.setUint32(28, h.ifindex ?? 0, true);
  v.setBigUint64(32, h.ktime ?? 0n, true);
  v.setUint32(40, h.origIp4 ?? 0, false);
  v.setUint16(44, h.line ?? 0, true);
  v.setUint8(46, h.file ?? 0);
  buf.set(packet.slice(0, 128), 48);
  // Stale bytes beyond len_cap must be ignored.
  buf.fill(0xaa, 48 + Math.min(packet.length, 128));
  return buf;
}

const ip4 = (s: string) => s.split(".").map(Number);
const be16 = (n: number) => [n >> 8, n & 0xff];

function ethernet(dst: number[], src: number[], type: number): number[] {
  return [...dst, ...src, ...be16(type)];
}

function ipv4(proto: number, src: string, dst: string, payloadLen: number): number[] {
  return [0x45, 0, ...be16(20 + payloadLen), 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, ...ip4(src), ...ip4(dst)];
}

function tcp(sport: number, dport: number, flags: number): number[] {
  return [...be16(sport), ...be16(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, ...be16(64240), 0, 0, 0, 0];
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

const CLIENT: EndpointInfo = { id: 101, identity: 40001, namespace: "default", podName: "client-7d9", labels: ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=default"] };
const SERVER: EndpointInfo = { id: 202, identity: 40002, namespace: "default", podName: "server-1", labels: ["k8s:app=server", "k8s:io.kubernetes.pod.namespace=default"] };

function resolver(endpoints: Record<string, EndpointInfo>): EndpointResolver {
  return {
    endpointByIp: (ip) => endpoints[ip],
    identityLabels: (id) => (id === 2 ? ["reserved:world"] : id === 1 ? ["reserved:host"] : undefined),
  };
}

const pods = { "10.0.0.1": CLIENT, "10.0.0.2": SERVER };

function parser(r: EndpointResolver = resolver(pods)) {
  return new FlowParser({ nodeName: "node-a", resolver: r, clock: (k) => ({ seconds: 1_700_000_000 + Number(k / 1_000_000_000n), nanos: Number(k % 1_000_000_000n) }), uuid: () => "u-1" });
}

describe("FlowParser", () => {
  test("TCP SYN forwarded to a local endpoint", () => {
    const pkt = [...ethernet(MAC_B, MAC_A, 0x0800), ...ipv4(6, "10.0.0.1", "10.0.0.2", 20), ...tcp(43210, 80, 0x02)];
    const flow = parser().parse(record({ type: 4, subtype: 0, source: 101, srcIdentity: 40001, dstIdentity: 40002, dstId: 202, reason: 0, flags: 2, ifindex: 7, ktime: 5_000_000_123n }, pkt));
    expect(flow).toEqual({
      time: { seconds: 1_700_000_005, nanos: 123 },
      uuid: "u-1",
      verdict: Verdict.FORWARDED,
      ethernet: { source: "02:00:00:00:00:0a", destination: "02:00:00:00:00:0b" },
      IP: { source: "10.0.0.1", destination: "10.0.0.2", ipVersion: 1 },
      l4: { TCP: { source_port: 43210, destination_port: 80, flags: { SYN: true } } },
      source: { ID: 101, identity: 40001, namespace: "default", pod_name: "client-7d9", labels: CLIENT.labels as string[] },
      destination: { ID: 202, identity: 40002, namespace: "default", pod_name: "server-1", labels: SERVER.labels as string[] },
      Type: 1,
      node_name: "node-a",
      event_type: { type: 4, sub_type: 0 },
      traffic_direction: 2,
      interface: { index: 7 },
      Summary: "TCP Flags: SYN",
      trace_observation_point: TraceObservationPoint.TO_ENDPOINT,
      trace_reason: 1,
      is_reply: { value: false },
    });
  });

  test("UDP dropped by policy (POLICY_DENIED) at ingress of the destination", () => {
    const udp = [...be16(5353), ...be16(53), ...be16(12), 0, 0, 1, 2, 3, 4];
    const pkt = [...ethernet(MAC_B, MAC_A, 0x0800), ...ipv4(17, "10.0.0.1", "10.0.0.2", udp.length), ...udp];
    const flow = parser().parse(record({ type: 1, subtype: 133, source: 202, srcIdentity: 40001, dstIdentity: 40002, dstId: 202, flags: 1, line: 321, file: 1 }, pkt));
    expect(flow.verdict).toBe(Verdict.DROPPED);
    expect(flow.drop_reason).toBe(133);
    expect(flow.drop_reason_desc).toBe(133);
    expect(flow.event_type).toEqual({ type: 1, sub_type: 133 });
    expect(flow.traffic_direction).toBe(1);
    expect(flow.l4).toEqual({ UDP: { source_port: 5353, destination_port: 53 } });
    expect(flow.file).toEqual({ name: "bpf_lxc.c", line: 321 });
    expect(flow.is_reply).toEqual({ value: false });
    expect(flow.trace_observation_point).toBeUndefined();
    expect(flow.Summary).toBe("UDP");
    // On ingress the program acted for the receiver: the sender's ID comes from the resolver.
    expect(flow.source?.ID).toBe(101);
    expect(flow.destination?.ID).toBe(202);
  });

  test("ICMP echo request to the world, leaving through the stack", () => {
    const icmp = [8, 0, 0, 0, ...be16(0x77), ...be16(1)];
    const pkt = [...ethernet(MAC_B, MAC_A, 0x0800), ...ipv4(1, "10.0.0.1", "1.1.1.1", icmp.length), ...icmp];
    const flow = parser().parse(record({ type: 4, subtype: 3, source: 101, srcIdentity: 40001, dstIdentity: 2, reason: 0, flags: 2 }, pkt));
    expect(flow.l4).toEqual({ ICMPv4: { type: 8, code: 0 } });
    expect(flow.Summary).toBe("ICMPv4 EchoRequest");
    expect(flow.trace_observation_point).toBe(TraceObservationPoint.TO_STACK);
    expect(flow.destination).toEqual({ ID: 0, identity: 2, labels: ["reserved:world"] });
  });

  test("a reply: conntrack state REPLY sets is_reply", () => {
    const pkt = [...ethernet(MAC_A, MAC_B, 0x0800), ...ipv4(6, "10.0.0.2", "10.0.0.1", 20), ...tcp(80, 43210, 0x12)];
    const flow = parser().parse(record({ type: 4, subtype: 0, source: 202, srcIdentity: 40002, dstIdentity: 40001, dstId: 101, reason: 2, flags: 2 | 4 }, pkt));
    expect(flow.is_reply).toEqual({ value: true });
    expect(flow.trace_reason).toBe(3);
    expect(flow.l4?.TCP?.flags).toEqual({ SYN: true, ACK: true });
    expect(flow.Summary).toBe("TCP Flags: SYN, ACK");
  });

  test("unknown conntrack state leaves is_reply unset", () => {
    const pkt = [...ethernet(MAC_A, MAC_B, 0x0800), ...ipv4(6, "10.0.0.2", "10.0.0.1", 20), ...tcp(80, 1, 0x10)];
    const flow = parser().parse(record({ type: 4, subtype: 10, reason: 5, flags: 1 }, pkt));
    expect(flow.is_reply).toBeUndefined();
    expect(flow.trace_reason).toBeUndefined();
  });

  test("masqueraded packet at TO_NETWORK: source is the pod, source_xlated the node", () => {
    const pkt = [...ethernet(MAC_B, MAC_A, 0x0800), ...ipv4(6, "192.168.1.10", "8.8.8.8", 20), ...tcp(61000, 443, 0x02)];
    const flow = parser().parse(record({ type: 4, subtype: 11, srcIdentity: 40001, dstIdentity: 2, reason: 0, flags: 2, origIp4: 0x0a000001 }, pkt));
    expect(flow.IP).toEqual({ source: "10.0.0.1", source_xlated: "192.168.1.10", destination: "8.8.8.8", ipVersion: 1 });
    expect(flow.source?.pod_name).toBe("client-7d9");
  });

  test("IPv6 drop (unsupported L3) decodes the addresses", () => {
    const v6 = [0x60, 0, 0, 0, 0, 8, 58, 255, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const pkt = [...ethernet(MAC_B, MAC_A, 0x86dd), ...v6, 133, 0, 0, 0, 0, 0, 0, 0];
    const flow = parser().parse(record({ type: 1, subtype: 139, flags: 2 }, pkt));
    expect(flow.IP).toEqual({ source: "fe80::1", destination: "ff02::2", ipVersion: 2 });
    expect(flow.l4).toEqual({ ICMPv6: { type: 133, code: 0 } });
    expect(flow.is_reply).toBeUndefined();
  });

  test("a truncated capture yields what could be read", () => {
    const pkt = [...ethernet(MAC_B, MAC_A, 0x0800), ...ipv4(6, "10.0.0.1", "10.0.0.2", 20), 0, 80];
    const flow = parser().parse(record({ type: 4, subtype: 3, flags: 2 }, pkt));
    expect(flow.IP?.source).toBe("10.0.0.1");
    expect(flow.l4).toBeUndefined();
    expect(flow.Summary).toBe("IP");
  });

  test("rejects short records, wrong versions and non-flow types", () => {
    const p = parser();
    expect(() => p.parse(new Uint8Array(20))).toThrow(EventRecordError);
    const bad = record({ type: 4, subtype: 0 }, []);
    new DataView(bad.buffer).setUint16(14, 9, true);
    expect(() => p.parse(bad)).toThrow(/version 9/);
    // Debug messages (type 2) are not flows; policy verdicts (5) now are.
    expect(() => p.parse(record({ type: 2, subtype: 0 }, []))).toThrow(/not a flow event/);
  });
});

describe("RecentEndpoints", () => {
  test("a deleted pod still resolves until the ttl passes; a reused IP resolves to the new owner", () => {
    let now = 0;
    const live: Record<string, EndpointInfo> = { "10.0.0.1": CLIENT };
    const r = new RecentEndpoints(resolver(live), { ttlMs: 1000, now: () => now });
    expect(r.endpointByIp("10.0.0.1")).toBe(CLIENT);
    delete live["10.0.0.1"];
    now = 900;
    expect(r.endpointByIp("10.0.0.1")).toBe(CLIENT);
    now = 2000;
    expect(r.endpointByIp("10.0.0.1")).toBeUndefined();
    r.endpointDeleted("10.0.0.1", CLIENT);
    live["10.0.0.1"] = SERVER;
    expect(r.endpointByIp("10.0.0.1")).toBe(SERVER);
  });

  test("keeps at most maxEntries", () => {
    const r = new RecentEndpoints(resolver({}), { maxEntries: 2 });
    r.endpointDeleted("a", CLIENT);
    r.endpointDeleted("b", CLIENT);
    r.endpointDeleted("c", SERVER);
    expect(r.endpointByIp("a")).toBeUndefined();
    expect(r.endpointByIp("c")).toBe(SERVER);
  });
});
