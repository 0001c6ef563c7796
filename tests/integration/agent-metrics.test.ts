/**
 * The agent's /metrics over HTTP: a daemon in this process with the recording fake datapath and
 * --prometheus-serve-addr on loopback, scraped as Prometheus would, while endpoints come and go,
 * API requests are served and "the kernel" counts drops. Also the start-up errors. Needs no root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "../../src/agent/api/client.ts";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import { loadAgentConfig } from "../../src/agent/config-sources.ts";
import type { AgentConfig } from "../../src/agent/config.ts";
import { startDaemon, type Daemon } from "../../src/agent/daemon.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

let dir: string;
let port: number;
let config: AgentConfig;
let datapath: RecordingDatapath;
let daemon: Daemon | undefined;
let client: AgentClient;

/** A port nothing listens on right now. */
function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const free = probe.port!;
  probe.stop(true);
  return free;
}

function configFor(name: string, address: string): AgentConfig {
  return loadAgentConfig(
    {
      "node-name": name,
      "ipv4-range": "10.211.0.0/28",
      "state-dir": join(dir, name, "state"),
      "bpf-root": join(dir, name, "bpf"),
      "socket-path": join(dir, name, "cilium.sock"),
      "prometheus-serve-addr": address,
    },
    {},
  ).config;
}

async function scrape(): Promise<{ status: number; type: string | null; lines: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { status: response.status, type: response.headers.get("content-type"), lines: (await response.text()).split("\n") };
}

/** The value of one sample line (name and labels exactly as exposed), or undefined. */
async function sample(series: string): Promise<number | undefined> {
  const line = (await scrape()).lines.find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function attachment(containerId: string, ip: string): EndpointChangeRequest {
  return {
    "container-id": containerId,
    "container-interface-name": "eth0",
    "interface-name": `lxc${containerId}`,
    "interface-index": 42,
    mac: "0a:58:0a:d3:00:02",
    "host-mac": "0a:58:0a:d3:00:01",
    addressing: { ipv4: ip },
    "k8s-namespace": "default",
    "k8s-pod-name": `pod-${containerId}`,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-metrics-"));
  port = freePort();
  config = configFor("metrics-node", `127.0.0.1:${port}`);
  datapath = new RecordingDatapath();
  daemon = await startDaemon({ config, datapath, logger: quietLogger() });
  client = new AgentClient(config.socketPath, { timeoutMs: 5000 });
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("GET /metrics", () => {
  test("answers the text exposition with upstream's families and process metrics", async () => {
    const { status, type, lines } = await scrape();
    expect(status).toBe(200);
    expect(type).toBe("text/plain; version=0.0.4; charset=utf-8");
    for (const family of ["cilium_endpoint", "cilium_endpoint_state", "cilium_policy", "cilium_policy_max_revision", "cilium_drop_count_total", "cilium_bpf_map_pressure"]) {
      expect(lines).toContain(`# TYPE ${family} ${family.endsWith("_total") ? "counter" : "gauge"}`);
    }
    expect(lines).toContain("# TYPE cilium_agent_api_process_time_seconds histogram");
    expect(lines.some((l) => l.startsWith("process_resident_memory_bytes "))).toBe(true);
  });

  test("other paths are 404, other methods 405", async () => {
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" })).status).toBe(405);
  });

  test("endpoint counts by state follow endpoints being added and deleted", async () => {
    expect(await sample("cilium_endpoint")).toBe(0);
    expect(await sample('cilium_endpoint_state{endpoint_state="ready"}')).toBe(0);
    for (const name of ["a", "b"]) {
      const ip = (await client.allocateIp(`${name}:eth0`)).ipv4.ip;
      await client.putEndpoint(`cni-attachment-id:${name}:eth0`, attachment(name, ip));
    }
    expect(await sample("cilium_endpoint")).toBe(2);
    expect(await sample('cilium_endpoint_state{endpoint_state="ready"}')).toBe(2);
    expect(await sample('cilium_bpf_map_pressure{map_name="cilium_lxc"}')).toBe(2 / 65535);
    await client.deleteEndpoint("cni-attachment-id:b:eth0");
    expect(await sample("cilium_endpoint")).toBe(1);
    expect(await sample('cilium_endpoint_state{endpoint_state="ready"}')).toBe(1);
  });

  test("policy rules and revision follow imports", async () => {
    const before = await sample("cilium_policy_max_revision");
    const { revision } = await client.putPolicy(JSON.stringify([{ endpointSelector: {}, ingress: [{ fromEndpoints: [{}] }], labels: ["metrics=1"] }]));
    expect(await sample("cilium_policy")).toBe(1);
    expect(await sample("cilium_policy_max_revision")).toBe(revision);
    expect(revision).toBeGreaterThan(before!);
  });

  test("API requests appear in the latency histogram by method, route and status", async () => {
    const series = 'cilium_agent_api_process_time_seconds_count{method="GET",path="/v1/healthz",return_code="200"}';
    const before = (await sample(series)) ?? 0;
    await client.healthz();
    await client.healthz();
    expect(await sample(series)).toBe(before + 2);
    expect(await sample('cilium_agent_api_process_time_seconds_bucket{method="GET",path="/v1/healthz",return_code="200",le="+Inf"}')).toBe(before + 2);
  });

  test("drops and forwards come from the datapath's counters at scrape time", async () => {
    datapath.metricsCounters = [{ reason: 133, direction: 2, packets: 3, bytes: 180 }];
    expect(await sample('cilium_drop_count_total{direction="EGRESS",reason="Policy denied"}')).toBe(3);
    datapath.metricsCounters = [
      { reason: 133, direction: 2, packets: 5, bytes: 300 },
      { reason: 0, direction: 1, packets: 7, bytes: 700 },
    ];
    expect(await sample('cilium_drop_count_total{direction="EGRESS",reason="Policy denied"}')).toBe(5);
    expect(await sample('cilium_drop_bytes_total{direction="EGRESS",reason="Policy denied"}')).toBe(300);
    expect(await sample('cilium_forward_count_total{direction="INGRESS"}')).toBe(7);
  });
});

describe("start-up errors", () => {
  test("a port in use fails the start naming the flag, and leaves no API socket", async () => {
    const other = configFor("busy-node", `127.0.0.1:${port}`);
    const error = await startDaemon({ config: other, datapath: new RecordingDatapath(), logger: quietLogger() }).catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe(`--prometheus-serve-addr "127.0.0.1:${port}": port ${port} is already in use on 127.0.0.1`);
    expect(existsSync(other.socketPath)).toBe(false);
  });

  test("an address that is not this host's fails the start naming the flag", async () => {
    const other = configFor("elsewhere-node", "192.0.2.1:9962");
    const error = await startDaemon({ config: other, datapath: new RecordingDatapath(), logger: quietLogger() }).catch((e) => e);
    expect(error.message).toBe('--prometheus-serve-addr "192.0.2.1:9962": 192.0.2.1 is not an address of this host');
  });

  test("stopping the agent closes the metrics port", async () => {
    const ownPort = freePort();
    const own = await startDaemon({ config: configFor("stopping-node", `127.0.0.1:${ownPort}`), datapath: new RecordingDatapath(), logger: quietLogger() });
    expect((await fetch(`http://127.0.0.1:${ownPort}/metrics`)).status).toBe(200);
    await own.stop();
    expect(await fetch(`http://127.0.0.1:${ownPort}/metrics`).then(() => "answered", () => "refused")).toBe("refused");
  });
});
