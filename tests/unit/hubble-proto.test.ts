import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { compileDescriptor, DESCRIPTOR_PATH } from "../../scripts/build-protos.ts";
import { enumName, messageType, protobufjsServiceDefinition, serviceType } from "../helpers/protobufjs.ts";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { toJsonValue } from "../../src/hubble/proto/json.ts";
import { synFlow } from "../helpers/flows.ts";

describe("Hubble protos", () => {
  test("the committed descriptor matches proto/ (run bun scripts/build-protos.ts)", () => {
    expect(readFileSync(DESCRIPTOR_PATH, "utf8")).toBe(compileDescriptor());
  });

  // Wire facts of the public API, written out here independently of the .proto files.
  test.each([
    ["flow.Flow", { time: 1, uuid: 34, verdict: 2, drop_reason: 3, ethernet: 4, IP: 5, l4: 6, source: 8, destination: 9, Type: 10, node_name: 11, event_type: 19, traffic_direction: 22, trace_observation_point: 24, drop_reason_desc: 25, is_reply: 26, interface: 28, Summary: 100000 }],
    ["flow.Endpoint", { ID: 1, identity: 2, namespace: 3, labels: 4, pod_name: 5, workloads: 6, cluster_name: 7 }],
    ["flow.Layer4", { TCP: 1, UDP: 2, ICMPv4: 3, ICMPv6: 4, SCTP: 5 }],
    ["flow.TCPFlags", { FIN: 1, SYN: 2, RST: 3, PSH: 4, ACK: 5, URG: 6, ECE: 7, CWR: 8, NS: 9 }],
    ["flow.FlowFilter", { source_ip: 1, source_pod: 2, destination_ip: 3, destination_pod: 4, verdict: 5, event_type: 6, source_label: 10, destination_label: 11, protocol: 12, source_port: 13, destination_port: 14, reply: 15, source_identity: 19, destination_identity: 20, tcp_flags: 23, node_name: 24, uuid: 29, traffic_direction: 30, drop_reason_desc: 33 }],
    ["observer.GetFlowsRequest", { number: 1, follow: 3, blacklist: 5, whitelist: 6, since: 7, until: 8, first: 9 }],
    ["observer.GetFlowsResponse", { flow: 1, node_status: 2, lost_events: 3, node_name: 1000, time: 1001 }],
    ["observer.ServerStatusResponse", { num_flows: 1, max_flows: 2, seen_flows: 3, uptime_ns: 4, version: 8 }],
    ["peer.ChangeNotification", { name: 1, address: 2, type: 3, tls: 4 }],
  ] as const)("%s field numbers", (type, fields) => {
    const t = messageType(type);
    for (const [name, id] of Object.entries(fields)) expect([name, t.fields[name]?.id]).toEqual([name, id]);
  });

  test("enums and services", () => {
    expect(enumName("flow.DropReason", 133)).toBe("POLICY_DENIED");
    expect(enumName("flow.DropReason", 181)).toBe("POLICY_DENY");
    expect(enumName("flow.TraceObservationPoint", 101)).toBe("TO_ENDPOINT");
    expect(enumName("flow.Verdict", 2)).toBe("DROPPED");
    expect(serviceType("observer.Observer").methodsArray.map((m) => m.name)).toEqual(["GetFlows", "GetAgentEvents", "GetDebugEvents", "GetNodes", "GetNamespaces", "ServerStatus"]);
    expect(serviceType("peer.Peer").methods.Notify?.responseStream).toBe(true);
    expect(serviceType("grpc.health.v1.Health").methods.Check).toBeDefined();
  });

  test("a Flow round-trips through the wire format", () => {
    const Flow = messageType("flow.Flow");
    const flow = { verdict: 2, drop_reason_desc: 133, is_reply: { value: false }, l4: { UDP: { source_port: 1, destination_port: 53 } }, Summary: "UDP" };
    const bytes = Flow.encode(flow).finish();
    // Summary is field 100000, length-delimited: tag = varint(100000 << 3 | 2) = 0x82 0xea 0x30.
    expect([...bytes].slice(-7)).toEqual([0x82, 0xea, 0x30, 3, 0x55, 0x44, 0x50]);
    expect(Flow.toObject(Flow.decode(bytes), { enums: String })).toEqual({ verdict: "DROPPED", drop_reason_desc: "POLICY_DENIED", is_reply: { value: false }, l4: { UDP: { source_port: 1, destination_port: 53 } }, Summary: "UDP" });
  });
});

describe("the gRPC codec of the agent and the relay (ours, not protobufjs)", () => {
  const flow = {
    ...synFlow,
    uuid: "0b6c2a3e-1",
    drop_reason_desc: 133,
    ethernet: { source: "aa:bb:cc:dd:ee:ff", destination: "11:22:33:44:55:66" },
    source: { ...synFlow.source, identity: 16_777_217, labels: ["k8s:a=b", "k8s:c=d"], workloads: [{ name: "w", kind: "Deployment" }] },
    interface: { index: 4, name: "lxc1" },
    Summary: "TCP Flags: SYN ✓",
  };
  const response = { flow, node_name: "node-a", time: { seconds: 1_700_000_001, nanos: 999_999_999 } };
  const request = {
    number: 20,
    follow: true,
    whitelist: [{ source_pod: ["shop/"], verdict: [1, 2], tcp_flags: [{ SYN: true }], source_identity: [2, 40000] }],
    blacklist: [],
    since: { seconds: 1_700_000_000, nanos: 5 },
  };

  test("it writes the bytes protobufjs writes, and reads them as protobufjs does", () => {
    const ours = grpcServiceDefinition("observer.Observer").GetFlows!;
    const reference = protobufjsServiceDefinition("observer.Observer").GetFlows!;
    for (const [type, value, serialize, refSerialize, deserialize, refDeserialize] of [
      ["observer.GetFlowsResponse", response, ours.responseSerialize, reference.responseSerialize, ours.responseDeserialize, reference.responseDeserialize],
      ["observer.GetFlowsRequest", request, ours.requestSerialize, reference.requestSerialize, ours.requestDeserialize, reference.requestDeserialize],
    ] as const) {
      const [bytes, refBytes] = [serialize(value as never), refSerialize(value as never)];
      expect([...bytes]).toEqual([...refBytes]);
      expect(deserialize(refBytes)).toEqual(refDeserialize(refBytes));
      expect(toJsonValue(type, deserialize(bytes) as object)).toEqual(toJsonValue(type, value));
    }
  });

  test("every service of the descriptor, method by method, as protobufjs defines it", () => {
    for (const name of ["observer.Observer", "peer.Peer", "grpc.health.v1.Health"]) {
      const strip = (d: Record<string, any>) => Object.fromEntries(Object.entries(d).map(([m, v]) => [m, { path: v.path, requestStream: v.requestStream, responseStream: v.responseStream, originalName: v.originalName }]));
      expect(strip(grpcServiceDefinition(name))).toEqual(strip(protobufjsServiceDefinition(name)));
    }
  });
});
