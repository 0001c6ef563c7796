/**
 * Hubble metrics: --hubble-metrics parsing, and each handler turning flows into the exact
 * exposition lines upstream's names and labels give (label values included).
 */
import { describe, expect, test } from "bun:test";
import { createHubbleMetrics, HubbleMetricsSpecError, parseHubbleMetricsSpec } from "../../src/hubble/metrics/index.ts";
import { MonitorEventType, TrafficDirection, Verdict, type Flow } from "../../src/hubble/flow/types.ts";

const POLICY_DENIED = 133;

function tcpFlow(extra: Partial<Flow> = {}, flags: NonNullable<NonNullable<Flow["l4"]>["TCP"]>["flags"] = { SYN: true }): Flow {
  return {
    verdict: Verdict.FORWARDED,
    IP: { source: "10.200.0.5", destination: "10.200.0.9", ipVersion: 1 },
    l4: { TCP: { source_port: 40000, destination_port: 8080, flags } },
    source: { ID: 5, identity: 300, namespace: "default", pod_name: "client-7d9f8-abcde", labels: ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=default"] },
    destination: { ID: 9, identity: 301, namespace: "prod", pod_name: "server-0", labels: ["k8s:app.kubernetes.io/name=server"] },
    event_type: { type: MonitorEventType.TRACE, sub_type: 0 },
    traffic_direction: TrafficDirection.EGRESS,
    is_reply: { value: false },
    ...extra,
  };
}

const dropped = (extra: Partial<Flow> = {}) => tcpFlow({ verdict: Verdict.DROPPED, drop_reason: POLICY_DENIED, drop_reason_desc: POLICY_DENIED, event_type: { type: MonitorEventType.DROP, sub_type: POLICY_DENIED }, ...extra });

/** The sample lines of the exposition (no HELP/TYPE comments). */
async function samples(spec: string, flows: Flow[]): Promise<string[]> {
  const metrics = await createHubbleMetrics(spec);
  for (const flow of flows) metrics.handle(flow);
  return (await metrics.render()).split("\n").filter((line) => line !== "" && !line.startsWith("#"));
}

describe("--hubble-metrics parsing", () => {
  test("handlers separated by spaces, commas or semicolons, options after a colon", () => {
    const specs = parseHubbleMetricsSpec("drop:sourceContext=namespace;destinationContext=pod flow,tcp port-distribution;icmp");
    expect(specs.map((s) => s.name)).toEqual(["drop", "flow", "tcp", "port-distribution", "icmp"]);
    expect(specs[0]!.text).toBe("drop:sourceContext=namespace;destinationContext=pod");
    expect(specs[0]!.context).toEqual({ source: ["namespace"], destination: ["pod"], labels: [] });
    expect(parseHubbleMetricsSpec(["drop", "flow"]).map((s) => s.name)).toEqual(["drop", "flow"]);
  });

  test("labelsContext keeps its commas; identifier lists use |; option names are case-insensitive", () => {
    const [drop, flow] = parseHubbleMetricsSpec("drop:labelsContext=source_ip,traffic_direction,destination_namespace,flow:SOURCECONTEXT=pod|ip");
    expect(drop!.context.labels).toEqual(["source_ip", "destination_namespace", "traffic_direction"]);
    expect(flow!.name).toBe("flow");
    expect(flow!.context.source).toEqual(["pod", "ip"]);
  });

  test("unknown handlers, options and values are errors naming them", () => {
    const problem = (text: string) => {
      try {
        parseHubbleMetricsSpec(text);
      } catch (error) {
        expect(error).toBeInstanceOf(HubbleMetricsSpecError);
        return (error as Error).message;
      }
      throw new Error(`${text} parsed`);
    };
    expect(problem("drop dns")).toBe('unknown metric "dns" (known: drop, flow, tcp, port-distribution, icmp)');
    expect(problem("drop;flows")).toStartWith('unknown metric "flows"');
    expect(problem("drop:sourceContext=planet")).toBe(
      'metric "drop": sourceContext: unknown context "planet" (known: identity, namespace, pod, pod-short, pod-name, dns, ip, reserved-identity, workload-name, app)',
    );
    expect(problem("tcp:colour=red")).toStartWith('metric "tcp": unknown option "colour" (known: sourceContext, destinationContext,');
    expect(problem("icmp:sourceContext")).toBe('metric "icmp": option "sourceContext" must be name=value');
    expect(problem("flow:labelsContext=source_ip,source_pods")).toStartWith('metric "flow": labelsContext: unknown label "source_pods"');
    // After a comma, a bare word is the next handler (labels all have an underscore).
    expect(problem("flow:labelsContext=source_ip,pod")).toStartWith('unknown metric "pod"');
    expect(problem("drop drop")).toBe('metric "drop" is listed twice');
  });
});

describe("hubble metric handlers", () => {
  test("drop: dropped flows by drop reason name and protocol; forwarded ones are not counted", async () => {
    const icmpDrop = dropped({ l4: { ICMPv4: { type: 8, code: 0 } } });
    expect(await samples("drop", [dropped(), dropped(), icmpDrop, tcpFlow()])).toEqual([
      'hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"} 2',
      'hubble_drop_total{protocol="ICMPv4",reason="POLICY_DENIED"} 1',
    ]);
  });

  test("drop with source and destination context", async () => {
    expect(await samples("drop:sourceContext=namespace;destinationContext=pod", [dropped()])).toEqual([
      'hubble_drop_total{destination="prod/server-0",protocol="TCP",reason="POLICY_DENIED",source="default"} 1',
    ]);
  });

  test("flow: every flow by protocol, event type, trace point and verdict", async () => {
    const policyVerdict = tcpFlow({ event_type: { type: MonitorEventType.POLICY_VERDICT, sub_type: 0 } });
    const toEndpoint = tcpFlow({ l4: { UDP: { source_port: 5353, destination_port: 53 } }, event_type: { type: MonitorEventType.TRACE, sub_type: 0 } });
    const fromEndpoint = tcpFlow({ event_type: { type: MonitorEventType.TRACE, sub_type: 5 } });
    expect(await samples("flow", [dropped(), policyVerdict, toEndpoint, fromEndpoint, fromEndpoint])).toEqual([
      'hubble_flows_processed_total{protocol="TCP",subtype="",type="Drop",verdict="DROPPED"} 1',
      'hubble_flows_processed_total{protocol="TCP",subtype="",type="PolicyVerdict",verdict="FORWARDED"} 1',
      'hubble_flows_processed_total{protocol="UDP",subtype="to-endpoint",type="Trace",verdict="FORWARDED"} 1',
      'hubble_flows_processed_total{protocol="TCP",subtype="from-endpoint",type="Trace",verdict="FORWARDED"} 2',
    ]);
  });

  test("flow with labelsContext: values in the flow's words", async () => {
    expect(await samples("flow:labelsContext=source_namespace,destination_pod,traffic_direction,source_app", [tcpFlow()])).toEqual([
      'hubble_flows_processed_total{destination_pod="server-0",protocol="TCP",source_app="client",source_namespace="default",subtype="to-endpoint",traffic_direction="egress",type="Trace",verdict="FORWARDED"} 1',
    ]);
  });

  test("tcp: SYN, SYN-ACK, FIN and RST of forwarded flows by family; dropped flows are not counted", async () => {
    const flows = [tcpFlow({}, { SYN: true }), tcpFlow({}, { SYN: true, ACK: true }), tcpFlow({}, { FIN: true, ACK: true }), tcpFlow({}, { RST: true }), tcpFlow({}, { ACK: true, PSH: true }), dropped()];
    expect(await samples("tcp", flows)).toEqual([
      'hubble_tcp_flags_total{family="IPv4",flag="SYN"} 1',
      'hubble_tcp_flags_total{family="IPv4",flag="SYN-ACK"} 1',
      'hubble_tcp_flags_total{family="IPv4",flag="FIN"} 1',
      'hubble_tcp_flags_total{family="IPv4",flag="RST"} 1',
    ]);
  });

  test("tcp with a pod-short source context", async () => {
    expect(await samples("tcp:sourceContext=pod-short", [tcpFlow()])).toEqual(['hubble_tcp_flags_total{family="IPv4",flag="SYN",source="default/client"} 1']);
  });

  test("port-distribution: forwarded requests by protocol and destination port; replies and unknown direction are not", async () => {
    const udp = tcpFlow({ l4: { UDP: { source_port: 5353, destination_port: 53 } } });
    const ping = tcpFlow({ l4: { ICMPv4: { type: 8, code: 0 } } });
    const reply = tcpFlow({ is_reply: { value: true } });
    const { is_reply: _, ...unknownDirection } = tcpFlow();
    expect(await samples("port-distribution", [tcpFlow(), tcpFlow(), udp, ping, reply, unknownDirection, dropped()])).toEqual([
      'hubble_port_distribution_total{port="8080",protocol="TCP"} 2',
      'hubble_port_distribution_total{port="53",protocol="UDP"} 1',
      'hubble_port_distribution_total{port="0",protocol="ICMPv4"} 1',
    ]);
  });

  test("icmp: messages by family and gopacket's type name, whatever the verdict", async () => {
    const icmp = (type: number, code: number, extra: Partial<Flow> = {}) => tcpFlow({ l4: { ICMPv4: { type, code } }, ...extra });
    expect(await samples("icmp:destinationContext=ip", [icmp(8, 0), icmp(0, 0), icmp(3, 3), icmp(8, 0, { verdict: Verdict.DROPPED }), tcpFlow()])).toEqual([
      'hubble_icmp_total{destination="10.200.0.9",family="IPv4",type="EchoRequest"} 2',
      'hubble_icmp_total{destination="10.200.0.9",family="IPv4",type="EchoReply"} 1',
      'hubble_icmp_total{destination="10.200.0.9",family="IPv4",type="DestinationUnreachable(Port)"} 1',
    ]);
  });

  test("the exposition names each family with HELP and TYPE", async () => {
    const metrics = await createHubbleMetrics("drop flow");
    metrics.handle(dropped());
    const text = await metrics.render();
    expect(text).toContain("# HELP hubble_drop_total Number of drops\n# TYPE hubble_drop_total counter\n");
    expect(text).toContain("# TYPE hubble_flows_processed_total counter\n");
  });
});
