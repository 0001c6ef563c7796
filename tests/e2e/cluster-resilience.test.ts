/**
 * A 3-node cluster from the real binaries (tests/helpers/cluster.ts): real etcd, two operator
 * replicas handing out pod CIDRs, agents in tunnel mode (VXLAN, the sender's identity in the VNI),
 * Hubble Relay over every node. Pods on every node, one CiliumNetworkPolicy imported on n1.
 *
 *   n1: web (app=web), other (app=other)
 *   n2: db (app=db)   servers tcp/80, tcp/8080, udp/53
 *   n3: web3 (app=web), api (app=api)   servers tcp/80, udp/53
 *
 * Then the failures a cluster must survive, in order: an agent killed and restarted, etcd
 * stopped for 30 s under traffic, the operator leader killed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster, eventually } from "../helpers/cluster.ts";
import { CILIUM, type Pod, type TestNode } from "../helpers/cluster-node.ts";
import { run, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, startStream, type EchoServer, type Protocol } from "../helpers/traffic.ts";

const prefix = uniquePrefix("ccl");
const octet = (process.pid % 200) + 20;
/** A probe expected to be dropped waits this long; one expected to pass, ALLOWED_WAIT_MS (a loaded machine). */
const DENIED_WAIT_MS = 1500;
const ALLOWED_WAIT_MS = 5000;
const ETCD_OUTAGE_MS = 30_000;
const TAKEOVER_LIMIT_MS = 15_000;

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: db-from-web, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }, { port: "53", protocol: UDP }] }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: api-from-web, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: api } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: late-from-web, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: late } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`;

/** Written by hand: who may reach whom, across nodes. */
const MATRIX: { from: string; to: string; protocol: Protocol; port: number; allowed: boolean }[] = [
  { from: "web", to: "db", protocol: "tcp", port: 80, allowed: true },
  { from: "web", to: "db", protocol: "udp", port: 53, allowed: true },
  { from: "web", to: "db", protocol: "tcp", port: 8080, allowed: false },
  { from: "web3", to: "db", protocol: "tcp", port: 80, allowed: true },
  { from: "web3", to: "db", protocol: "tcp", port: 8080, allowed: false },
  { from: "other", to: "db", protocol: "tcp", port: 80, allowed: false },
  { from: "other", to: "db", protocol: "udp", port: 53, allowed: false },
  { from: "api", to: "db", protocol: "tcp", port: 80, allowed: false },
  { from: "web", to: "api", protocol: "tcp", port: 80, allowed: true },
  { from: "web", to: "api", protocol: "udp", port: 53, allowed: true },
  { from: "other", to: "api", protocol: "tcp", port: 80, allowed: false },
  { from: "other", to: "api", protocol: "udp", port: 53, allowed: false },
  { from: "db", to: "api", protocol: "tcp", port: 80, allowed: false },
  // No policy selects web or other: everyone reaches them.
  { from: "db", to: "web", protocol: "tcp", port: 80, allowed: true },
  { from: "api", to: "other", protocol: "udp", port: 53, allowed: true },
];

interface IpcacheRow {
  cidr: string;
  identity: number;
  tunnelEndpoint?: string;
}

describePrivileged("a 3-node cluster (etcd, operator, tunnel mode, relay): policy across nodes and failures", () => {
  const cluster = new TestCluster({ prefix, underlaySubnet: `10.98.${octet}`, clusterPoolCidr: "10.240.0.0/16", operatorReplicas: 2, relay: true });
  const servers: EchoServer[] = [];
  const pods = new Map<string, Pod>();
  const nodeOf = new Map<string, TestNode>();
  let n1: TestNode;
  let n2: TestNode;
  let n3: TestNode;

  const pod = (name: string) => pods.get(name)!;
  const ipcache = (node: TestNode) => JSON.parse(run([CILIUM, "bpf", "ipcache", "list", "--bpf-root", node.bpfRoot, "-o", "json"]).stdout) as IpcacheRow[];
  const health = async (node: TestNode) => (await node.api("GET", "/healthz")).body;

  async function identityOf(name: string): Promise<number> {
    const { body } = await nodeOf.get(name)!.api<any[]>("GET", "/endpoint");
    return body.find((e) => e["k8s-pod-name"] === name).identity;
  }

  function addPod(node: TestNode, name: string, app: string): Pod {
    const added = node.addPod(name, "default", { app });
    pods.set(name, added);
    nodeOf.set(name, node);
    return added;
  }

  async function serve(name: string): Promise<void> {
    servers.push(await startEchoServers(pod(name).netns, [{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 8080 }, { protocol: "udp", port: 53 }]));
  }

  async function reaches(from: string, to: string, protocol: Protocol = "tcp", port = 80, timeoutMs = DENIED_WAIT_MS): Promise<boolean> {
    return (await probeAsync(pod(from).netns, protocol, pod(to).ip, port, timeoutMs)) === pod(from).ip;
  }
  const passes = (from: string, to: string, protocol: Protocol = "tcp", port = 80) => reaches(from, to, protocol, port, ALLOWED_WAIT_MS);

  const relayNodes = () => {
    const result = cluster.hubble(["list", "nodes", "-o", "json"]);
    if (result.exitCode !== 0) return undefined;
    return JSON.parse(result.stdout) as { name: string; state: string }[];
  };
  const relayState = (name: string) => relayNodes()?.find((n) => n.name === name)?.state;

  beforeAll(async () => {
    await cluster.start(3);
    [n1, n2, n3] = cluster.nodes as [TestNode, TestNode, TestNode];
    addPod(n1, "web", "web");
    addPod(n1, "other", "other");
    addPod(n2, "db", "db");
    addPod(n3, "web3", "web");
    addPod(n3, "api", "api");
    for (const name of ["web", "other", "db", "api"]) await serve(name);
    n1.cilium(["policy", "import", "-"], { stdin: POLICY });
    for (const node of cluster.nodes) {
      await eventually(`${node.options.name} to apply the cluster policy`, async () => (await node.api("GET", "/policy")).body.policy?.length === 3);
    }
    // Every node knows every other node's pods.
    for (const node of cluster.nodes) {
      await eventually(`${node.options.name}'s ipcache to hold every pod`, () => {
        const cidrs = new Set(ipcache(node).map((r) => r.cidr));
        return [...pods.values()].every((p) => cidrs.has(`${p.ip}/32`));
      });
    }
  }, 180_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    await cluster.destroy();
  }, 60_000);

  test("each node got its own pod CIDR from the operator's pool; remote pods sit behind their node's tunnel endpoint", async () => {
    const cidrs = cluster.nodes.map((node) => JSON.parse(cluster.etcdGet(`cilium/state/nodes/v1/default/${node.options.name}`)!.value).podCidrs[0] as string);
    expect(new Set(cidrs).size).toBe(3);
    for (const cidr of cidrs) expect(cidr).toMatch(/^10\.240\.\d+\.0\/24$/);
    const db = ipcache(n1).find((r) => r.cidr === `${pod("db").ip}/32`)!;
    expect(db).toEqual({ cidr: `${pod("db").ip}/32`, identity: await identityOf("db"), tunnelEndpoint: cluster.nodeIp(n2) });
    expect(await identityOf("web3")).toBe(await identityOf("web"));
  });

  test("connectivity matrix across nodes: TCP and UDP allowed and denied by the sender's identity", async () => {
    const outcomes = await Promise.all(MATRIX.map(async (c) => ({ ...c, got: await reaches(c.from, c.to, c.protocol, c.port, c.allowed ? ALLOWED_WAIT_MS : DENIED_WAIT_MS) })));
    const wrong = outcomes.filter((o) => o.got !== o.allowed).map((o) => `${o.from} -> ${o.to} ${o.protocol}/${o.port}: expected ${o.allowed ? "allowed" : "denied"}`);
    expect(wrong).toEqual([]);
  }, 60_000);

  test("the relay lists every node Connected and shows flows from each, with the receiving node's verdict by remote identity", async () => {
    const nodes = await eventually("the relay to know 3 nodes", () => (relayNodes()?.filter((n) => n.state === "NODE_CONNECTED").length === 3 ? relayNodes() : undefined));
    expect(nodes!.map((n) => n.name).sort()).toEqual(["n1", "n2", "n3"]);
    // A denied attempt judged on n2: the dropped flow names the sender's identity learned from the VNI/ipcache.
    expect(await reaches("other", "db", "tcp", 80)).toBe(false);
    const otherIdentity = await identityOf("other");
    const flows = await eventually("flows from all three nodes", () => {
      const result = cluster.hubble(["observe", "--last", "2000", "-o", "json"]);
      if (result.exitCode !== 0) return undefined;
      const lines = result.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const seen = new Set(lines.map((l) => l.flow?.node_name));
      return ["n1", "n2", "n3"].every((n) => seen.has(n)) ? lines : undefined;
    });
    const drop = flows.find((l) => l.flow.node_name === "n2" && l.flow.verdict === "DROPPED" && l.flow.IP?.source === pod("other").ip && l.flow.IP?.destination === pod("db").ip);
    expect(drop?.flow.source.identity).toBe(otherIdentity);
  }, 60_000);

  test("an agent killed on n3: n1 and n2 keep working, the relay marks n3 Unavailable; restarted, n3's pods are reachable and republished, the relay picks it up", async () => {
    const stream = startStream(pod("web").netns, pod("db").ip, 80, 100);
    const apiKey = `cilium/state/ip/v1/default/${pod("api").ip}`;
    const before = cluster.etcdGet(apiKey)!;
    let result;
    try {
      await n3.killAgent();
      await eventually("the relay to mark n3 unavailable", () => relayState("n3") === "NODE_UNAVAILABLE", 30_000);
      expect(relayState("n1")).toBe("NODE_CONNECTED");
      // ServerStatus through the relay counts it and names it.
      const status = await eventually("hubble status to count n3 unavailable", () => {
        const out = cluster.hubble(["status"]).stdout;
        return out.includes("Connected Nodes: 2/3") ? out : undefined;
      });
      expect(status).toContain("Unavailable Nodes: 1\n  - n3\n");
      // The others carry on: new connections between them, the policy still enforced.
      expect(await passes("web", "db")).toBe(true);
      expect(await reaches("other", "db")).toBe(false);
      expect(await passes("db", "web")).toBe(true);
      // Its lease lapses (revoked here rather than waited for): n3 and its pods leave the cluster.
      cluster.etcdRevokeLease(before.lease);
      await eventually("n3's pods to leave n1's ipcache", () => !ipcache(n1).some((r) => r.cidr === `${pod("api").ip}/32`));
      expect(await passes("web", "db")).toBe(true);
    } finally {
      result = await stream.stop();
    }
    expect(result.closed).toBe(false);
    expect(result.received).toBeGreaterThan(0);
    // Only answers still in flight at the stop may be missing (TCP loses nothing on an open connection).
    expect(result.sent - result.received).toBeLessThanOrEqual(10);

    await n3.startAgent();
    const after = await eventually("api republished under n3's new lease", () => {
      const entry = cluster.etcdGet(apiKey);
      return entry && entry.lease !== before.lease ? entry : undefined;
    });
    expect(after.modRevision).toBeGreaterThan(before.modRevision);
    await eventually("n1 to learn api again", () => ipcache(n1).some((r) => r.cidr === `${pod("api").ip}/32`));
    await eventually("web to reach api again", () => reaches("web", "api"));
    expect(await reaches("other", "api")).toBe(false);
    await eventually("the relay to pick n3 up again", () => relayState("n3") === "NODE_CONNECTED", 30_000);
    await eventually("hubble status to count 3 connected nodes", () => cluster.hubble(["status"]).stdout.includes("Connected Nodes: 3/3"));
  }, 120_000);

  test("etcd stopped for 30 s under traffic: flows keep flowing, agents go Degraded then Ok, a new identity is allocated after it returns", async () => {
    const stream = startStream(pod("web").netns, pod("db").ip, 80, 100);
    const failures: string[] = [];
    let result;
    await cluster.etcd!.stop();
    const stoppedAt = Date.now();
    try {
      for (const node of cluster.nodes) {
        await eventually(`${node.options.name} to go Degraded`, async () => {
          const body = await health(node);
          return body.cilium.state === "Degraded" && body.kvstore.state === "Failure";
        });
      }
      // New connections across nodes during the whole outage: allowed ones pass, denied ones stay denied.
      while (Date.now() - stoppedAt < ETCD_OUTAGE_MS) {
        const [webDb, web3Db, otherDb, webApi] = await Promise.all([passes("web", "db"), passes("web3", "db", "udp", 53), reaches("other", "db"), passes("web", "api")]);
        if (!webDb) failures.push(`web -> db denied at +${Date.now() - stoppedAt} ms`);
        if (!web3Db) failures.push(`web3 -> db udp denied at +${Date.now() - stoppedAt} ms`);
        if (otherDb) failures.push(`other -> db allowed at +${Date.now() - stoppedAt} ms`);
        if (!webApi) failures.push(`web -> api denied at +${Date.now() - stoppedAt} ms`);
        await Bun.sleep(1000);
      }
    } finally {
      await cluster.etcd!.start();
      result = await stream.stop();
    }
    expect(failures).toEqual([]);
    expect(result.closed).toBe(false);
    expect(result.lastReceivedAt).toBeGreaterThanOrEqual(stoppedAt + ETCD_OUTAGE_MS);
    // Only answers still in flight at the stop may be missing (TCP loses nothing on an open connection).
    expect(result.sent - result.received).toBeLessThanOrEqual(10);
    for (const node of cluster.nodes) {
      await eventually(`${node.options.name} to be Ok again`, async () => {
        const body = await health(node);
        return body.cilium.state === "Ok" && body.kvstore.state === "Ok";
      }, 60_000);
    }
    // Labels nobody had: a new identity from etcd, known on the other nodes, under the cluster policy.
    addPod(n2, "late", "late");
    await serve("late");
    const late = await identityOf("late");
    expect(late).toBeGreaterThanOrEqual(256);
    expect([await identityOf("web"), await identityOf("db"), await identityOf("api"), await identityOf("other")]).not.toContain(late);
    await eventually("n1 and n3 to learn late's identity", () => [n1, n3].every((node) => ipcache(node).some((r) => r.cidr === `${pod("late").ip}/32` && r.identity === late)));
    await eventually("web (n1) to reach late (n2)", () => reaches("web", "late"));
    expect(await passes("web3", "late")).toBe(true);
    expect(await reaches("other", "late")).toBe(false);
    expect(await reaches("web", "late", "tcp", 8080)).toBe(false);
  }, 180_000);

  test("operator failover: the leader killed, the other replica takes over within 15 s and a new node gets a pod CIDR", async () => {
    const leader = await eventually("an operator leader", () => cluster.etcdGet("cilium/operator/leader")?.value);
    const standby = [...cluster.operators.keys()].find((id) => id !== leader)!;
    expect(standby).toBeDefined();
    await cluster.killOperator(leader);
    const killedAt = Date.now();
    await eventually(`${standby} to lead`, () => cluster.etcdGet("cilium/operator/leader")?.value === standby, TAKEOVER_LIMIT_MS + 5_000, 100);
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_LIMIT_MS);

    // A node joining now: its agent waits for a CIDR only the new leader can give.
    const n4 = cluster.addNode();
    await n4.startAgent();
    const cidr = JSON.parse(cluster.etcdGet("cilium/state/nodes/v1/default/n4")!.value).podCidrs[0] as string;
    const others = cluster.nodes.slice(0, 3).map((node) => JSON.parse(cluster.etcdGet(`cilium/state/nodes/v1/default/${node.options.name}`)!.value).podCidrs[0]);
    expect(cidr).toMatch(/^10\.240\.\d+\.0\/24$/);
    expect(others).not.toContain(cidr);
    addPod(n4, "web4", "web");
    expect(pod("web4").ip.startsWith(cidr.split(".").slice(0, 3).join("."))).toBe(true);
    await eventually("web4 (n4) to reach db (n2)", () => reaches("web4", "db"));
    expect(await reaches("web4", "db", "tcp", 8080)).toBe(false);
  }, 120_000);
});
