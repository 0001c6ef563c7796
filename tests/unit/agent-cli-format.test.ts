import { describe, expect, test } from "bun:test";
import type { Endpoint, StatusResponse } from "../../src/agent/api/types.ts";
import { formatEndpointList } from "../../src/agent/cli/endpoint-format.ts";
import { formatBpfPolicy, formatIdentities, formatPortProtocol, formatTrace, parseDuration, repeatedFlag } from "../../src/agent/cli/policy-format.ts";
import { formatStatus } from "../../src/agent/cli/status-format.ts";
import { tabwrite } from "../../src/agent/cli/tabwriter.ts";

/** Lines without trailing blanks: the layout is what matters, not the padding after the text. */
const lines = (text: string) => text.split("\n").map((line) => line.trimEnd());

describe("Go's tabwriter layout", () => {
  test("column blocks: consecutive lines with a cell in a column share its width; a line without tabs ends the block", () => {
    const text = "a\tbbb\tc\naaaa\tb\nx\nyy\tz\n";
    expect(tabwrite(text, { minWidth: 2, padding: 3 })).toBe("a      bbb   c\naaaa   b\nx\nyy   z\n");
  });

  test("minimum width, trailing tab-terminated cells padded, characters not bytes", () => {
    expect(tabwrite("é\tb\t\nab\tc\t\n", { minWidth: 5, padding: 3 })).toBe("é    b    \nab   c    \n");
  });
});

const status: StatusResponse = {
  cilium: { state: "Ok", msg: "0.1.0 (abc)" },
  kvstore: { state: "Disabled", msg: "" },
  kubernetes: { state: "Disabled", msg: "" },
  "node-name": "node-a",
  kernel: "6.18.0",
  datapath: { state: "Ok", msg: "", details: { "attach-mode": "tcx", programs: ["cil_from_container", "cil_to_container"], kernel: "6.18.0-x" } },
  ipam: {
    status: "IPv4: 3/254 allocated from 10.200.0.0/24",
    ipv4: { cidr: "10.200.0.0/24", gateway: "10.200.0.1", used: 3, free: 251, capacity: 254 },
    allocations: { "10.200.0.1": "router", "10.200.0.2": "c1:eth0", "10.200.0.3": "c2:eth0" },
  },
  endpoints: { total: 3, "by-state": { ready: [1, 2], regenerating: [3] } },
  problems: [],
};

describe("cilium status", () => {
  test("brief: subsystems, node, IPAM and endpoints by state", () => {
    expect(lines(formatStatus(status, false))).toEqual([
      "KVStore:      Disabled",
      "Kubernetes:   Disabled",
      "Cilium:       Ok   0.1.0 (abc)",
      "NodeName:     node-a",
      "IPAM:         IPv4: 3/254 allocated from 10.200.0.0/24",
      "Endpoints:    3 (1 regenerating, 2 ready)",
      "",
    ]);
  });

  test("verbose: kernel, the datapath's report, addresses with owners, ids by state, health", () => {
    expect(lines(formatStatus(status, true))).toEqual([
      "KVStore:       Disabled",
      "Kubernetes:    Disabled",
      "Cilium:        Ok   0.1.0 (abc)",
      "NodeName:      node-a",
      "Kernel:        6.18.0-x",
      "Datapath:      Ok",
      "Attach mode:   tcx",
      "Programs:      cil_from_container, cil_to_container",
      "IPAM:          IPv4: 3/254 allocated from 10.200.0.0/24",
      "Allocated addresses:",
      "  10.200.0.1 (router)",
      "  10.200.0.2 (c1:eth0)",
      "  10.200.0.3 (c2:eth0)",
      "Endpoints:        3 (1 regenerating, 2 ready)",
      "  regenerating:   3",
      "  ready:          1, 2",
      "Health:           Ok",
      "",
    ]);
  });

  test("problems are always shown; no endpoints is 0", () => {
    const degraded: StatusResponse = {
      ...status,
      cilium: { state: "Degraded", msg: "0.1.0 (abc)" },
      endpoints: { total: 0, "by-state": {} },
      problems: ["endpoint 3: the datapath could not re-apply it: map full"],
    };
    const text = lines(formatStatus(degraded, false));
    expect(text).toContain("Cilium:       Degraded   0.1.0 (abc)");
    expect(text).toContain("Endpoints:    0");
    expect(text.slice(-3)).toEqual(["Problems:", "  endpoint 3: the datapath could not re-apply it: map full", ""]);
  });
});

