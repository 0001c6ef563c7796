/**
 * Import-to-enforced latency of one rule, on a node running the real agent.
 *
 * Each sample imports (PUT /v1/policy?replace=true) a CiliumNetworkPolicy that allows the client
 * pod into the server pod on one TCP port, alternating between two ports, and times from just
 * before the request until the kernel's cilium_policy says so for the server: an LPM lookup of
 * (server, ingress, client identity, TCP, new port) finds an allow and one of the old port finds
 * nothing. That lookup is the one bpf_lxc makes for every forward packet, so this is the moment
 * the datapath enforces the new rule (the map is polled from this process while the request is
 * in flight, every half millisecond or so).
 *
 * Three runs on the same agent:
 *   - 2 endpoints (client, server): the baseline;
 *   - 42 endpoints: 40 more pods in 4 namespaces, each selected by rules of its own (40 ingress
 *     rules of 20 ports each, and a clusterwide egress rule to 100 CIDRs, so ~140 entries per
 *     pod): the rule concerns the server only, so the others are neither resolved nor written;
 *   - the same 42 endpoints with a rule that selects every endpoint (a deny of one CIDR,
 *     alternating between two), until every endpoint's map says so: every endpoint re-resolved
 *     and written, an upper bound of what each import cost before repository changes became
 *     incremental (they re-resolved every endpoint, but wrote only those that changed).
 *
 * Runnable alone: bun scripts/benchmarks/policy-import-latency.ts
 */
import { BpfMap } from "../../src/datapath/bpf/index.ts";
import { POLICY_MAP, PolicyDirection, PolicyEntry, PolicyKey, POLICY_PREFIX_FULL } from "../../src/datapath/maps/policy.ts";
import { pinnedMapPath } from "../../src/datapath/pinned.ts";
import { TestNode } from "../../tests/helpers/cluster-node.ts";
import { TestNamespaces } from "../../tests/helpers/netns.ts";
import { type Benchmark, type BenchRow, median, percentile } from "./harness.ts";
import { benchPrefix, podBenchUnavailable } from "./lib/pods.ts";

const IMPORTS = 50;
const WARMUP = 3;
const FILLER_NAMESPACES = 4;
const FILLER_PODS = 40;
const TCP = 6;
const PORTS = [8000, 8001] as const;
const DENIED_CIDRS = ["192.0.2.1/32", "192.0.2.2/32"] as const;

type PolicyMap = BpfMap<{ prefixlen: number; endpointId: number; direction: number; identity: number; protocol: number; dport: number }, { flags: number }>;

function allows(map: PolicyMap, endpointId: number, identity: number, port: number): boolean {
  const entry = map.lookup({ prefixlen: POLICY_PREFIX_FULL, endpointId, direction: PolicyDirection.ingress, identity, protocol: TCP, dport: port });
  return entry !== undefined && (entry.flags & 1) === 0;
}

function denies(map: PolicyMap, endpointId: number, identity: number): boolean {
  const entry = map.lookup({ prefixlen: POLICY_PREFIX_FULL, endpointId, direction: PolicyDirection.ingress, identity, protocol: TCP, dport: PORTS[0] });
  return entry !== undefined && (entry.flags & 1) !== 0;
}

const serverRule = (port: number) =>
  JSON.stringify({
    apiVersion: "cilium.io/v2",
    kind: "CiliumNetworkPolicy",
    metadata: { name: "bench-server", namespace: "bench" },
    spec: {
      endpointSelector: { matchLabels: { app: "server" } },
      ingress: [{ fromEndpoints: [{ matchLabels: { app: "client" } }], toPorts: [{ ports: [{ port: String(port), protocol: "TCP" }] }] }],
    },
  });

const everyoneRule = (cidr: string) =>
  JSON.stringify([{ endpointSelector: {}, ingressDeny: [{ fromCIDR: [cidr] }], enableDefaultDeny: { ingress: false }, labels: ["bench=everyone"] }]);

