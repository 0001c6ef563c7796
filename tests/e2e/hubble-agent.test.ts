/**
 * Hubble served by the real agent (dist/cilium in a node namespace), on the real kernel: pods
 * attached by the real CNI plugin, a policy imported through the CLI, real TCP and UDP between
 * pods, and flows read over gRPC from the agent's Hubble socket (hubble.sock next to the API
 * socket). Expected names, namespaces and identities come from the agent's endpoint API and the
 * test's own pod specs, never from Hubble.
 *
 * Pods (10.207.O.0/24): client-0 (shop, app=client), server-0 (shop, app=server, answers TCP 80
 * and 8080), gone-0 (billing, app=gone). Policy: server-0 accepts TCP 80 from app=client only.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

type Obj = Record<string, any>;

const prefix = uniquePrefix("thb");
const octet = (process.pid % 200) + 20;
const podCidr = `10.207.${octet}.0/24`;
/** cilium_events is 8 MiB: at most ~45,600 records of 184 bytes fit while nobody reads. */
const FLOOD = 30_000;

describePrivileged("Hubble in the agent (real agent, real kernel, real traffic)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  const pods = new Map<string, Pod>();
  const endpoints = new Map<string, { id: number; identity: number }>();
  let node: TestNode;
  let observer: (Client & Record<string, any>) | undefined;

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n1", podCidr });
    await node.startAgent();
    pods.set("client-0", node.addPod("client-0", "shop", { app: "client" }));
    pods.set("server-0", node.addPod("server-0", "shop", { app: "server" }));
    pods.set("gone-0", node.addPod("gone-0", "billing", { app: "gone" }));
    servers.push(await startEchoServers(pods.get("server-0")!.netns, [{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 8080 }]));
    const { body } = await node.api("GET", "/endpoint");
    for (const e of body) endpoints.set(e["k8s-pod-name"], { id: e.id, identity: e.identity });
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
`,
    );
    const imported = node.cilium(["policy", "import", policy]);
    const revision = /^Revision: (\d+)$/m.exec(imported.stdout)![1]!;
    expect(node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"], { check: false }).exitCode).toBe(0);
    const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
    observer = new Observer(`unix:${join(node.dir, "hubble.sock")}`, credentials.createInsecure()) as any;
  }, 120_000);

  afterAll(async () => {
    observer?.close();
    for (const server of servers) server.stop();
    try {
      if (node?.agentPid) process.kill(node.agentPid, "SIGCONT");
    } catch {
      // Already gone: nothing to resume.
    }
    await node?.destroy();
    namespaces.removeAll();
  });

  function getFlows(req: Obj): Promise<Obj[]> {
    return new Promise((resolve, reject) => {
      const out: Obj[] = [];
      const stream = observer!.GetFlows(req);
      stream.on("data", (d: Obj) => out.push(d));
      stream.on("end", () => resolve(out));
      stream.on("error", (error: ServiceError) => reject(error));
    });
  }

  /** Polls the agent's ring (last 500 entries) until a flow satisfies `match`. */
  async function findFlow(what: string, match: (flow: Obj) => boolean): Promise<Obj> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = (await getFlows({ number: 500 })).map((r) => r.flow).find((flow) => flow && match(flow));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no flow ${what} within 5 s`);
      await Bun.sleep(200);
    }
  }

  const ip = (name: string) => pods.get(name)!.ip;
  const tcpTo = (flow: Obj, from: string, to: string, port: number) =>
    flow.IP?.source === ip(from) && flow.IP?.destination === ip(to) && flow.l4?.TCP?.destination_port === port;

  test("allowed TCP between two pods: FORWARDED, with both pods' names, namespaces, identities and labels", async () => {
    expect(await probeAsync(pods.get("client-0")!.netns, "tcp", ip("server-0"), 80, 2000)).toBe(ip("client-0"));
    const flow = await findFlow("client-0 -> server-0:80", (f) => tcpTo(f, "client-0", "server-0", 80) && f.verdict === 1);
    expect(flow.verdict).toBe(1);
    expect(flow.node_name).toBe("n1");
    expect(flow.source).toMatchObject({ namespace: "shop", pod_name: "client-0", identity: endpoints.get("client-0")!.identity });
    expect(flow.source.labels).toEqual(expect.arrayContaining(["k8s:io.kubernetes.pod.namespace=shop", "k8s:app=client"]));
    expect(flow.destination).toMatchObject({ namespace: "shop", pod_name: "server-0", identity: endpoints.get("server-0")!.identity, ID: endpoints.get("server-0")!.id });
    expect(flow.destination.labels).toEqual(expect.arrayContaining(["k8s:io.kubernetes.pod.namespace=shop", "k8s:app=server"]));
    expect(flow.l4.TCP.flags.SYN).toBe(true);
    // The flow's time is the packet's, in wall-clock time.
    expect(Math.abs(flow.time.seconds - Date.now() / 1000)).toBeLessThan(30);
  }, 30_000);

  test("denied TCP: DROPPED with POLICY_DENIED, both pods named", async () => {
    expect(await probeAsync(pods.get("client-0")!.netns, "tcp", ip("server-0"), 8080, 1000)).toBeNull();
    // A denied packet gives a drop event and a policy-verdict event, both DROPPED for the same reason.
    const flow = await findFlow("client-0 -> server-0:8080 dropped", (f) => tcpTo(f, "client-0", "server-0", 8080) && f.verdict === 2 && f.event_type.type === 1);
    expect(flow.drop_reason_desc).toBe(133);
    const verdict = await findFlow("client-0 -> server-0:8080 policy verdict", (f) => tcpTo(f, "client-0", "server-0", 8080) && f.event_type.type === 5);
    expect(verdict).toMatchObject({ verdict: 2, drop_reason_desc: 133, traffic_direction: 1 });
    expect(flow.source).toMatchObject({ namespace: "shop", pod_name: "client-0", identity: endpoints.get("client-0")!.identity });
    expect(flow.destination).toMatchObject({ namespace: "shop", pod_name: "server-0", identity: endpoints.get("server-0")!.identity });
  }, 30_000);

  test("GetNamespaces lists the namespaces of the stored flows; ServerStatus counts them", async () => {
    const namespacesOf = await new Promise<Obj>((resolve, reject) => observer!.GetNamespaces({}, (e: ServiceError | null, r: Obj) => (e ? reject(e) : resolve(r))));
    expect(namespacesOf.namespaces.map((n: Obj) => n.namespace)).toContain("shop");
    const status = await new Promise<Obj>((resolve, reject) => observer!.ServerStatus({}, (e: ServiceError | null, r: Obj) => (e ? reject(e) : resolve(r))));
    expect(status.max_flows).toBe(4095);
    expect(status.num_flows).toBeGreaterThan(0);
  });

  test("traffic to a pod that was just deleted still names it", async () => {
    const gone = pods.get("gone-0")!;
    expect(node.delPod(gone).exitCode).toBe(0);
    await probeAsync(pods.get("client-0")!.netns, "tcp", gone.ip, 80, 500);
    const flow = await findFlow(`client-0 -> ${gone.ip}`, (f) => f.IP?.source === ip("client-0") && f.IP?.destination === gone.ip);
    expect(flow.destination).toMatchObject({ namespace: "billing", pod_name: "gone-0" });
    expect(flow.destination.labels).toEqual(expect.arrayContaining(["k8s:io.kubernetes.pod.namespace=billing", "k8s:app=gone"]));
    // The identity stays what the datapath saw: its address has left the ipcache, so world (as upstream).
    expect(flow.destination.identity).toBe(2);
  }, 30_000);

  test("events the kernel could not deliver while the agent was stalled show up as lost events", async () => {
    const pid = node.agentPid!;
    process.kill(pid, "SIGSTOP");
    try {
      // Every datagram is a policy drop, and every drop an event.
      run(["nsenter", `--net=/var/run/netns/${pods.get("client-0")!.netns}`, "bash", "-c", `for i in $(seq ${FLOOD}); do echo -n x 2>/dev/null >/dev/udp/${ip("server-0")}/9999; done; true`], { timeoutMs: 120_000 });
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const deadline = Date.now() + 8000;
    let lost: Obj | undefined;
    while (!lost && Date.now() < deadline) {
      await Bun.sleep(300);
      lost = (await getFlows({ number: 10 })).find((r) => r.lost_events?.source === 1)?.lost_events;
    }
    expect(lost).toBeDefined();
    // Each datagram is a new flow denied by policy: a policy verdict and a drop event. What did not
    // fit in the kernel's ring is lost; the rest became flows.
    const events = 2 * FLOOD;
    expect(lost!.num_events_lost).toBeGreaterThan(0);
    expect(lost!.num_events_lost).toBeLessThan(events);
    const drops = (await getFlows({ number: 4000 })).filter((r) => r.flow?.l4?.UDP?.destination_port === 9999 && r.flow.verdict === 2);
    expect(drops.length).toBeGreaterThan(1000);
    expect(drops[0]!.flow.source.pod_name).toBe("client-0");
  }, 150_000);
});
