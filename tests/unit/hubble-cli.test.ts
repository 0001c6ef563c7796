/** The hubble CLI's pieces: its protobuf codec (checked against protobufjs), flag parsing into a GetFlowsRequest, times, status output. */
import { describe, expect, test } from "bun:test";
import { parseTarget } from "../../src/hubble/client/grpc.ts";
import { FlowFilterBuilder } from "../../src/hubble/cli/flow-filters.ts";
import { DEFAULT_FIELD_MASK, parseObserveArgs } from "../../src/hubble/cli/observe.ts";
import { parseGoDuration } from "../../src/duration.ts";
import { parseTimeFlag } from "../../src/hubble/cli/time.ts";
import { messageType } from "../helpers/protobufjs.ts";
import { decodeMessage, encodeMessage } from "../../src/hubble/proto/wire.ts";
import { joinWithCutOff, nodeStatusText } from "../../src/hubble/printer/node-status.ts";
import { FlowPrinter } from "../../src/hubble/printer/printer.ts";
import { timeFormatter } from "../../src/hubble/printer/time-format.ts";
import { formatNodes, formatServerStatus, goDuration, thousands } from "../../src/hubble/printer/status.ts";

const DECODE = { longs: Number, enums: Number, arrays: false } as const;

describe("wire codec", () => {
  test("a GetFlowsRequest we encode decodes with protobufjs to the same request", () => {
    const req = {
      number: 2n ** 64n - 1n,
      follow: true,
      whitelist: [{ source_pod: ["default/"], verdict: [1, 2], event_type: [{ type: 4, match_sub_type: true, sub_type: 0 }], tcp_flags: [{ SYN: true }] }],
      blacklist: [{ source_identity: [2, 40000], destination_port: ["80"], encrypted: [false] }],
      since: { seconds: 1_700_000_000, nanos: 5 },
      first: false,
      field_mask: { paths: ["time", "IP"] },
    };
    const T = messageType("observer.GetFlowsRequest");
    const back = T.toObject(T.decode(encodeMessage("observer.GetFlowsRequest", req)), { longs: String, enums: Number });
    expect(back).toEqual({
      number: "18446744073709551615",
      follow: true,
      whitelist: [{ source_pod: ["default/"], verdict: [1, 2], event_type: [{ type: 4, match_sub_type: true }], tcp_flags: [{ SYN: true }] }],
      blacklist: [{ source_identity: [2, 40000], destination_port: ["80"], encrypted: [false] }],
      since: { seconds: "1700000000", nanos: 5 },
      field_mask: { paths: ["time", "IP"] },
    });
  });

  test("a GetFlowsResponse protobufjs encodes decodes to what protobufjs decodes", () => {
    const res = {
      flow: {
        time: { seconds: 1_700_000_001, nanos: 999_999_999 },
        verdict: 2,
        drop_reason_desc: 133,
        IP: { source: "fd00::1", destination: "10.0.0.1", ipVersion: 2 },
        l4: { ICMPv6: { type: 128, code: 0 } },
        source: { ID: 7, identity: 16_777_217, labels: ["k8s:a=b", "k8s:c=d"], pod_name: "p", workloads: [{ name: "w", kind: "Deployment" }] },
        destination: { identity: 2 },
        node_labels: ["x=y"],
        is_reply: { value: false },
        interface: { index: 4, name: "eth0" },
        Summary: "ICMPv6 EchoRequest ✓",
        trace_context: { parent: { trace_id: "abc" } },
      },
      node_name: "n",
      time: { seconds: 1_700_000_001, nanos: 0 },
    };
    const T = messageType("observer.GetFlowsResponse");
    const bytes = T.encode(T.fromObject(res)).finish();
    expect(decodeMessage("observer.GetFlowsResponse", bytes)).toEqual(T.toObject(T.decode(bytes), DECODE));
  });

  test("negative int32 and lost events", () => {
    const T = messageType("observer.GetFlowsResponse");
    const res = { lost_events: { source: 3, num_events_lost: 12345678901, cpu: { value: -1 } } };
    const bytes = T.encode(T.fromObject(res)).finish();
    expect(decodeMessage("observer.GetFlowsResponse", bytes)).toEqual(res);
  });

  test("truncated input is an error, not a partial message", () => {
    const bytes = encodeMessage("flow.Flow", { node_name: "node-a", Summary: "x" });
    expect(() => decodeMessage("flow.Flow", bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
  });
});

describe("filter flags to FlowFilters (as the upstream CLI builds them)", () => {
  const build = (...pairs: [string, string][]) => {
    const b = new FlowFilterBuilder();
    for (const [name, value] of pairs) b.set(name, value);
    return b.build();
  };

  test("a both-directions flag makes a source-side and a destination-side filter", () => {
    expect(build(["pod", "default/web"])).toEqual({ whitelist: [{ source_pod: ["default/web"] }, { destination_pod: ["default/web"] }], blacklist: [] });
  });

  test("one-direction flags AND into one filter", () => {
    expect(build(["from-ip", "10.0.0.0/8"], ["verdict", "DROPPED"], ["verdict", "FORWARDED"])).toEqual({ whitelist: [{ source_ip: ["10.0.0.0/8"], verdict: [2, 1] }], blacklist: [] });
  });

  test("namespaces become pod prefixes", () => {
    expect(build(["namespace", "kube-system"]).whitelist).toEqual([{ source_pod: ["kube-system/"] }, { destination_pod: ["kube-system/"] }]);
    expect(build(["to-pod", "web"], ["from-namespace", "a"], ["to-namespace", "b"]).whitelist).toEqual([{ destination_pod: ["b/web"], source_pod: ["a/"] }]);
  });

  test("--not sends only the next flag to the deny list", () => {
    expect(build(["not", "true"], ["ip", "1.1.1.1"], ["protocol", "tcp"])).toEqual({
      whitelist: [{ protocol: ["tcp"] }],
      blacklist: [{ source_ip: ["1.1.1.1"] }, { destination_ip: ["1.1.1.1"] }],
    });
  });

  test("event types with sub-types; identities by name", () => {
    expect(build(["type", "trace:to-endpoint"], ["type", "drop"], ["type", "trace:5"]).whitelist).toEqual([
      { event_type: [{ type: 4, match_sub_type: true, sub_type: 0 }, { type: 1 }, { type: 4, match_sub_type: true, sub_type: 5 }] },
    ]);
    expect(build(["from-identity", "world"], ["from-identity", "kube-apiserver"], ["from-identity", "42"]).whitelist).toEqual([{ source_identity: [2, 7, 42] }]);
  });
});

describe("hubble observe request", () => {
  const NOW = Date.UTC(2024, 0, 2, 3, 4, 5);
  const req = (...argv: string[]) => parseObserveArgs(argv, {}, NOW).request;

  test("defaults: the last 20 flows, the printed fields only", () => {
    expect(req()).toEqual({ number: 20n, follow: false, whitelist: [], blacklist: [], first: false, field_mask: { paths: DEFAULT_FIELD_MASK } });
  });

  test("--all, --first, --follow, and json without a field mask", () => {
    expect(req("--all", "-o", "json").number).toBe(2n ** 64n - 1n);
    expect(req("-o", "json").field_mask).toBeUndefined();
    expect(req("--first", "5")).toMatchObject({ number: 5n, first: true });
    expect(req("-f")).toMatchObject({ number: 0n, follow: true });
    expect(req("--follow", "--last", "3")).toMatchObject({ number: 3n, follow: true });
  });

  test("--since/--until replace the default count; --until is ignored when following", () => {
    expect(req("--since", "5m")).toMatchObject({ number: 0n, since: { seconds: NOW / 1000 - 300, nanos: 0 } });
    expect(req("--since", "1m", "--until", "2024-01-02T03:00:00.5+01:00")).toMatchObject({ until: { seconds: Date.UTC(2024, 0, 2, 2) / 1000, nanos: 500_000_000 } });
    expect(req("-f", "--until", "1m").until).toBeUndefined();
  });

  test("server from flag, env, default", () => {
    expect(parseObserveArgs([], {}, NOW).server.server).toBe("localhost:4245");
    expect(parseObserveArgs([], { HUBBLE_SERVER: "unix:///x.sock" }, NOW).server.server).toBe("unix:///x.sock");
    expect(parseObserveArgs(["--server=10.0.0.1:4244"], { HUBBLE_SERVER: "a:1" }, NOW).server.server).toBe("10.0.0.1:4244");
  });
});

describe("server addresses", () => {
  test("host:port, IPv6, tls://, unix sockets", () => {
    expect(parseTarget("localhost:4245", false)).toEqual({ authority: "localhost:4245", host: "localhost", port: 4245, tls: false });
    expect(parseTarget("[::1]:4244", false)).toMatchObject({ authority: "[::1]:4244", host: "::1" });
    expect(parseTarget("tls://relay.example:443", false)).toMatchObject({ host: "relay.example", tls: true });
    expect(parseTarget("unix:///var/run/cilium/hubble.sock", false)).toMatchObject({ path: "/var/run/cilium/hubble.sock" });
    expect(parseTarget("unix:relative.sock", false)).toMatchObject({ path: "relative.sock" });
    expect(() => parseTarget("http://x:1", false)).toThrow(/invalid server address/);
    expect(() => parseTarget("x:99999", false)).toThrow(/port out of range/);
  });
});

describe("times", () => {
  test("Go durations", () => {
    expect(parseGoDuration("5m")).toBe(300e9);
    expect(parseGoDuration("1h30m")).toBe(5400e9);
    expect(parseGoDuration("1.5s")).toBe(1.5e9);
    expect(parseGoDuration("250ms")).toBe(250e6);
    expect(parseGoDuration("0")).toBe(0);
    expect(parseGoDuration("5")).toBeUndefined();
    expect(parseGoDuration("1h43")).toBeUndefined();
    expect(parseGoDuration("yesterday")).toBeUndefined();
  });

  test("absolute layouts", () => {
    const s = (t: string) => parseTimeFlag(t, 0);
    expect(s("2024-02-29")).toEqual({ seconds: Date.UTC(2024, 1, 29) / 1000, nanos: 0 });
    expect(s("2024-02-29T10Z")).toEqual({ seconds: Date.UTC(2024, 1, 29, 10) / 1000, nanos: 0 });
    expect(s("2024-02-29T10:30-02:00")).toEqual({ seconds: Date.UTC(2024, 1, 29, 12, 30) / 1000, nanos: 0 });
    expect(s("2024-02-29T10:30:01.000123Z")).toEqual({ seconds: Date.UTC(2024, 1, 29, 10, 30, 1) / 1000, nanos: 123_000 });
    expect(s("Thu, 29 Feb 2024 10:30:01 +0100")).toEqual({ seconds: Date.UTC(2024, 1, 29, 9, 30, 1) / 1000, nanos: 0 });
    expect(() => s("2023-02-29")).toThrow("failed to convert 2023-02-29 to time");
    expect(() => s("2024-01-01T25:00:00Z")).toThrow();
  });
});

describe("status and list output", () => {
  test("Go duration text and thousands", () => {
    expect(goDuration(0)).toBe("0s");
    expect(goDuration(1.5e9)).toBe("1.5s");
    expect(goDuration(3723e9)).toBe("1h2m3s");
    expect(goDuration(120e9)).toBe("2m0s");
    expect(goDuration(250e6)).toBe("250ms");
    expect(thousands(4095)).toBe("4,095");
    expect(thousands(1234567)).toBe("1,234,567");
  });

  test("compact status of a relay with an unavailable node", () => {
    const text = formatServerStatus(
      { num_flows: 4095, max_flows: 8190, seen_flows: 10000, uptime_ns: 100e9, num_connected_nodes: { value: 2 }, num_unavailable_nodes: { value: 1 }, unavailable_nodes: ["node-c"] },
      "compact",
    );
    expect(text).toBe("Current/Max Flows: 4,095/8,190 (50.00%)\nFlows/s: 100.00\nConnected Nodes: 2/3\nUnavailable Nodes: 1\n  - node-c\n");
  });

  test("nodes table, sorted by name", () => {
    const text = formatNodes(
      [
        { name: "node-b", state: 2, uptime_ns: 0, num_flows: 0, max_flows: 0 },
        { name: "node-a", state: 1, uptime_ns: 61.4e9, seen_flows: 122, num_flows: 100, max_flows: 4095 },
      ],
      "table",
    );
    expect(text).toBe(
      ["NAME     STATUS        AGE    FLOWS/S   CURRENT/MAX-FLOWS", "node-a   Connected     1m1s   2.00      100/4095 (  2.44%)", "node-b   Unavailable   N/A    N/A       N/A", ""].join("\n"),
    );
  });
});

describe("flow summary", () => {
  test("IP trace ID before and authentication after the summary, as upstream", () => {
    let out = "";
    const p = new FlowPrinter({ output: "compact", write: (t) => (out += t) });
    p.write({
      flow: {
        time: { seconds: 0, nanos: 0 },
        verdict: 1,
        IP: { source: "10.0.0.1", destination: "10.0.0.2", ipVersion: 1 },
        event_type: { type: 4, sub_type: 0 },
        Summary: "TCP Flags: ACK",
        ip_trace_id: { trace_id: 77 },
        auth_type: 1,
      } as never,
    });
    expect(out).toBe("Jan  1 00:00:00.000: 10.0.0.1 (unknown) <> 10.0.0.2 (unknown) to-endpoint FORWARDED (IP Trace ID: 77; TCP Flags: ACK; Auth: SPIRE)\n");
  });
});

describe("relay node status events", () => {
  const time = timeFormatter("StampMilli");
  const at = { seconds: 1_700_000_000, nanos: 0 };

  test("unavailable and failed nodes are reported; connected ones are not", () => {
    expect(nodeStatusText({ node_status: { state_change: 1, node_names: ["a"] }, time: at }, "compact", time, true)).toBeUndefined();
    expect(nodeStatusText({ node_status: { state_change: 2, node_names: ["a", "b"] }, node_name: "relay", time: at }, "compact", time, true)).toBe(
      "Nov 14 22:13:20.000 [relay]: 2 nodes are unavailable: a, b\n",
    );
    expect(nodeStatusText({ node_status: { state_change: 4, node_names: ["a"], message: "tls: bad cert" }, node_name: "relay", time: at }, "table", time, true)).toBe(
      'Nov 14 22:13:20.000 [relay]: Error "tls: bad cert" on 1 nodes: a\n',
    );
  });

  test("long node lists are cut at about 50 characters", () => {
    const names = Array.from({ length: 10 }, (_, i) => `node-number-${i}`);
    expect(joinWithCutOff(names)).toBe("node-number-0, node-number-1, node-number-2 (and 7 more)");
  });
});