function fillerPolicy(): string {
  const docs: unknown[] = [];
  for (let i = 0; i < FILLER_PODS; i++) {
    docs.push({
      apiVersion: "cilium.io/v2",
      kind: "CiliumNetworkPolicy",
      metadata: { name: `filler-${i}`, namespace: `fill-${i % FILLER_NAMESPACES}` },
      spec: {
        endpointSelector: { matchLabels: { app: `filler-${i}` } },
        ingress: [{ fromEndpoints: [{}], toPorts: [{ ports: Array.from({ length: 20 }, (_, p) => ({ port: String(9000 + p * 7), protocol: "TCP" })) }] }],
      },
    });
  }
  docs.push({
    apiVersion: "cilium.io/v2",
    kind: "CiliumClusterwideNetworkPolicy",
    metadata: { name: "filler-egress" },
    spec: {
      endpointSelector: { matchLabels: { role: "filler" } },
      egress: [{ toCIDR: Array.from({ length: 100 }, (_, c) => `10.${150 + Math.floor(c / 50)}.${c % 50}.0/24`) }],
    },
  });
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: docs });
}

async function importPolicy(node: TestNode, text: string, replace: boolean): Promise<number> {
  const response = await fetch(`http://localhost/v1/policy${replace ? "?replace=true" : ""}`, { method: "PUT", unix: node.socketPath, body: text } as RequestInit);
  const body = await response.text();
  if (!response.ok) throw new Error(`PUT /v1/policy: ${response.status} ${body}`);
  return (JSON.parse(body) as { revision: number }).revision;
}

/** Milliseconds from the import request until `enforced()` holds in the kernel. */
async function importToEnforced(node: TestNode, text: string, enforced: () => boolean): Promise<number> {
  const start = Bun.nanoseconds();
  let failure: unknown;
  let answered = false;
  const request = importPolicy(node, text, true).then(
    () => (answered = true),
    (error) => (failure = error),
  );
  while (!enforced()) {
    if (failure) throw failure;
    // The agent answers once every write is made: by then the map must say so.
    if (answered && !enforced()) throw new Error("the import was answered but the kernel's policy map does not enforce it");
    // Sleeping between polls leaves the CPU to the agent (a busy poll would slow what it measures).
    await Bun.sleep(0.5);
  }
  const elapsed = (Bun.nanoseconds() - start) / 1e6;
  await request;
  if (failure) throw failure;
  return elapsed;
}

async function sample(n: number, one: (i: number) => Promise<number>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await one(i);
  const out: number[] = [];
  for (let i = WARMUP; i < WARMUP + n; i++) out.push(await one(i));
  return out;
}

