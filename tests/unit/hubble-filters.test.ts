import { describe, expect, test } from "bun:test";
import { compileFilter, compileFilterLists, FilterError, LabelSelectorError, parseLabelSelector, type FlowFilter } from "../../src/hubble/filters/index.ts";
import type { Flow } from "../../src/hubble/flow/types.ts";

const synTcp: Flow = {
  uuid: "a",
  verdict: 1,
  IP: { source: "10.0.0.1", destination: "10.0.1.2", ipVersion: 1 },
  l4: { TCP: { source_port: 43210, destination_port: 80, flags: { SYN: true } } },
  source: { ID: 101, identity: 40001, namespace: "default", pod_name: "client-7d9", labels: ["k8s:app=client", "k8s:env=prod"] },
  destination: { ID: 202, identity: 40002, namespace: "shop", pod_name: "server-1", labels: ["k8s:app=server", "container:tier=db"] },
  node_name: "node-a",
  event_type: { type: 4, sub_type: 0 },
  traffic_direction: 2,
  trace_observation_point: 101,
  is_reply: { value: false },
  interface: { index: 7 },
};

const droppedUdp: Flow = {
  uuid: "b",
  verdict: 2,
  drop_reason_desc: 133,
  IP: { source: "10.0.0.1", destination: "192.168.5.5", ipVersion: 1 },
  l4: { UDP: { source_port: 5353, destination_port: 53 } },
  source: { identity: 40001, namespace: "default", pod_name: "client-7d9", labels: ["k8s:app=client"] },
  destination: { identity: 2, labels: ["reserved:world"] },
  node_name: "node-b",
  event_type: { type: 1, sub_type: 133 },
  traffic_direction: 2,
};

const replyIcmp: Flow = {
  uuid: "c",
  verdict: 1,
  IP: { source: "fd00::2", destination: "fd00::1", ipVersion: 2 },
  l4: { ICMPv6: { type: 129, code: 0 } },
  node_name: "cluster-x/node-c",
  event_type: { type: 4, sub_type: 3 },
  traffic_direction: 1,
  is_reply: { value: true },
};

const ALL = [synTcp, droppedUdp, replyIcmp];
const which = (f: FlowFilter) => ALL.filter(compileFilter(f)).map((x) => x.uuid);

