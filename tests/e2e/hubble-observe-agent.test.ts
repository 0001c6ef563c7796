/**
 * The `hubble` CLI (dist/hubble) against the real agent's Hubble socket, on the real kernel, with
 * real flows: pods in two namespaces attached by the real CNI plugin, a policy imported through
 * the CLI, allowed and denied TCP and UDP between them. Each filter flag is checked against what
 * the same command prints unfiltered, with traffic that matches it and traffic that does not; the
 * expected names, namespaces and identities come from the test's pod specs and the agent's
 * endpoint API, never from Hubble. Hubble metrics are scraped from the same agent
 * (--hubble-metrics-server inside the node's namespace).
 *
 * Pods: shop/client-0 (app=client), shop/server-0 (app=server, TCP 80 and 8080),
 * billing/other-0 (app=other, TCP 9090 and UDP 5353). Policies: server-0 accepts TCP 80 from
 * app=client in shop only (ingress); client-0 may send to app=server and to billing's app=other
 * on UDP 5353 and TCP 9090 only (egress).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

type Obj = Record<string, any>;

const HUBBLE = join(import.meta.dir, "../../dist/hubble");
const prefix = uniquePrefix("tho");
const octet = (process.pid % 200) + 20;
const METRICS_PORT = 9965;

async function hubble(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([HUBBLE, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(killer);
  return { code, stdout, stderr };
}

/** Reads a child's stdout until `found` holds for the text so far, or `ms` pass. */
function outputReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  return {
    get text() {
      return text;
    },
    async until(found: (text: string) => boolean, ms: number): Promise<boolean> {
      const deadline = Date.now() + ms;
      while (!found(text)) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
        if (!chunk || chunk.done) return found(text);
        text += decoder.decode(chunk.value, { stream: true });
      }
      return true;
    },
  };
}