async function measure(): Promise<BenchRow[]> {
  const prefix = benchPrefix();
  const namespaces = new TestNamespaces(prefix);
  let node: TestNode | undefined;
  let map: PolicyMap | undefined;
  try {
    node = new TestNode(namespaces, { name: "imp", podCidr: "10.205.0.0/24" });
    await node.startAgent();
    node.addPod("client", "bench", { app: "client" });
    node.addPod("server", "bench", { app: "server" });
    const { body: endpoints } = await node.api<{ id: number; identity: number; "k8s-pod-name": string }[]>("GET", "/endpoint");
    const server = endpoints.find((e) => e["k8s-pod-name"] === "server")!.id;
    const client = endpoints.find((e) => e["k8s-pod-name"] === "client")!.identity;
    map = BpfMap.openPinned(pinnedMapPath(node.bpfRoot, POLICY_MAP), PolicyKey, PolicyEntry) as PolicyMap;
    const policyMap = map;

    const oneRule = (i: number) => {
      const port = PORTS[i % 2]!;
      const old = PORTS[(i + 1) % 2]!;
      return importToEnforced(node!, serverRule(port), () => allows(policyMap, server, client, port) && !allows(policyMap, server, client, old));
    };
    const few = await sample(IMPORTS, oneRule);

    for (let i = 0; i < FILLER_PODS; i++) node.addPod(`f${i}`, `fill-${i % FILLER_NAMESPACES}`, { app: `filler-${i}`, role: "filler" });
    await importPolicy(node, fillerPolicy(), false);
    const { body: all } = await node.api<{ id: number; state: string }[]>("GET", "/endpoint");
    if (all.length !== 2 + FILLER_PODS || all.some((e) => e.state !== "ready")) throw new Error(`expected ${2 + FILLER_PODS} ready endpoints, got ${all.map((e) => e.state).join(",")}`);
    const many = await sample(IMPORTS, oneRule);
    const perEndpoint = new Map<number, number>();
    for (const key of policyMap.keys()) perEndpoint.set(key.endpointId, (perEndpoint.get(key.endpointId) ?? 0) + 1);
    const fillerEntries = [...perEndpoint].filter(([id]) => id !== server).map(([, n]) => n);

    // The two CIDRs get their identities first (a rule that selects no endpoint names them), so
    // that each sample only changes which one every endpoint denies.
    await importPolicy(node, JSON.stringify([{ endpointSelector: { matchLabels: { app: "nobody" } }, egress: [{ toCIDR: [...DENIED_CIDRS] }], labels: ["bench=cidrs"] }]), false);
    const { body: identities } = await node.api<{ id: number; labels: string[] }[]>("GET", "/identity");
    const deniedIdentity = DENIED_CIDRS.map((cidr) => identities.find((x) => x.labels.includes(`cidr:${cidr}`))?.id);
    if (deniedIdentity.some((id) => id === undefined)) throw new Error(`no CIDR identities for ${DENIED_CIDRS.join(", ")}`);
    const ids = all.map((e) => e.id);
    const everyone = await sample(IMPORTS, (i) => {
      const now = deniedIdentity[i % 2]!;
      const before = deniedIdentity[(i + 1) % 2]!;
      return importToEnforced(node!, everyoneRule(DENIED_CIDRS[i % 2]!), () => ids.every((id) => denies(policyMap, id, now) && !denies(policyMap, id, before)));
    });

    const setup = `PUT /v1/policy?replace=true of one CNP (client -> server TCP port, alternating 2 ports) until the kernel's cilium_policy LPM lookup for the server gives the new verdict; ${IMPORTS} imports after ${WARMUP} warm-up`;
    const endpointsNote = `${2 + FILLER_PODS} endpoints: ${FILLER_PODS} more pods in ${FILLER_NAMESPACES} namespaces, each selected by a rule of its own (20 ports from its namespace's pods) and a clusterwide one (egress to 100 CIDRs): median ${median(fillerEntries)} entries each in cilium_policy`;
    return [
      { metric: `import-to-enforced, one rule, ${2 + FILLER_PODS} endpoints (p50)`, ours: median(many), baseline: median(few), unit: "ms", method: `${setup}; ${endpointsNote}; baseline: same with 2 endpoints`, better: "lower" },
      { metric: `import-to-enforced, one rule, ${2 + FILLER_PODS} endpoints (p99)`, ours: percentile(many, 99), baseline: percentile(few, 99), unit: "ms", method: `${setup}; ${endpointsNote}; baseline: same with 2 endpoints`, better: "lower" },
      {
        metric: `import-to-enforced, a rule selecting all ${2 + FILLER_PODS} endpoints (p50)`,
        ours: median(everyone),
        baseline: median(many),
        unit: "ms",
        method: `${endpointsNote}; a bare rule selecting every endpoint, denying one of 2 CIDRs alternately (every endpoint resolved and written), until every endpoint's map denies the new one and not the old; baseline: the one-rule import above`,
        better: "lower",
      },
      { metric: `import-to-enforced, a rule selecting all ${2 + FILLER_PODS} endpoints (p99)`, ours: percentile(everyone, 99), baseline: percentile(many, 99), unit: "ms", method: "as above", better: "lower" },
    ];
  } finally {
    map?.close();
    await node?.destroy();
    namespaces.removeAll();
  }
}

const benchmark: Benchmark = {
  name: "policy-import-latency",
  unavailable: () => podBenchUnavailable(),
  run: measure,
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`policy-import-latency: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
