/**
 * Tunnel mode, from the node's own network stack to a pod on another node: real agents, real
 * etcd, the operator. n1's host reaches n2's pod (TCP and ping) through the overlay, where n2
 * sees the sender as remote-node; n2's ingress policy decides by that identity. When n2 leaves
 * the cluster, n1's route to n2's pod CIDR goes.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestCluster, eventually } from "../helpers/cluster.ts";
import type { Pod, TestNode } from "../helpers/cluster-node.ts";
import { run, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("thr");
const octet = (process.pid % 200) + 20;
const DENIED_WAIT_MS = 1500;
const ALLOWED_WAIT_MS = 5000;

/** The server admits only app=client pods: n1's host (remote-node on n2) is not among them. */
const DENY_HOST = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-from-client, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
`;

const ALLOW_REMOTE_NODE = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-from-remote-node, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEntities: [remote-node]
`;

/** The server admits the given entity, beside DENY_HOST's app=client. */
const fromEntity = (entity: string) => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-from-${entity}, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEntities: [${entity}]
`;

describePrivileged("tunnel mode: a node's host reaches pods on other nodes as remote-node", () => {
  const cluster = new TestCluster({ prefix, underlaySubnet: `10.96.${octet}`, clusterPoolCidr: "10.242.0.0/16" });
  let server: EchoServer | undefined;
  let n1: TestNode;
  let n2: TestNode;
  let pod: Pod;

  const hostTcp = (timeoutMs: number) => probeAsync(n1.netns, "tcp", pod.ip, 80, timeoutMs);
  const hostPing = () => run(["nsenter", `--net=/var/run/netns/${n1.netns}`, "ping", "-c", "1", "-W", "2", pod.ip], { allowFailure: true }).exitCode === 0;
  /** n1's routes into cilium_host (JSON), where tunnel mode sends the host's traffic for remote pod CIDRs. */
  const routesToN2 = () => run(["ip", "-n", n1.netns, "-j", "route", "show", "dev", "cilium_host"], { allowFailure: true }).stdout;
  const policyCount = async (node: TestNode) => ((await node.api("GET", "/policy")).body as { policy?: unknown[] }).policy?.length ?? 0;

  beforeAll(async () => {
    await cluster.start(2);
    [n1, n2] = cluster.nodes as [TestNode, TestNode];
    pod = n2.addPod("server", "default", { app: "server" });
    server = await startEchoServers(pod.netns, [{ protocol: "tcp", port: 80 }]);
  }, 180_000);

  afterAll(async () => {
    server?.stop();
    await cluster.destroy();
  }, 60_000);

  test("without policy, n1's host reaches n2's pod over TCP and ping, through a route into cilium_host", async () => {
    await eventually("n1's route to n2's pod CIDR", () => routesToN2().includes(pod.ip.split(".").slice(0, 3).join(".")), 30_000);
    const answered = await eventually("n1's host to reach the pod", async () => (await hostTcp(ALLOWED_WAIT_MS)) !== null, 30_000, 500);
    expect(answered).toBe(true);
    expect(hostPing()).toBe(true);
  }, 60_000);

  test("a policy on the pod that does not allow remote-node drops n1's host; adding fromEntities remote-node lets it in", async () => {
    n1.cilium(["policy", "import", "-"], { stdin: DENY_HOST });
    await eventually("n2 to apply the policy", async () => (await policyCount(n2)) === 1);
    await eventually("n1's host to be dropped", async () => (await hostTcp(DENIED_WAIT_MS)) === null, 20_000, 500);
    expect(await hostTcp(DENIED_WAIT_MS)).toBeNull();
    expect(hostPing()).toBe(false);

    n1.cilium(["policy", "import", "-"], { stdin: ALLOW_REMOTE_NODE });
    await eventually("n2 to apply both policies", async () => (await policyCount(n2)) === 2);
    const passes = await eventually("n1's host to pass as remote-node", async () => (await hostTcp(ALLOWED_WAIT_MS)) !== null, 20_000, 500);
    expect(passes).toBe(true);
    expect(hostPing()).toBe(true);
  }, 90_000);

  async function onlyPolicies(...docs: string[]): Promise<void> {
    n1.cilium(["policy", "delete", "--all"]);
    await eventually("n2 to drop every policy", async () => (await policyCount(n2)) === 0);
    for (const doc of docs) n1.cilium(["policy", "import", "-"], { stdin: doc });
    await eventually("n2 to apply the policies", async () => (await policyCount(n2)) === docs.length);
  }

  test("as upstream, fromEntities host on n2 means n2's own host, not n1's: n1's host stays dropped; cluster includes remote-node and lets it in", async () => {
    await onlyPolicies(DENY_HOST, fromEntity("host"));
    await eventually("n1's host to be dropped under fromEntities host", async () => (await hostTcp(DENIED_WAIT_MS)) === null, 20_000, 500);
    expect(await hostTcp(DENIED_WAIT_MS)).toBeNull();

    await onlyPolicies(DENY_HOST, fromEntity("cluster"));
    const passes = await eventually("n1's host to pass under fromEntities cluster", async () => (await hostTcp(ALLOWED_WAIT_MS)) !== null, 20_000, 500);
    expect(passes).toBe(true);
    expect(hostPing()).toBe(true);
  }, 120_000);

  test("n2 leaving the cluster removes n1's route to its pod CIDR", async () => {
    const net = pod.ip.split(".").slice(0, 3).join(".");
    expect(routesToN2()).toContain(net);
    const lease = cluster.etcdGet(`cilium/state/ip/v1/default/${pod.ip}`)!.lease;
    await n2.killAgent();
    cluster.etcdRevokeLease(lease);
    const gone = await eventually("n1's route to n2's pod CIDR to go", () => !routesToN2().includes(net), 30_000);
    expect(gone).toBe(true);
  }, 60_000);
});
