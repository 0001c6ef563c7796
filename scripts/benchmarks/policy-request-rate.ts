/**
 * The per-packet cost of policy: TCP request/response rate (lib/tcp-rr.ts, one connection, one
 * 64-byte request in flight) from one client pod to four server pods on one node running the
 * real agent, each server in a different state:
 *
 *   none      no policy selects it, no iptables rules
 *   allow-all a CiliumNetworkPolicy allowing ingress from every entity: the agent writes a
 *             direction that allows everything as not enforced, so packets skip the lookup
 *             (the comparison with 10k is then the whole cost of judging each packet)
 *   10k       a CiliumNetworkPolicy allowing the client on 10,000 TCP ports (250 port rules of 40
 *             ports; even ports, so no two make a range, plus the benchmark's port): 10,000
 *             entries of that endpoint in cilium_policy
 *   iptables  no policy of ours; the same 10,000 entries as iptables rules in the server's own
 *             namespace (INPUT: one ACCEPT per client/port entry, the benchmark's port in the
 *             middle of the list, the average position; then DROP). No ESTABLISHED shortcut:
 *             our datapath judges every forward packet too.
 *
 * The servers take turns run by run; each figure is the median of the runs.
 *
 * Runnable alone: bun scripts/benchmarks/policy-request-rate.ts
 */
import { BpfMap } from "../../src/datapath/bpf/index.ts";
import { POLICY_MAP, PolicyEntry, PolicyKey } from "../../src/datapath/maps/policy.ts";
import { pinnedMapPath } from "../../src/datapath/pinned.ts";
import { TestNode, type Pod } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import { type Benchmark, type BenchRow, median } from "./harness.ts";
import { type Background, benchPrefix, inNetns, listening, podBenchUnavailable, startInNetns, TCP_RR } from "./lib/pods.ts";

const RUNS = 5;
const RR_SECONDS = 3;
const RR_SIZE = 64;
const RR_PORT = 7300;
const ENTRIES = 10_000;
const PORTS_PER_RULE = 40;
const SERVERS = ["none", "allow-all", "10k", "iptables"] as const;
type Server = (typeof SERVERS)[number];

/** The 10,000 ports: the benchmark's port and 9,999 even ports from 20000 (no two adjacent). */
function entryPorts(): number[] {
  const others = Array.from({ length: ENTRIES - 1 }, (_, i) => 20_000 + 2 * i);
  const middle = Math.floor(others.length / 2);
  return [...others.slice(0, middle), RR_PORT, ...others.slice(middle)];
}

function policy(ports: number[]): string {
  const toPorts = [];
  for (let i = 0; i < ports.length; i += PORTS_PER_RULE) {
    toPorts.push({ ports: ports.slice(i, i + PORTS_PER_RULE).map((port) => ({ port: String(port), protocol: "TCP" })) });
  }
  const cnp = (name: string, spec: object) => ({ apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy", metadata: { name, namespace: "bench" }, spec });
  return JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: [
      cnp("allow-all", { endpointSelector: { matchLabels: { app: "allow-all" } }, ingress: [{ fromEntities: ["all"] }] }),
      cnp("entries-10k", { endpointSelector: { matchLabels: { app: "10k" } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: "client" } }], toPorts }] }),
    ],
  });
}

function iptablesRules(clientIp: string, ports: number[]): string {
  return [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    "-A INPUT -i lo -j ACCEPT",
    ...ports.map((port) => `-A INPUT -s ${clientIp}/32 -p tcp -m tcp --dport ${port} -j ACCEPT`),
    "-A INPUT -j DROP",
    "COMMIT",
    "",
  ].join("\n");
}

function rrRate(client: Pod, server: Pod): number {
  const argv = inNetns(client.netns, [process.execPath, TCP_RR, "client", server.ip, String(RR_PORT), String(RR_SIZE), String(RR_SECONDS)]);
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: (RR_SECONDS + 20) * 1000 });
  if (result.exitCode !== 0) throw new Error(`tcp-rr client (to ${server.name}) exited ${result.exitCode}: ${result.stderr.toString()}`);
  return (JSON.parse(result.stdout.toString().trim()) as { rate: number }).rate;
}

