/**
 * The flow facts Hubble metrics count from (RecordFacts, decoded from the stored record on
 * demand) say exactly what the built Flow says, for every kind of record the datapath writes;
 * and metrics fed the facts render the same exposition as metrics fed the built flows.
 */
import { expect, test } from "bun:test";
import type { FlowFacts } from "../../src/hubble/flow/facts.ts";
import { createHubbleMetrics } from "../../src/hubble/metrics/index.ts";
import { FlowParser, type EndpointInfo, type EndpointResolver } from "../../src/hubble/parser/index.ts";
import { DIR_EGRESS, DIR_INGRESS, DROP_POLICY, EVENT_DROP, EVENT_TRACE, eventRecord, icmpEchoPacket, tcpPacket, TRACE_FROM_LXC, TRACE_TO_LXC } from "../helpers/event-records.ts";

const EVENT_POLICY_VERDICT = 5;
const TRACE_TO_NETWORK = 11;
const CLIENT = "10.0.0.11";
const SERVER = "10.0.0.12";
const WORLD = "198.51.100.7";

const endpoints: Record<string, EndpointInfo> = {
  [CLIENT]: { id: 11, identity: 40001, namespace: "shop", podName: "client-0", labels: ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=shop"] },
  [SERVER]: { id: 12, identity: 40002, namespace: "shop", podName: "server-0", labels: ["k8s:app=server", "k8s:io.kubernetes.pod.namespace=shop"] },
};
const resolver: EndpointResolver = {
  endpointByIp: (ip) => endpoints[ip],
  identityLabels: (identity) => (identity === 2 ? ["reserved:world"] : undefined),
};

function udpPacket(src: string, dst: string, sport: number, dport: number): Uint8Array {
  const tcp = tcpPacket({ src, dst, sport, dport, flags: 0 });
  const udp = tcp.slice(0, 14 + 20 + 8);
  udp[14 + 9] = 17;
  return udp;
}

function masqueraded(record: Uint8Array, from: string): Uint8Array {
  record.set(from.split(".").map(Number), 40);
  return record;
}

const syn = tcpPacket({ src: CLIENT, dst: SERVER, sport: 40000, dport: 80, flags: 0x02 });
const synAck = tcpPacket({ src: SERVER, dst: CLIENT, sport: 80, dport: 40000, flags: 0x12 });
const records: Record<string, Uint8Array> = {
  "trace to-endpoint, new": eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: 12, srcIdentity: 40001, dstIdentity: 40002, reason: 0, flags: DIR_INGRESS }, syn),
  "trace from-endpoint, reply": eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: 12, srcIdentity: 40002, reason: 2, flags: DIR_EGRESS | 0x04 }, synAck),
  "trace, conntrack state unknown": eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: 12, reason: 5, flags: DIR_INGRESS }, syn),
  "trace to-network, masqueraded": masqueraded(eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_NETWORK, srcIdentity: 1, dstIdentity: 2, reason: 0, flags: DIR_EGRESS }, tcpPacket({ src: "192.168.0.1", dst: WORLD, sport: 50000, dport: 443, flags: 0x02 })), CLIENT),
  "policy drop": eventRecord({ type: EVENT_DROP, subtype: DROP_POLICY, source: 12, srcIdentity: 40001, dstIdentity: 40002, flags: DIR_INGRESS, line: 10, file: 1 }, syn),
  "other drop": eventRecord({ type: EVENT_DROP, subtype: 130, source: 11, srcIdentity: 40001, flags: DIR_EGRESS }, udpPacket(CLIENT, WORLD, 5353, 53)),
  "policy verdict, allowed": eventRecord({ type: EVENT_POLICY_VERDICT, subtype: 0, source: 12, srcIdentity: 40001, dstIdentity: 40002, reason: 0, flags: DIR_INGRESS | (2 << 3), line: 80, file: 6 }, syn),
  "policy verdict, denied": eventRecord({ type: EVENT_POLICY_VERDICT, subtype: 0, source: 11, srcIdentity: 40001, dstIdentity: 2, reason: DROP_POLICY, flags: DIR_EGRESS, line: 443, file: 6 }, tcpPacket({ src: CLIENT, dst: WORLD, sport: 40001, dport: 443, flags: 0x02 })),
  "ICMP echo": eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: 11, srcIdentity: 40001, dstIdentity: 2, reason: 0, flags: DIR_EGRESS }, icmpEchoPacket(CLIENT, WORLD)),
  "UDP": eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: 12, srcIdentity: 40001, dstIdentity: 40002, reason: 1, flags: DIR_INGRESS }, udpPacket(CLIENT, SERVER, 5353, 53)),
  "no packet": eventRecord({ type: EVENT_DROP, subtype: 134, flags: 0 }, new Uint8Array(0)),
};

const FACT_KEYS = ["verdict", "drop_reason_desc", "event_type", "l4", "IP", "traffic_direction", "is_reply", "source", "destination", "source_names", "destination_names"] as const;

function factsOf(flow: FlowFacts): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FACT_KEYS) if (flow[key] !== undefined) out[key] = flow[key];
  return out;
}

const parser = new FlowParser({ nodeName: "n1", resolver, clock: () => ({ seconds: 1, nanos: 0 }) });

for (const [name, record] of Object.entries(records)) {
  test(`facts of a stored record equal the built flow's: ${name}`, () => {
    const event = parser.ingest(record);
    expect(factsOf(event.facts())).toEqual(factsOf(event.flow));
  });
}

test("Hubble metrics count the facts exactly as they count built flows", async () => {
  const spec = "drop:sourceContext=pod;destinationContext=namespace|ip,flow:labelsContext=source_ip,source_namespace,destination_app,traffic_direction,tcp,port-distribution,icmp";
  const fromFlows = await createHubbleMetrics(spec);
  const fromFacts = await createHubbleMetrics(spec);
  for (const record of Object.values(records)) {
    const event = parser.ingest(record);
    fromFlows.handle(event.flow);
    fromFacts.handle(event.facts());
  }
  const exposition = await fromFacts.render();
  expect(exposition).toContain('hubble_drop_total{destination="shop",protocol="TCP",reason="POLICY_DENIED",source="shop/client-0"} 1');
  expect(exposition).toContain('hubble_port_distribution_total{port="80",protocol="TCP"} 2');
  expect(exposition).toBe(await fromFlows.render());
});
