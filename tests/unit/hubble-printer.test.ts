import { describe, expect, test } from "bun:test";
import type { Flow } from "../../src/hubble/flow/types.ts";
import { FlowPrinter, timeFormatter, type FlowsResponse, type PrinterOptions } from "../../src/hubble/printer/index.ts";
import { SYN_TIME, synFlow } from "../helpers/flows.ts";

const T = SYN_TIME;
const syn = synFlow;

const synAck: Flow = {
  ...syn,
  IP: { source: "10.0.1.2", destination: "10.0.0.1", ipVersion: 1 },
  l4: { TCP: { source_port: 80, destination_port: 43210, flags: { SYN: true, ACK: true } } },
  source: syn.destination,
  destination: syn.source,
  is_reply: { value: true },
  Summary: "TCP Flags: SYN, ACK",
};

const drop: Flow = {
  time: { seconds: 1_700_000_001, nanos: 0 },
  verdict: 2,
  drop_reason_desc: 133,
  IP: { source: "10.0.0.1", destination: "1.1.1.1", ipVersion: 1 },
  l4: { UDP: { source_port: 5353, destination_port: 53 } },
  source: { identity: 40001, namespace: "default", pod_name: "client" },
  destination: { identity: 2 },
  node_name: "node-a",
  event_type: { type: 1, sub_type: 133 },
  Summary: "UDP",
};

function print(opts: Omit<PrinterOptions, "write">, responses: FlowsResponse[]): string {
  let out = "";
  const p = new FlowPrinter({ ...opts, write: (t) => (out += t) });
  for (const r of responses) p.write(r);
  p.close();
  return out;
}

const flows = [{ flow: syn }, { flow: synAck }, { flow: drop }];

describe("compact", () => {
  test("arrows, identities, reply flip, drop reason text", () => {
    expect(print({ output: "compact" }, flows)).toBe(
      "Nov 14 22:13:20.005: default/client:43210 (ID:40001) -> shop/server:80 (ID:40002) to-endpoint FORWARDED (TCP Flags: SYN)\n" +
        "Nov 14 22:13:20.005: default/client:43210 (ID:40001) <- shop/server:80 (ID:40002) to-endpoint FORWARDED (TCP Flags: SYN, ACK)\n" +
        "Nov 14 22:13:21.000: default/client:5353 (ID:40001) <> 1.1.1.1:53 (world) Policy denied DROPPED (UDP)\n",
    );
  });

  test("--print-node-name, no IP translation, another time format", () => {
    expect(print({ output: "compact", nodeName: true, ipTranslation: false, timeFormat: "RFC3339Milli" }, [{ flow: syn }])).toBe(
      "2023-11-14T22:13:20.005Z [node-a]: 10.0.0.1:43210 (ID:40001) -> 10.0.1.2:80 (ID:40002) to-endpoint FORWARDED (TCP Flags: SYN)\n",
    );
  });

  test("ICMP has no ports; IPv6 gets brackets; lost events", () => {
    const icmp: Flow = { ...drop, l4: { ICMPv4: { type: 8, code: 0 } }, source: { identity: 1 }, destination: { identity: 0 }, Summary: "ICMPv4 EchoRequest", verdict: 1, event_type: { type: 4, sub_type: 3 } };
    const v6: Flow = { ...drop, IP: { source: "fd00::1", destination: "fd00::2", ipVersion: 2 }, source: {}, destination: {} };
    expect(
      print({ output: "compact", ipTranslation: false }, [{ flow: icmp }, { flow: v6 }, { lost_events: { source: 3, num_events_lost: 17 }, time: T }]),
    ).toBe(
      "Nov 14 22:13:21.000: 10.0.0.1 (host) <> 1.1.1.1 (unknown) to-stack FORWARDED (ICMPv4 EchoRequest)\n" +
        "Nov 14 22:13:21.000: [fd00::1]:5353 (unknown) <> [fd00::2]:53 (unknown) Policy denied DROPPED (UDP)\n" +
        "Nov 14 22:13:20.005 EVENTS LOST: HUBBLE_RING_BUFFER CPU(0) 17\n",
    );
  });
});

