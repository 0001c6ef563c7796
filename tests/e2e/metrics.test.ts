/**
 * The agent's metrics on the real kernel: `cilium agent --prometheus-serve-addr` in a node
 * namespace, pods attached by `cilium-cni`, a policy that denies some traffic, real TCP probes,
 * and /metrics scraped over HTTP from inside the node's namespace (where the agent listens).
 * Drops must show up as upstream labels them: reason "Policy denied", direction INGRESS/EGRESS.
 *
 * Pods (namespace "default"): client (egress to server tcp/80 only), server (ingress from client
 * only), other (no policy of its own). Each answers TCP 80 and 8080.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tmx");
const octet = (process.pid % 200) + 20;
const podCidr = `10.209.${octet}.0/24`;
const METRICS_ADDRESS = "127.0.0.1:9962";

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
  namespace: default
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
  - fromEndpoints: [{ matchLabels: { app: client } }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client-egress
  namespace: default
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
  - toEndpoints: [{ matchLabels: { app: server } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`;

describePrivileged("agent metrics (real agent, real datapath counters, real traffic)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  const pods = new Map<string, Pod>();
  let node: TestNode;

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n1", podCidr, extraAgentArgs: ["--prometheus-serve-addr", METRICS_ADDRESS] });
    await node.startAgent();
    for (const name of ["client", "server", "other"]) pods.set(name, node.addPod(name, "default", { app: name }));
    servers.push(...(await Promise.all([...pods.values()].map((pod) => startEchoServers(pod.netns, [{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 8080 }])))));
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  /** GET /metrics from inside the node's network namespace. */
  async function scrape(): Promise<string> {
    const child = Bun.spawn(node.nodeArgv(["curl", "-sS", "--fail", "--max-time", "10", `http://${METRICS_ADDRESS}/metrics`]), { stdout: "pipe", stderr: "pipe" });
    const [text, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`scraping ${METRICS_ADDRESS} in ${node.netns} failed (${code}): ${stderr}`);
    return text;
  }

  /** One series' value (0 when absent: a counter nothing has incremented yet). */
  async function value(series: string): Promise<number> {
    const line = (await scrape()).split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  }

  const deniedEgress = 'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"}';
  const deniedIngress = 'cilium_drop_count_total{direction="INGRESS",reason="Policy denied"}';

  async function tcp(from: string, to: string, port: number, expectAnswer: boolean): Promise<void> {
    const answer = await probeAsync(pods.get(from)!.netns, "tcp", pods.get(to)!.ip, port, expectAnswer ? 3000 : 1500);
    expect(answer !== null).toBe(expectAnswer);
  }

  test("the endpoints are counted as ready; the maps' pressure is reported", async () => {
    const text = await scrape();
    expect(text).toContain('\ncilium_endpoint_state{endpoint_state="ready"} 3\n');
    expect(text).toContain("\ncilium_endpoint 3\n");
    for (const map of ["cilium_lxc", "cilium_ipcache", "cilium_policy", "cilium_ct4_global", "cilium_snat_v4_external"]) {
      expect(text).toMatch(new RegExp(`\\ncilium_bpf_map_pressure\\{map_name="${map}"\\} [0-9.e-]+\\n`));
    }
    const lxc = Number(/\ncilium_bpf_map_pressure\{map_name="cilium_lxc"\} ([0-9.e-]+)\n/.exec(text)![1]);
    expect(lxc).toBeGreaterThan(0);
  });

  test("the policy is counted, and allowed traffic adds forwards but no drops", async () => {
    const file = join(node.dir, "policy.yaml");
    writeFileSync(file, POLICY);
    const imported = node.cilium(["policy", "import", file]);
    const revision = Number(/^Revision: (\d+)$/m.exec(imported.stdout)![1]);
    node.cilium(["policy", "wait", String(revision), "--max-wait-time", "10s"]);
    expect(await value("cilium_policy")).toBe(2);
    expect(await value("cilium_policy_max_revision")).toBe(revision);

    const [egressBefore, ingressBefore, forwardedBefore] = [await value(deniedEgress), await value(deniedIngress), await value('cilium_forward_count_total{direction="EGRESS"}')];
    await tcp("client", "server", 80, true);
    expect(await value(deniedEgress)).toBe(egressBefore);
    expect(await value(deniedIngress)).toBe(ingressBefore);
    expect(await value('cilium_forward_count_total{direction="EGRESS"}')).toBeGreaterThan(forwardedBefore);
  });

  test("traffic the client's egress policy denies counts as EGRESS Policy denied", async () => {
    const before = await value(deniedEgress);
    const ingressBefore = await value(deniedIngress);
    await tcp("client", "server", 8080, false);
    expect(await value(deniedEgress)).toBeGreaterThan(before);
    expect(await value(deniedIngress)).toBe(ingressBefore);
    expect(await value('cilium_drop_bytes_total{direction="EGRESS",reason="Policy denied"}')).toBeGreaterThan(0);
  });

  test("traffic the server's ingress policy denies counts as INGRESS Policy denied", async () => {
    const before = await value(deniedIngress);
    const egressBefore = await value(deniedEgress);
    await tcp("other", "server", 80, false);
    expect(await value(deniedIngress)).toBeGreaterThan(before);
    expect(await value(deniedEgress)).toBe(egressBefore);
  });

  test("the connections made show as conntrack map pressure", async () => {
    expect(await value('cilium_bpf_map_pressure{map_name="cilium_ct4_global"}')).toBeGreaterThan(0);
  });

  test("API requests the CLI made show in the latency histogram", async () => {
    const text = await scrape();
    expect(text).toMatch(/\ncilium_agent_api_process_time_seconds_count\{method="PUT",path="\/v1\/policy",return_code="200"\} [1-9]\d*\n/);
  });
});