describePrivileged("hubble CLI against the real agent (real kernel, real traffic)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  const pods = new Map<string, Pod>();
  const identities = new Map<string, number>();
  let node: TestNode;
  let server: string;
  /** Flow times: before the first traffic, between the two rounds, after the last. */
  let t0: string;
  let tMid: string;
  let tEnd: string;

  const ip = (name: string) => pods.get(name)!.ip;
  const netnsOf = (name: string) => pods.get(name)!.netns;

  beforeAll(async () => {
    node = new TestNode(namespaces, {
      name: "n1",
      podCidr: `10.221.${octet}.0/24`,
      extraAgentArgs: ["--hubble-metrics-server", `127.0.0.1:${METRICS_PORT}`, "--hubble-metrics", "drop:sourceContext=pod;destinationContext=pod,flow"],
    });
    await node.startAgent();
    server = `unix://${join(node.dir, "hubble.sock")}`;
    pods.set("client-0", node.addPod("client-0", "shop", { app: "client" }));
    pods.set("server-0", node.addPod("server-0", "shop", { app: "server" }));
    pods.set("other-0", node.addPod("other-0", "billing", { app: "other" }));
    servers.push(await startEchoServers(netnsOf("server-0"), [{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 8080 }]));
    servers.push(await startEchoServers(netnsOf("other-0"), [{ protocol: "tcp", port: 9090 }, { protocol: "udp", port: 5353 }]));
    const { body } = await node.api("GET", "/endpoint");
    for (const e of body) identities.set(e["k8s-pod-name"], e.identity);
    const policy = join(node.dir, "server-policy.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-from-client, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: client-egress, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
    - toEndpoints: [{ matchLabels: { app: server } }]
    - toEndpoints: [{ matchLabels: { "k8s:io.kubernetes.pod.namespace": billing, app: other } }]
      toPorts: [{ ports: [{ port: "5353", protocol: UDP }, { port: "9090", protocol: TCP }] }]
`,
    );
    const revision = /^Revision: (\d+)$/m.exec(node.cilium(["policy", "import", policy]).stdout)![1]!;
    expect(node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"], { check: false }).exitCode).toBe(0);

    t0 = new Date(Date.now() - 1000).toISOString();
    // Round one: every kind of traffic the filters tell apart.
    expect(await probeAsync(netnsOf("client-0"), "tcp", ip("server-0"), 80, 2000)).toBe(ip("client-0"));
    expect(await probeAsync(netnsOf("client-0"), "tcp", ip("server-0"), 8080, 800)).toBeNull();
    expect(await probeAsync(netnsOf("other-0"), "tcp", ip("server-0"), 80, 800)).toBeNull();
    expect(await probeAsync(netnsOf("client-0"), "udp", ip("other-0"), 5353, 2000)).toBe(ip("client-0"));
    expect(await probeAsync(netnsOf("server-0"), "tcp", ip("other-0"), 9090, 2000)).toBe(ip("server-0"));
    expect(await probeAsync(netnsOf("client-0"), "tcp", ip("other-0"), 7000, 800)).toBeNull();
    await Bun.sleep(300);
    tMid = new Date().toISOString();
    await Bun.sleep(300);
    // Round two, for --since: one more allowed connection.
    expect(await probeAsync(netnsOf("client-0"), "tcp", ip("other-0"), 9090, 2000)).toBe(ip("client-0"));
    await Bun.sleep(500);
    tEnd = new Date().toISOString();
  }, 120_000);

  afterAll(async () => {
    for (const s of servers) s.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  /** `hubble observe` over the whole test's traffic window, as jsonpb flows. */
  async function observeFlows(...flags: string[]): Promise<Obj[]> {
    const r = await hubble(["observe", "--server", server, "--since", t0, "--until", tEnd, "-o", "jsonpb", ...flags]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((res) => res.flow)
      .map((res) => res.flow);
  }

  const isTcpTo = (f: Obj, from: string, to: string, port: number) => f.IP?.source === ip(from) && f.IP?.destination === ip(to) && f.l4?.TCP?.destination_port === port;
  const isUdpTo = (f: Obj, from: string, to: string, port: number) => f.IP?.source === ip(from) && f.IP?.destination === ip(to) && f.l4?.UDP?.destination_port === port;
  /** The traffic of the test, each by its first packet's direction. */
  const traffic: Record<string, (f: Obj) => boolean> = {
    "client->server:80 allowed": (f) => isTcpTo(f, "client-0", "server-0", 80),
    "client->server:8080 denied": (f) => isTcpTo(f, "client-0", "server-0", 8080),
    "other->server:80 denied": (f) => isTcpTo(f, "other-0", "server-0", 80),
    "client->other:5353/udp": (f) => isUdpTo(f, "client-0", "other-0", 5353),
    "server->other:9090": (f) => isTcpTo(f, "server-0", "other-0", 9090),
    "client->other:7000 denied on egress": (f) => isTcpTo(f, "client-0", "other-0", 7000),
    "client->other:9090 (round two)": (f) => isTcpTo(f, "client-0", "other-0", 9090),
  };

  test("every output format names the pods and namespaces; allowed FORWARDED, denied DROPPED by policy", async () => {
    const range = ["--since", t0, "--until", tEnd, "--from-pod", "shop/client-0", "--to-pod", "shop/server-0"];
    const compact = await hubble(["observe", "--server", server, ...range]);
    expect(compact.code).toBe(0);
    const lines = compact.stdout.trim().split("\n");
    expect(lines.find((l) => / shop\/client-0:\d+ \(ID:\d+\) -> shop\/server-0:80 \(ID:\d+\) to-endpoint FORWARDED \(TCP Flags: SYN\)$/.test(l))).toBeDefined();
    expect(lines.find((l) => /-> shop\/server-0:8080 \(ID:\d+\) policy-verdict:L3-Only EGRESS ALLOWED /.test(l))).toBeDefined();
    const denied = lines.find((l) => l.includes("-> shop/server-0:8080") && l.includes("DROPPED"));
    expect(denied).toMatch(new RegExp(`: shop/client-0:\\d+ \\(ID:${identities.get("client-0")}\\) -> shop/server-0:8080 \\(ID:${identities.get("server-0")}\\) Policy denied DROPPED \\(TCP Flags: SYN\\)$`));

    const dict = (await hubble(["observe", "--server", server, ...range, "-t", "drop", "-o", "dict"])).stdout;
    expect(dict).toMatch(/^ {5}SOURCE: shop\/client-0:\d+\nDESTINATION: shop\/server-0:8080\n {7}TYPE: Policy denied\n {4}VERDICT: DROPPED\n/m);

    const table = (await hubble(["observe", "--server", server, ...range, "--to-port", "8080", "-t", "drop", "-o", "table"])).stdout.trim().split("\n");
    expect(table[0]).toMatch(/^TIMESTAMP +SOURCE +DESTINATION +TYPE +VERDICT +SUMMARY$/);
    expect(table[1]).toMatch(/ {3}shop\/client-0:\d+ {3}shop\/server-0:8080 +Policy denied {3}DROPPED {3}TCP Flags: SYN$/);

    for (const format of ["json", "jsonpb"]) {
      const out = await hubble(["observe", "--server", server, ...range, "-o", format]);
      const flows = out.stdout.trim().split("\n").map((l) => JSON.parse(l).flow);
      const drop = flows.find((f) => f.verdict === "DROPPED")!;
      expect(drop).toMatchObject({
        drop_reason_desc: "POLICY_DENIED",
        node_name: "n1",
        source: { namespace: "shop", pod_name: "client-0", identity: identities.get("client-0") },
        destination: { namespace: "shop", pod_name: "server-0", identity: identities.get("server-0") },
        l4: { TCP: { destination_port: 8080 } },
      });
      expect(drop.source.labels).toEqual(expect.arrayContaining(["k8s:app=client", "k8s:io.kubernetes.pod.namespace=shop"]));
      const forwarded = flows.find((f) => f.verdict === "FORWARDED" && f.l4?.TCP?.destination_port === 80)!;
      expect(forwarded.destination).toMatchObject({ namespace: "shop", pod_name: "server-0" });
    }
  }, 60_000);

  test("a pod in the other namespace, denied: its own name and namespace, POLICY_DENIED", async () => {
    const flows = await observeFlows("--from-namespace", "billing", "--verdict", "DROPPED");
    expect(flows.length).toBeGreaterThan(0);
    for (const f of flows) {
      expect(f).toMatchObject({ drop_reason_desc: "POLICY_DENIED", source: { namespace: "billing", pod_name: "other-0" }, destination: { namespace: "shop", pod_name: "server-0" } });
    }
  }, 30_000);

  /**
   * Each filter: the flags, which of the test's traffic it must show, which it must not, and the
   * property every flow it prints has (checked against the unfiltered output: exactly those flows).
   */
  const filterCases: { name?: string; flags: () => string[]; shows: string[]; hides: string[]; holds: (f: Obj) => boolean }[] = [
    { flags: () => ["--pod", "billing/other-0"], shows: ["other->server:80 denied", "client->other:5353/udp"], hides: ["client->server:80 allowed", "client->server:8080 denied"], holds: (f) => f.source?.pod_name === "other-0" || f.destination?.pod_name === "other-0" },
    { flags: () => ["--from-pod", "shop/client-0"], shows: ["client->server:8080 denied", "client->other:5353/udp"], hides: ["other->server:80 denied", "server->other:9090"], holds: (f) => f.source?.pod_name === "client-0" },
    { flags: () => ["--to-pod", "shop/server-0"], shows: ["client->server:80 allowed", "other->server:80 denied"], hides: ["client->other:5353/udp", "server->other:9090"], holds: (f) => f.destination?.pod_name === "server-0" },
    { flags: () => ["-n", "billing"], shows: ["other->server:80 denied", "server->other:9090"], hides: ["client->server:80 allowed", "client->server:8080 denied"], holds: (f) => f.source?.namespace === "billing" || f.destination?.namespace === "billing" },
    { flags: () => ["--verdict", "DROPPED"], shows: ["client->server:8080 denied", "other->server:80 denied"], hides: ["client->server:80 allowed", "client->other:5353/udp"], holds: (f) => f.verdict === "DROPPED" },
    { flags: () => ["--verdict", "FORWARDED"], shows: ["client->server:80 allowed", "server->other:9090"], hides: [], holds: (f) => f.verdict === "FORWARDED" },
    { flags: () => ["--protocol", "udp"], shows: ["client->other:5353/udp"], hides: ["client->server:80 allowed", "other->server:80 denied"], holds: (f) => f.l4?.UDP !== undefined },
    { flags: () => ["--port", "8080"], shows: ["client->server:8080 denied"], hides: ["client->server:80 allowed", "server->other:9090"], holds: (f) => f.l4?.TCP?.destination_port === 8080 || f.l4?.TCP?.source_port === 8080 },
    { flags: () => ["--to-port", "80"], shows: ["client->server:80 allowed", "other->server:80 denied"], hides: ["client->server:8080 denied", "client->other:5353/udp"], holds: (f) => (f.l4?.TCP ?? f.l4?.UDP)?.destination_port === 80 },
    { flags: () => ["-l", "app=other"], shows: ["other->server:80 denied", "client->other:5353/udp"], hides: ["client->server:80 allowed", "client->server:8080 denied"], holds: (f) => [...(f.source?.labels ?? []), ...(f.destination?.labels ?? [])].includes("k8s:app=other") },
    { name: "--ip <other-0>", flags: () => ["--ip", ip("other-0")], shows: ["other->server:80 denied", "server->other:9090"], hides: ["client->server:80 allowed"], holds: (f) => f.IP.source === ip("other-0") || f.IP.destination === ip("other-0") },
    { name: "--to-ip <server-0>", flags: () => ["--to-ip", ip("server-0")], shows: ["client->server:80 allowed", "other->server:80 denied"], hides: ["server->other:9090", "client->other:5353/udp"], holds: (f) => f.IP.destination === ip("server-0") },
    { name: "--identity <server-0's>", flags: () => ["--identity", String(identities.get("server-0"))], shows: ["client->server:8080 denied", "server->other:9090"], hides: ["client->other:5353/udp"], holds: (f) => f.source?.identity === identities.get("server-0") || f.destination?.identity === identities.get("server-0") },
    { flags: () => ["-t", "drop"], shows: ["client->server:8080 denied", "other->server:80 denied"], hides: ["client->server:80 allowed", "client->other:5353/udp"], holds: (f) => f.event_type.type === 1 },
    { flags: () => ["-t", "trace"], shows: ["client->server:80 allowed", "client->other:5353/udp"], hides: [], holds: (f) => f.event_type.type === 4 },
    { flags: () => ["-t", "policy-verdict"], shows: ["client->server:80 allowed", "client->other:7000 denied on egress"], hides: ["server->other:9090"], holds: (f) => f.event_type.type === 5 },
    { flags: () => ["--traffic-direction", "ingress"], shows: ["client->server:8080 denied", "server->other:9090"], hides: ["client->other:7000 denied on egress"], holds: (f) => f.traffic_direction === "INGRESS" },
    { flags: () => ["--traffic-direction", "egress"], shows: ["client->other:7000 denied on egress"], hides: ["other->server:80 denied", "server->other:9090"], holds: (f) => f.traffic_direction === "EGRESS" },
    { flags: () => ["--not", "--verdict", "DROPPED"], shows: ["client->server:80 allowed", "client->other:5353/udp"], hides: [], holds: (f) => f.verdict !== "DROPPED" },
    { flags: () => ["--not", "--namespace", "shop"], shows: [], hides: ["client->server:80 allowed", "client->server:8080 denied", "other->server:80 denied", "server->other:9090"], holds: (f) => f.source?.namespace !== "shop" && f.destination?.namespace !== "shop" },
    { name: "--since <between the rounds>", flags: () => ["--since", tMid], shows: ["client->other:9090 (round two)"], hides: ["client->server:80 allowed", "client->server:8080 denied", "server->other:9090"], holds: (f) => f.time >= tMid },
    { name: "--node-name n1", flags: () => ["--node-name", "n1"], shows: Object.keys(traffic), hides: [], holds: (f) => f.node_name === "n1" },
    { flags: () => ["--node-name", "n2"], shows: [], hides: Object.keys(traffic), holds: () => false },
  ];

  let unfiltered: Obj[] = [];
  test("unfiltered: every kind of the test's traffic was seen", async () => {
    unfiltered = await observeFlows("--all");
    for (const [name, is] of Object.entries(traffic)) expect({ name, seen: unfiltered.some(is) }).toEqual({ name, seen: true });
    expect(unfiltered.some((f) => f.event_type.type === 5)).toBe(true);
  }, 30_000);

  for (const c of filterCases) {
    test(`filter ${c.name ?? c.flags().join(" ")}: shows what matches, hides what does not`, async () => {
      expect(unfiltered.length).toBeGreaterThan(0);
      // --since narrows the window itself; the other cases use the whole test's window.
      const flows = await observeFlows("--all", ...c.flags());
      const uuids = flows.map((f) => f.uuid);
      expect(uuids).toEqual(unfiltered.filter(c.holds).map((f) => f.uuid));
      // Flows that match and flows that do not were both there to choose from.
      if (c.shows.length > 0) expect(flows.length).toBeGreaterThan(0);
      if (c.name !== "--node-name n1") expect(flows.length).toBeLessThan(unfiltered.length);
      for (const name of c.shows) expect({ name, shown: flows.some(traffic[name]!) }).toEqual({ name, shown: true });
      for (const name of c.hides) expect({ name, shown: flows.some(traffic[name]!) }).toEqual({ name, shown: false });
    }, 30_000);
  }

  test("--follow delivers a new real flow within a second", async () => {
    const proc = Bun.spawn([HUBBLE, "observe", "--server", server, "--follow", "--last", "1", "-o", "jsonpb", "--from-pod", "billing/other-0", "--to-pod", "shop/server-0", "-t", "drop"], { stdout: "pipe", stderr: "pipe" });
    try {
      const out = outputReader(proc.stdout);
      // The last matching stored flow first: the stream is up.
      expect(await out.until((t) => t.includes("\n"), 10_000)).toBe(true);
      const before = out.text.length;
      const started = Date.now();
      const probing = probeAsync(netnsOf("other-0"), "tcp", ip("server-0"), 80, 500);
      expect(await out.until((t) => t.slice(before).includes(`"destination":"${ip("server-0")}"`), 5000)).toBe(true);
      const printed = Date.now();
      const flow = JSON.parse(out.text.slice(before).split("\n").find((l) => l.includes(ip("server-0")))!).flow;
      expect(flow.source).toMatchObject({ namespace: "billing", pod_name: "other-0" });
      // From the packet (the flow's own time, the kernel's clock) to the line printed: within a second.
      expect(Date.parse(flow.time)).toBeGreaterThanOrEqual(started - 50);
      expect(printed - Date.parse(flow.time)).toBeLessThan(1000);
      await probing;
    } finally {
      proc.kill("SIGINT");
      await proc.exited;
    }
  }, 30_000);

  test("hubble status and hubble list nodes against the agent", async () => {
    const status = await hubble(["status", "--server", server]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^Healthcheck \\(via ${server.replaceAll("/", "\\/")}\\): Ok\\nCurrent/Max Flows: \\d+/4,?095 \\(\\d+\\.\\d\\d%\\)\\nFlows/s: \\d+\\.\\d\\d\\n$`));
    expect(Number(/Current\/Max Flows: (\d+)/.exec(status.stdout)![1])).toBeGreaterThanOrEqual(unfiltered.length);
    const nodes = await hubble(["list", "nodes", "--server", server]);
    expect(nodes.code).toBe(0);
    const [header, row] = nodes.stdout.split("\n");
    expect(header).toMatch(/^NAME +STATUS +AGE +FLOWS\/S +CURRENT\/MAX-FLOWS$/);
    expect(row).toMatch(/^n1 +Connected +\d+[smh]\S* +\d+\.\d\d +\d+\/4,?095 \( *\d+\.\d\d%\)$/);
  }, 30_000);

  test("Hubble metrics: policy drops in hubble_drop_total by reason and pods; flows in hubble_flows_processed_total", async () => {
    const scrape = () => run(node.nodeArgv(["curl", "-sf", `http://127.0.0.1:${METRICS_PORT}/metrics`])).stdout;
    const sample = (text: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    const dropLabels = 'destination="shop/server-0",protocol="TCP",reason="POLICY_DENIED",source="billing/other-0"';
    const processedDrops = 'protocol="TCP",subtype="",type="Drop",verdict="DROPPED"';
    const before = scrape();
    expect(sample(before, "hubble_drop_total", dropLabels)).toBeGreaterThan(0);
    const flowsBefore = [...before.matchAll(/^hubble_flows_processed_total\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
    expect(flowsBefore).toBeGreaterThanOrEqual(unfiltered.length);

    expect(await probeAsync(netnsOf("other-0"), "tcp", ip("server-0"), 80, 800)).toBeNull();
    let after = scrape();
    for (let i = 0; i < 20 && sample(after, "hubble_drop_total", dropLabels) === sample(before, "hubble_drop_total", dropLabels); i++) {
      await Bun.sleep(100);
      after = scrape();
    }
    // At least the SYN and its retransmission within the probe's 800 ms.
    expect(sample(after, "hubble_drop_total", dropLabels)).toBeGreaterThanOrEqual(sample(before, "hubble_drop_total", dropLabels) + 1);
    expect(sample(after, "hubble_flows_processed_total", processedDrops)).toBeGreaterThan(sample(before, "hubble_flows_processed_total", processedDrops));
    // A pair that never dropped has no drop series.
    expect(after).not.toContain('source="shop/client-0",destination="billing/other-0"');
    expect(after).toContain("# TYPE hubble_drop_total counter");
  }, 30_000);

  test("a full ring (--hubble-event-buffer-capacity 7): a reader that falls behind is told how many flows it lost", async () => {
    const small = new TestNode(namespaces, { name: "n2", podCidr: `10.222.${octet}.0/24`, extraAgentArgs: ["--hubble-event-buffer-capacity", "7", "--monitor-aggregation", "none"] });
    try {
      await small.startAgent();
      const a = small.addPod("a-0", "shop", { app: "a" });
      const b = small.addPod("b-0", "shop", { app: "b" });
      const smallServer = `unix://${join(small.dir, "hubble.sock")}`;
      const status = await hubble(["status", "--server", smallServer]);
      expect(status.stdout).toContain("/7 (");
      const proc = Bun.spawn([HUBBLE, "observe", "--server", smallServer, "--follow"], { stdout: "pipe", stderr: "pipe" });
      try {
        const out = outputReader(proc.stdout);
        await Bun.sleep(500);
        // Thousands of datagrams (each a trace event at aggregation none) against a ring of 7.
        run(["nsenter", `--net=/var/run/netns/${a.netns}`, "bash", "-c", `for i in $(seq 3000); do echo -n x 2>/dev/null >/dev/udp/${b.ip}/7777; done; true`], { timeoutMs: 60_000 });
        const flowLine = /shop\/a-0:\d+ \(ID:\d+\) -> shop\/b-0:7777 \(ID:\d+\) to-endpoint FORWARDED \(UDP\)/;
        expect(await out.until((t) => /EVENTS LOST: HUBBLE_RING_BUFFER CPU\(0\) \d+/.test(t) && flowLine.test(t), 5000)).toBe(true);
        const lost = [...out.text.matchAll(/EVENTS LOST: HUBBLE_RING_BUFFER CPU\(0\) (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
        expect(lost).toBeGreaterThan(0);
        // Flows between the gaps are the pods' own.
        expect(out.text).toMatch(flowLine);
      } finally {
        proc.kill("SIGINT");
        await proc.exited;
      }
      // The ring holds 7 flows at most.
      const last = await hubble(["observe", "--server", smallServer, "--last", "100", "-o", "jsonpb"]);
      expect(last.stdout.trim().split("\n").length).toBeLessThanOrEqual(7);
    } finally {
      await small.destroy();
    }
  }, 90_000);
});