test("dict", () => {
  expect(print({ output: "dict", nodeName: true }, [{ flow: syn }, { flow: drop }])).toBe(
    [
      "  TIMESTAMP: Nov 14 22:13:20.005",
      "       NODE: node-a",
      "     SOURCE: default/client:43210",
      "DESTINATION: shop/server:80",
      "       TYPE: to-endpoint",
      "    VERDICT: FORWARDED",
      "    SUMMARY: TCP Flags: SYN",
      "------------",
      "  TIMESTAMP: Nov 14 22:13:21.000",
      "       NODE: node-a",
      "     SOURCE: default/client:5353",
      "DESTINATION: 1.1.1.1:53",
      "       TYPE: Policy denied",
      "    VERDICT: DROPPED",
      "    SUMMARY: UDP",
      "",
    ].join("\n"),
  );
});

test("table aligns every column to its widest cell + 3", () => {
  expect(print({ output: "table" }, [{ flow: syn }, { flow: drop }])).toBe(
    "TIMESTAMP             SOURCE                 DESTINATION      TYPE            VERDICT     SUMMARY\n" +
      "Nov 14 22:13:20.005   default/client:43210   shop/server:80   to-endpoint     FORWARDED   TCP Flags: SYN\n" +
      "Nov 14 22:13:21.000   default/client:5353    1.1.1.1:53       Policy denied   DROPPED     UDP\n",
  );
});

test("json and jsonpb print the GetFlowsResponse in proto3 JSON with proto names", () => {
  const res: FlowsResponse = { flow: { ...drop, is_reply: { value: false }, source: { ID: 0, identity: 40001, namespace: "default", pod_name: "client" } }, node_name: "node-a", time: drop.time };
  const expected =
    '{"flow":{"time":"2023-11-14T22:13:21Z","verdict":"DROPPED","IP":{"source":"10.0.0.1","destination":"1.1.1.1","ipVersion":"IPv4"},' +
    '"l4":{"UDP":{"source_port":5353,"destination_port":53}},"source":{"identity":40001,"namespace":"default","pod_name":"client"},' +
    '"destination":{"identity":2},"node_name":"node-a","event_type":{"type":1,"sub_type":133},"drop_reason_desc":"POLICY_DENIED",' +
    '"is_reply":false,"Summary":"UDP"},"node_name":"node-a","time":"2023-11-14T22:13:21Z"}\n';
  expect(print({ output: "jsonpb" }, [res])).toBe(expected);
  expect(print({ output: "json" }, [res])).toBe(expected);
  expect(print({ output: "json" }, [{ lost_events: { source: 1, num_events_lost: 3 } }])).toBe('{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"3"}}\n');
});

test("time formats", () => {
  const t = { seconds: 1_700_000_000, nanos: 120_000_000 };
  const f = (name: string) => timeFormatter(name)(t);
  expect(f("StampMilli")).toBe("Nov 14 22:13:20.120");
  expect(timeFormatter("stampmilli")({ seconds: 1_699_056_000, nanos: 0 })).toBe("Nov  4 00:00:00.000");
  expect(f("YearMonthDay")).toBe("2023-11-14");
  expect(f("YearMonthDayHour")).toBe("2023-11-14T22Z");
  expect(f("YearMonthDayHourMinute")).toBe("2023-11-14T22:13Z");
  expect(f("RFC3339")).toBe("2023-11-14T22:13:20Z");
  expect(f("RFC3339Milli")).toBe("2023-11-14T22:13:20.12Z");
  expect(f("RFC3339Micro")).toBe("2023-11-14T22:13:20.12Z");
  expect(f("RFC3339Nano")).toBe("2023-11-14T22:13:20.12Z");
  expect(timeFormatter("RFC3339Nano")({ seconds: 1_700_000_000, nanos: 1 })).toBe("2023-11-14T22:13:20.000000001Z");
  expect(f("RFC1123Z")).toBe("Tue, 14 Nov 2023 22:13:20 +0000");
  expect(timeFormatter("RFC3339")(undefined)).toBe("N/A");
  expect(() => timeFormatter("Kitchen")).toThrow(/unknown time format/);
});
