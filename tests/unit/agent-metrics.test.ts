/**
 * The agent's metrics: listen addresses, the metrics options of the configuration, and the
 * metric families a snapshot of the agent becomes (upstream's names, labels and drop texts).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConfigDir } from "../../src/agent/config-sources.ts";
import { ConfigError, configByOption, resolveAgentConfig, type ConfigSources, type HostFacts } from "../../src/agent/config.ts";
import { agentMetricFamilies, type AgentSnapshot } from "../../src/agent/metrics/families.ts";
import { parseListenAddress } from "../../src/metrics/listen-address.ts";

const host: HostFacts = { hostname: "node-a", groupId: (name) => (name === "root" ? 0 : undefined), groupName: () => "root", primaryGid: 0 };

function resolve(flags: ConfigSources["flags"], configDir?: ConfigSources["configDir"]) {
  return resolveAgentConfig({ flags: { "ipv4-range": "10.200.0.0/24", ...flags }, env: {}, configDir }, host);
}

function problems(flags: ConfigSources["flags"]): string[] {
  try {
    resolve(flags);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("no problem");
}

describe("listen addresses", () => {
  test("host:port, :port and [v6]:port", () => {
    expect(parseListenAddress(":9962")).toEqual({ value: { port: 9962 } });
    expect(parseListenAddress("127.0.0.1:9962")).toEqual({ value: { hostname: "127.0.0.1", port: 9962 } });
    expect(parseListenAddress("[::1]:0")).toEqual({ value: { hostname: "::1", port: 0 } });
  });

  test("a missing or bad port, or an unbracketed IPv6 host, is a problem", () => {
    expect(parseListenAddress("9962")).toEqual({ problem: 'must be "host:port" or ":port" (e.g. ":9962")' });
    expect(parseListenAddress(":99999")).toEqual({ problem: 'port "99999" must be a number from 0 to 65535' });
    expect(parseListenAddress("localhost:http")).toEqual({ problem: 'port "http" must be a number from 0 to 65535' });
    expect(parseListenAddress("::1:9962")).toEqual({ problem: 'an IPv6 host must be in brackets, e.g. "[::1]:9962"' });
  });
});

describe("metrics options", () => {
  test("off by default; set by flag or config dir; shown in the effective configuration", () => {
    const off = resolve({});
    expect([off.prometheusServeAddr, off.hubbleMetricsServer, off.hubbleMetrics]).toEqual([undefined, undefined, undefined]);
    expect(configByOption(off)).toMatchObject({ "prometheus-serve-addr": "", "hubble-metrics-server": "", "hubble-metrics": [] });

    const dir = mkdtempSync(join(tmpdir(), "metrics-config-"));
    try {
      writeFileSync(join(dir, "prometheus-serve-addr"), ":9962\n");
      writeFileSync(join(dir, "hubble-metrics-server"), ":9965");
      writeFileSync(join(dir, "hubble-metrics"), "drop:sourceContext=namespace;destinationContext=pod flow tcp");
      const config = resolve({}, { path: dir, values: readConfigDir(dir) });
      expect([config.prometheusServeAddr, config.hubbleMetricsServer, config.hubbleMetrics]).toEqual([
        ":9962",
        ":9965",
        ["drop:sourceContext=namespace;destinationContext=pod", "flow", "tcp"],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad values are problems naming the flag; handlers need a server", () => {
    expect(problems({ "prometheus-serve-addr": "9962" })).toEqual(['--prometheus-serve-addr "9962": must be "host:port" or ":port" (e.g. ":9962")']);
    expect(problems({ "hubble-metrics-server": ":9965", "hubble-metrics": "drop,dns" })).toEqual([
      '--hubble-metrics "drop,dns": unknown metric "dns" (known: drop, flow, tcp, port-distribution, icmp)',
    ]);
    expect(problems({ "hubble-metrics": "drop" })).toEqual(["--hubble-metrics needs --hubble-metrics-server, the address to serve them on"]);
  });
});

describe("agent metric families", () => {
  const snapshot: AgentSnapshot = {
    endpointStates: ["ready", "ready", "regenerating"],
    policyRules: 3,
    policyRevision: 7,
    datapathCounters: [
      { reason: 0, direction: 1, packets: 10, bytes: 1000 },
      { reason: 0, direction: 2, packets: 12, bytes: 1200 },
      { reason: 133, direction: 2, packets: 4, bytes: 240 },
      { reason: 133, direction: 1, packets: 1, bytes: 60 },
      { reason: 181, direction: 1, packets: 2, bytes: 120 },
      { reason: 127, direction: 0, packets: 9, bytes: 0 },
    ],
    mapFill: [
      { map: "cilium_lxc", entries: 3, maxEntries: 65535 },
      { map: "cilium_policy", entries: 16, maxEntries: 64 },
    ],
    apiLatency: [{ method: "GET", path: "/v1/healthz", status: 200, bucketCounts: [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], count: 2, sumSeconds: 0.012 }],
  };
  const families = new Map(agentMetricFamilies(snapshot).map((f) => [f.name, f]));
  const lines = (name: string) => families.get(name)!.samples.map((s) => `${s.name ?? name}{${Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(",")}} ${s.value}`);

  test("endpoints: the total and every state", () => {
    expect(lines("cilium_endpoint")).toEqual(["cilium_endpoint{} 3"]);
    expect(lines("cilium_endpoint_state")).toEqual([
      'cilium_endpoint_state{endpoint_state="waiting-for-identity"} 0',
      'cilium_endpoint_state{endpoint_state="not-ready"} 0',
      'cilium_endpoint_state{endpoint_state="regenerating"} 1',
      'cilium_endpoint_state{endpoint_state="ready"} 2',
      'cilium_endpoint_state{endpoint_state="disconnecting"} 0',
      'cilium_endpoint_state{endpoint_state="disconnected"} 0',
    ]);
    expect(lines("cilium_policy")).toEqual(["cilium_policy{} 3"]);
    expect(lines("cilium_policy_max_revision")).toEqual(["cilium_policy_max_revision{} 7"]);
  });

  test("drops by reason text and direction, forwards by direction; lost events are not packets", () => {
    expect(lines("cilium_drop_count_total")).toEqual([
      'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} 4',
      'cilium_drop_count_total{direction="INGRESS",reason="Policy denied"} 1',
      'cilium_drop_count_total{direction="INGRESS",reason="Policy denied by denylist"} 2',
    ]);
    expect(lines("cilium_drop_bytes_total")).toContain('cilium_drop_bytes_total{direction="EGRESS",reason="Policy denied"} 240');
    expect(lines("cilium_forward_count_total")).toEqual(['cilium_forward_count_total{direction="EGRESS"} 12', 'cilium_forward_count_total{direction="INGRESS"} 10']);
    expect(lines("cilium_forward_bytes_total")).toEqual(['cilium_forward_bytes_total{direction="EGRESS"} 1200', 'cilium_forward_bytes_total{direction="INGRESS"} 1000']);
  });

  test("map pressure is entries over capacity", () => {
    expect(lines("cilium_bpf_map_pressure")).toEqual([`cilium_bpf_map_pressure{map_name="cilium_lxc"} ${3 / 65535}`, 'cilium_bpf_map_pressure{map_name="cilium_policy"} 0.25']);
  });

  test("API latency as a histogram with le last", () => {
    const api = lines("cilium_agent_api_process_time_seconds");
    expect(api[0]).toBe('cilium_agent_api_process_time_seconds_bucket{method="GET",path="/v1/healthz",return_code="200",le="0.005"} 1');
    expect(api.slice(-3)).toEqual([
      'cilium_agent_api_process_time_seconds_bucket{method="GET",path="/v1/healthz",return_code="200",le="+Inf"} 2',
      'cilium_agent_api_process_time_seconds_sum{method="GET",path="/v1/healthz",return_code="200"} 0.012',
      'cilium_agent_api_process_time_seconds_count{method="GET",path="/v1/healthz",return_code="200"} 2',
    ]);
  });
});