describe("cilium endpoint list", () => {
  const endpoint = (id: number, labels: string[], ipv4: string, state: Endpoint["state"]) => ({ id, labels, addressing: { ipv4 }, state }) as Endpoint;

  test("upstream's columns, sorted by id, one row per label", () => {
    const text = formatEndpointList(
      [endpoint(12, ["k8s:io.kubernetes.pod.namespace=default", "k8s:app=web"], "10.200.0.2", "ready"), endpoint(3, [], "10.200.0.3", "regenerating")],
      { headers: true },
    );
    expect(lines(text)).toEqual([
      "ENDPOINT   POLICY (ingress)   POLICY (egress)   IDENTITY        LABELS (source:key[=value])               IPv6   IPv4         STATUS",
      "           ENFORCEMENT        ENFORCEMENT",
      "3          Disabled           Disabled          <no label id>   no labels                                        10.200.0.3   regenerating",
      "12         Disabled           Disabled          <no label id>   k8s:app=web                                      10.200.0.2   ready",
      "                                                                k8s:io.kubernetes.pod.namespace=default",
      "",
    ]);
  });

  test("without headers; an identity when there is one", () => {
    const text = formatEndpointList([{ ...endpoint(1, ["reserved:host"], "10.200.0.9", "ready"), identity: 1 }], { headers: false });
    expect(lines(text)).toEqual(["1    Disabled   Disabled   1    reserved:host        10.200.0.9   ready", ""]);
  });
});

describe("policy, identity and bpf policy output", () => {

  test("identity list: ID and LABELS, one label per line", () => {
    expect(lines(formatIdentities([{ id: 1, labels: ["reserved:host"] }, { id: 256, labels: ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"] }]))).toEqual([
      "ID    LABELS",
      "1     reserved:host",
      "256   k8s:app=web",
      "      k8s:io.kubernetes.pod.namespace=shop",
      "",
    ]);
  });

  test("bpf policy get: enforcement, then one row per entry", () => {
    const text = formatBpfPolicy(3, {
      endpointFound: true,
      ingressEnforced: true,
      egressEnforced: false,
      entries: [
        { direction: "ingress", identity: 0, protocol: 0, port: 0, prefixLength: 0, deny: false },
        { direction: "ingress", identity: 256, protocol: 6, port: 8000, prefixLength: 13, deny: true },
        { direction: "egress", identity: 2, protocol: 17, port: 0, prefixLength: 0, deny: false },
      ],
    });
    expect(lines(text)).toEqual([
      "Endpoint 3",
      "Ingress policy enforcement: Enabled",
      "Egress policy enforcement:  Disabled",
      "POLICY   DIRECTION   IDENTITY             PORT/PROTO      PREFIX",
      "Allow    Ingress     0 (any)              ANY             0",
      "Deny     Ingress     256                  8000-8007/TCP   21",
      "Allow    Egress      2 (reserved:world)   ANY/UDP         8",
      "",
    ]);
    expect(formatBpfPolicy(4, { endpointFound: false, ingressEnforced: false, egressEnforced: false, entries: [] })).toBe(
      "Endpoint 4 (no endpoint map entry)\nIngress policy enforcement: Disabled\nEgress policy enforcement:  Disabled\nNo policy entries\n",
    );
    expect(formatPortProtocol({ protocol: 1, port: 8, prefixLength: 16 })).toBe("8/ICMP");
  });

  test("trace: both directions, the deciding rules, the final verdict", () => {
    const direction = (d: "ingress" | "egress", verdict: "allowed" | "denied", reason: string, deciding: string[]) => ({
      direction: d,
      verdict,
      reason,
      enforced: d === "ingress",
      "selecting-rules": d === "ingress" ? ["shop/db"] : [],
      "deciding-rules": deciding,
    });
    const text = formatTrace({
      verdict: "allowed",
      from: ["k8s:app=web"],
      to: ["k8s:app=db"],
      protocol: "TCP",
      dport: 5432,
      egress: direction("egress", "allowed", "allowed: egress policy is not enforced", []),
      ingress: direction("ingress", "allowed", "allowed by rule shop/db", ["shop/db"]),
    });
    expect(text.split("\n")).toEqual([
      "----------------------------------------------------------------",
      "Tracing From: [k8s:app=web] => To: [k8s:app=db] Ports: [5432/TCP]",
      "",
      "Egress of the source: ALLOWED",
      "  allowed: egress policy is not enforced",
      "  enforced: no; rules selecting the source: none",
      "",
      "Ingress of the destination: ALLOWED",
      "  allowed by rule shop/db",
      "  enforced: yes; rules selecting the destination: shop/db",
      "  deciding rules: shop/db",
      "",
      "Final verdict: ALLOWED",
      "",
    ]);
  });

  test("repeated flags and durations", () => {
    expect(repeatedFlag(["-s", "a=1", "--src=b=2,c=3", "-d", "x", "--", "-s", "no"], ["-s", "--src"])).toEqual(["a=1", "b=2", "c=3"]);
    expect(() => repeatedFlag(["-s"], ["-s"])).toThrow("-s needs a value");
    expect([parseDuration("30s", "--t"), parseDuration("250ms", "--t"), parseDuration("2m", "--t"), parseDuration("5", "--t")]).toEqual([30_000, 250, 120_000, 5000]);
    expect(() => parseDuration("soon", "--max-wait-time")).toThrow('--max-wait-time "soon": expected a duration such as 30s, 500ms or 2m');
  });
});