describe("single fields", () => {
  test("empty filter matches everything", () => expect(which({})).toEqual(["a", "b", "c"]));
  test("uuid", () => expect(which({ uuid: ["b", "zz"] })).toEqual(["b"]));
  test("source_ip exact and CIDR", () => {
    expect(which({ source_ip: ["10.0.0.1"] })).toEqual(["a", "b"]);
    expect(which({ source_ip: ["fd00::2"] })).toEqual(["c"]);
    expect(which({ destination_ip: ["10.0.1.0/24"] })).toEqual(["a"]);
    expect(which({ destination_ip: ["192.168.0.0/16", "fd00::1"] })).toEqual(["b", "c"]);
    expect(which({ destination_ip: ["0.0.0.0/0"] })).toEqual(["a", "b"]);
  });
  test("invalid CIDR is an error", () => expect(() => compileFilter({ source_ip: ["10.0.0.0/33"] })).toThrow(FilterError));
  test("pods: namespace/prefix, namespace/, bare prefix in default", () => {
    expect(which({ source_pod: ["default/client"] })).toEqual(["a", "b"]);
    expect(which({ source_pod: ["client-7"] })).toEqual(["a", "b"]);
    expect(which({ destination_pod: ["shop/"] })).toEqual(["a"]);
    expect(which({ destination_pod: ["server"] })).toEqual([]);
    expect(which({ destination_pod: ["shop/server-2"] })).toEqual([]);
    expect(() => compileFilter({ source_pod: [""] })).toThrow(FilterError);
  });
  test("labels", () => {
    expect(which({ source_label: ["app=client"] })).toEqual(["a", "b"]);
    expect(which({ source_label: ["k8s:env=prod"] })).toEqual(["a"]);
    expect(which({ destination_label: ["reserved:world"] })).toEqual(["b"]);
    expect(which({ destination_label: ["tier"] })).toEqual(["a"]);
    expect(which({ destination_label: ["k8s:tier"] })).toEqual([]);
    expect(which({ destination_label: ["app in (server, other)", "reserved:world"] })).toEqual(["a", "b"]);
  });
  test("identities", () => {
    expect(which({ source_identity: [40001] })).toEqual(["a", "b"]);
    expect(which({ destination_identity: [2, 40002] })).toEqual(["a", "b"]);
    expect(which({ source_identity: [0] })).toEqual(["c"]);
  });
  test("verdict and drop reason", () => {
    expect(which({ verdict: [2] })).toEqual(["b"]);
    expect(which({ verdict: [1, 2] })).toEqual(["a", "b", "c"]);
    expect(which({ drop_reason_desc: [133] })).toEqual(["b"]);
    expect(which({ drop_reason_desc: [181] })).toEqual([]);
  });
  test("event type with and without sub-type", () => {
    expect(which({ event_type: [{ type: 4 }] })).toEqual(["a", "c"]);
    expect(which({ event_type: [{ type: 4, match_sub_type: true, sub_type: 3 }] })).toEqual(["c"]);
    expect(which({ event_type: [{ type: 4, match_sub_type: true }] })).toEqual(["a"]);
    expect(which({ event_type: [{ type: 1 }, { type: 5 }] })).toEqual(["b"]);
  });
  test("protocol", () => {
    expect(which({ protocol: ["TCP"] })).toEqual(["a"]);
    expect(which({ protocol: ["udp", "icmp"] })).toEqual(["b", "c"]);
    expect(which({ protocol: ["icmpv4"] })).toEqual([]);
    expect(which({ protocol: ["http"] })).toEqual([]);
    expect(() => compileFilter({ protocol: ["gopher"] })).toThrow(FilterError);
  });
  test("ports", () => {
    expect(which({ destination_port: ["80", "53"] })).toEqual(["a", "b"]);
    expect(which({ source_port: ["5353"] })).toEqual(["b"]);
    expect(() => compileFilter({ source_port: ["http"] })).toThrow(FilterError);
    expect(() => compileFilter({ source_port: ["70000"] })).toThrow(FilterError);
  });
  test("tcp flags: every flag of a value must be set", () => {
    expect(which({ tcp_flags: [{ SYN: true }] })).toEqual(["a"]);
    expect(which({ tcp_flags: [{ SYN: true, ACK: true }] })).toEqual([]);
    expect(which({ tcp_flags: [{ SYN: true, ACK: true }, { SYN: true }] })).toEqual(["a"]);
    expect(which({ tcp_flags: [{ FIN: true }] })).toEqual([]);
  });
  test("traffic direction", () => {
    expect(which({ traffic_direction: [1] })).toEqual(["c"]);
    expect(which({ traffic_direction: [2] })).toEqual(["a", "b"]);
  });
  test("node name globs and clusters", () => {
    expect(which({ node_name: ["node-a"] })).toEqual(["a"]);
    expect(which({ node_name: ["node-*"] })).toEqual(["a", "b", "c"]);
    expect(which({ node_name: ["default/node-b"] })).toEqual(["b"]);
    expect(which({ node_name: ["cluster-x/"] })).toEqual(["c"]);
    expect(which({ node_name: ["*/node-c"] })).toEqual(["c"]);
  });
  test("reply: unknown reply state matches neither", () => {
    expect(which({ reply: [true] })).toEqual(["c"]);
    expect(which({ reply: [false] })).toEqual(["a"]);
    expect(which({ reply: [true, false] })).toEqual(["a", "c"]);
  });
  test("ip version and interface", () => {
    expect(which({ ip_version: [2] })).toEqual(["c"]);
    expect(which({ interface: [{ index: 7 }] })).toEqual(["a"]);
  });
  test("fields about data this node lacks match nothing", () => {
    expect(which({ source_fqdn: ["*.example.com"] })).toEqual([]);
    expect(which({ http_status_code: ["200"] })).toEqual([]);
    expect(which({ dns_query: ["example"] })).toEqual([]);
  });
  test("CEL is rejected", () => expect(() => compileFilter({ experimental: { cel_expression: ["true"] } })).toThrow(FilterError));
});

describe("combination", () => {
  test("fields in one filter AND", () => {
    expect(which({ source_pod: ["default/"], verdict: [2] })).toEqual(["b"]);
    expect(which({ protocol: ["tcp"], destination_port: ["53"] })).toEqual([]);
  });
  test("filters in a list OR; whitelist minus blacklist", () => {
    const pass = (wl: FlowFilter[], bl: FlowFilter[]) => ALL.filter(compileFilterLists(wl, bl)).map((x) => x.uuid);
    expect(pass([], [])).toEqual(["a", "b", "c"]);
    expect(pass([{ verdict: [2] }, { protocol: ["icmp"] }], [])).toEqual(["b", "c"]);
    expect(pass([], [{ verdict: [2] }])).toEqual(["a", "c"]);
    expect(pass([{ source_ip: ["10.0.0.1"] }], [{ destination_port: ["53"] }])).toEqual(["a"]);
    expect(pass([{ source_ip: ["10.0.0.1"] }], [{ protocol: ["tcp"] }, { protocol: ["udp"] }])).toEqual([]);
  });
});

describe("label selectors", () => {
  const labels = ["k8s:app=web", "k8s:env=prod", "container:app=other", "reserved:host"];
  const m = (s: string) => parseLabelSelector(s)(labels);
  test("equality, inequality, sets, existence", () => {
    expect(m("app=web")).toBe(true);
    expect(m("app==other")).toBe(true);
    expect(m("k8s:app=other")).toBe(false);
    expect(m("any:app=other")).toBe(true);
    expect(m("env!=prod")).toBe(false);
    expect(m("missing!=x")).toBe(true);
    expect(m("env in (dev, prod)")).toBe(true);
    expect(m("env notin (dev,prod)")).toBe(false);
    expect(m("reserved:host")).toBe(true);
    expect(m("!missing")).toBe(true);
    expect(m("!env")).toBe(false);
    expect(m("app=web, env=prod")).toBe(true);
    expect(m("app=web,env=dev")).toBe(false);
  });
  test("syntax errors", () => {
    expect(() => parseLabelSelector("app=web,")).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector("a b")).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector("app=we b")).toThrow(LabelSelectorError);
  });
});