/** The entries cilium_policy holds for an endpoint (read from the kernel). */
function kernelEntries(node: TestNode, endpointId: number): number {
  const map = BpfMap.openPinned(pinnedMapPath(node.bpfRoot, POLICY_MAP), PolicyKey, PolicyEntry);
  try {
    let n = 0;
    for (const key of map.keys()) if (key.endpointId === endpointId) n++;
    return n;
  } finally {
    map.close();
  }
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(prefix);
  const servers: Background[] = [];
  let node: TestNode | undefined;
  try {
    node = new TestNode(namespaces, { name: "rr", podCidr: "10.206.0.0/24" });
    await node.startAgent();
    const client = node.addPod("client", "bench", { app: "client" });
    const pods = Object.fromEntries(SERVERS.map((s) => [s, node!.addPod(`s-${s}`, "bench", { app: s })])) as Record<Server, Pod>;

    const ports = entryPorts();
    const response = await fetch("http://localhost/v1/policy", { method: "PUT", unix: node.socketPath, body: policy(ports) } as RequestInit);
    if (!response.ok) throw new Error(`PUT /v1/policy: ${response.status} ${await response.text()}`);
    const restore = Bun.spawnSync(inNetns(pods.iptables.netns, ["iptables-restore"]), { stdin: Buffer.from(iptablesRules(client.ip, ports)), stdout: "pipe", stderr: "pipe" });
    if (restore.exitCode !== 0) throw new Error(`iptables-restore: ${restore.stderr.toString()}`);

    // The states are what they say: enforcement and entry counts from the agent and the kernel.
    const { body: endpoints } = await node.api<{ id: number; "k8s-pod-name": string; policy?: { "ingress-enforced": boolean } }[]>("GET", "/endpoint");
    const endpoint = (s: Server) => endpoints.find((e) => e["k8s-pod-name"] === `s-${s}`)!;
    const enforced = SERVERS.map((s) => endpoint(s).policy?.["ingress-enforced"] === true);
    if (enforced.join() !== "false,false,true,false") throw new Error(`unexpected ingress enforcement of ${SERVERS.join(", ")}: ${enforced.join(", ")}`);
    const held = kernelEntries(node, endpoint("10k").id);
    if (held < ENTRIES) throw new Error(`the 10k server holds ${held} policy entries, expected at least ${ENTRIES}`);
    const iptablesCount = Bun.spawnSync(inNetns(pods.iptables.netns, ["iptables", "-S", "INPUT"]), { stdout: "pipe" }).stdout.toString().split("\n").filter((l) => l.startsWith("-A INPUT -s")).length;
    if (iptablesCount !== ENTRIES) throw new Error(`the iptables server has ${iptablesCount} rules, expected ${ENTRIES}`);

    for (const s of SERVERS) {
      const pod = pods[s];
      servers.push(await startInNetns(pod.netns, [process.execPath, TCP_RR, "server", String(RR_PORT)], () => listening(pod.netns, RR_PORT), `tcp-rr server (${s})`));
    }

    const samples = Object.fromEntries(SERVERS.map((s) => [s, [] as number[]])) as Record<Server, number[]>;
    for (let i = 0; i < RUNS; i++) for (const s of SERVERS) samples[s].push(rrRate(client, pods[s]));
    const rate = (s: Server) => median(samples[s]);

    const how = `lib/tcp-rr.ts (${RR_SIZE} B, 1 conn, ${RR_SECONDS} s) client pod -> 4 server pods on one node (real agent), alternating, median of ${RUNS}`;
    return [
      {
        metric: `TCP request/response, server with ${ENTRIES} policy entries vs allow-all policy`,
        ours: rate("10k"),
        baseline: rate("allow-all"),
        unit: "trans/s",
        method: `${how}; ours: CNP allowing the client on 10,000 TCP ports (${held} entries in cilium_policy); baseline: CNP allowing all entities (written as not enforced: no lookup)`,
        better: "higher",
      },
      {
        metric: `TCP request/response, the same ${ENTRIES} entries as iptables rules vs no rules (the iptables baseline)`,
        ours: rate("iptables"),
        baseline: rate("none"),
        unit: "trans/s",
        method: `${how}; ${ENTRIES} iptables ACCEPT rules (client, port) in the server's INPUT (its port's rule in the middle), then DROP, no ESTABLISHED shortcut, no policy of ours; baseline: a server with no policy and no rules`,
        better: "higher",
      },
    ];
  } finally {
    for (const server of servers) await server.stop();
    await node?.destroy();
    namespaces.removeAll();
  }
}

const benchmark: Benchmark = {
  name: "policy-request-rate",
  unavailable: () => podBenchUnavailable(["ss", "iptables", "iptables-restore"]),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`policy-request-rate: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
