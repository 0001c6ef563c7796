/**
 * Two nodes sharing a real etcd, through the real executable: `cilium agent --kvstore etcd` in
 * two node namespaces joined by an underlay bridge (etcd listens on the bridge, inside the
 * underlay namespace), pods attached by `cilium-cni`, and real TCP probes from pods on one node
 * to pods on the other (native routing between the nodes, no masquerading), so the receiving
 * node judges the sender by the identity its ipcache learned from etcd.
 *
 *   underlay  br0 10.97.O.1/24, etcd on 10.97.O.1:2379
 *   n1        eth0 10.97.O.11, pods 10.207.O.0/24, route to n2's pods via 10.97.O.12
 *   n2        eth0 10.97.O.12, pods 10.208.O.0/24, route to n1's pods via 10.97.O.11
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNode, CILIUM, type Pod } from "../helpers/cluster-node.ts";
import { EtcdServer } from "../helpers/etcd.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("etc");
const octet = (process.pid % 200) + 20;
const underlayIp = `10.97.${octet}.1`;
const LEASE_TTL = "4s";
const DROP_TIMEOUT_MS = 1500;

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: db-from-web, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: db } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`;

interface IpcacheRow {
  cidr: string;
  identity: number;
  tunnelEndpoint?: string;
}

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(200);
  }
}

describePrivileged("cluster state in etcd (two real agents, real etcd, real traffic)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  let etcd: EtcdServer | undefined;
  let underlay: string;
  const nodes: TestNode[] = [];
  const pods = new Map<string, Pod>();

  function ipcache(node: TestNode): IpcacheRow[] {
    return JSON.parse(run([CILIUM, "bpf", "ipcache", "list", "--bpf-root", node.bpfRoot, "-o", "json"]).stdout) as IpcacheRow[];
  }

  async function identityOf(node: TestNode, pod: Pod): Promise<number> {
    const { body } = await node.api<any[]>("GET", "/endpoint");
    const endpoint = body.find((e) => e["k8s-pod-name"] === pod.name);
    return endpoint.identity;
  }

  async function status(node: TestNode): Promise<any> {
    return (await node.api("GET", "/healthz")).body;
  }

  beforeAll(async () => {
    underlay = namespaces.create("u");
    run(["ip", "-n", underlay, "link", "set", "lo", "up"]);
    run(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", underlay, "addr", "add", `${underlayIp}/24`, "dev", "br0"]);
    run(["ip", "-n", underlay, "link", "set", "br0", "up"]);
    etcd = await EtcdServer.start({ host: underlayIp, port: 2379, netns: underlay });
    const specs = [
      { name: "n1", ip: `10.97.${octet}.11`, podCidr: `10.207.${octet}.0/24` },
      { name: "n2", ip: `10.97.${octet}.12`, podCidr: `10.208.${octet}.0/24` },
    ];
    const common = ["--kvstore-lease-ttl", LEASE_TTL, "--devices", "eth0", "--enable-ipv4-masquerade=false"];
    for (const spec of specs) {
      const node = new TestNode(namespaces, { name: spec.name, podCidr: spec.podCidr });
      if (spec.name === "n1") {
        node.options.extraAgentArgs = ["--kvstore", "etcd", "--kvstore-opt", `etcd.address=${etcd.url}`, ...common];
      } else {
        // n2 as a ConfigMap would configure it: --config-dir with kvstore and kvstore-opt naming upstream's etcd config file.
        const configDir = join(node.dir, "config");
        mkdirSync(configDir);
        writeFileSync(join(node.dir, "etcd.yaml"), `endpoints:\n- ${etcd.url}\n`);
        writeFileSync(join(configDir, "kvstore"), "etcd\n");
        writeFileSync(join(configDir, "kvstore-opt"), `etcd.config=${join(node.dir, "etcd.yaml")}\n`);
        node.options.extraAgentArgs = ["--config-dir", configDir, ...common];
      }
      nodes.push(node);
      run(["ip", "-n", node.netns, "link", "add", "eth0", "type", "veth", "peer", "name", `${prefix}${spec.name}`, "netns", underlay]);
      run(["ip", "-n", underlay, "link", "set", `${prefix}${spec.name}`, "master", "br0", "up"]);
      run(["ip", "-n", node.netns, "addr", "add", `${spec.ip}/24`, "dev", "eth0"]);
      run(["ip", "-n", node.netns, "link", "set", "eth0", "up"]);
    }
    run(["ip", "-n", nodes[0]!.netns, "route", "add", specs[1]!.podCidr, "via", specs[1]!.ip]);
    run(["ip", "-n", nodes[1]!.netns, "route", "add", specs[0]!.podCidr, "via", specs[0]!.ip]);
    await Promise.all(nodes.map((n) => n.startAgent()));
    pods.set("web", nodes[0]!.addPod("web", "default", { app: "web" }));
    pods.set("other", nodes[0]!.addPod("other", "default", { app: "other" }));
    pods.set("db", nodes[1]!.addPod("db", "default", { app: "db" }));
    pods.set("web2", nodes[1]!.addPod("web2", "default", { app: "web" }));
    servers.push(await startEchoServers(pods.get("db")!.netns, [{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 8080 }]));
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    for (const node of nodes) await node.destroy();
    await etcd?.destroy();
    namespaces.removeAll();
  });

  test("each agent reports the kvstore Ok and sees the other node", async () => {
    for (const node of nodes) {
      const body = await until("the other node in the registry", async () => {
        const s = await status(node);
        return s.kvstore.state === "Ok" && s.kvstore.msg.includes("1 other node") ? s : undefined;
      });
      expect(body.kvstore.msg).toContain(etcd!.url);
      expect(body.cilium.state).toBe("Ok");
    }
    const text = nodes[0]!.cilium(["status"]).stdout;
    expect(text).toMatch(/KVStore:\s+Ok\s+etcd: http:\/\/10\.97\.\d+\.1:2379/);
  });

  test("the same labels on two nodes get one identity; each node's ipcache holds the other's pods with their node", async () => {
    const web = await identityOf(nodes[0]!, pods.get("web")!);
    expect(web).toBeGreaterThanOrEqual(256);
    expect(await identityOf(nodes[1]!, pods.get("web2")!)).toBe(web);
    const db = await identityOf(nodes[1]!, pods.get("db")!);
    expect(db).not.toBe(web);
    await until("n2's ipcache to hold n1's pods", () => ipcache(nodes[1]!).some((r) => r.cidr === `${pods.get("web")!.ip}/32`) || undefined);
    expect(ipcache(nodes[1]!).find((r) => r.cidr === `${pods.get("web")!.ip}/32`)).toEqual({ cidr: `${pods.get("web")!.ip}/32`, identity: web, tunnelEndpoint: `10.97.${octet}.11` });
    await until("n1's ipcache to hold n2's pods", () => ipcache(nodes[0]!).some((r) => r.cidr === `${pods.get("db")!.ip}/32`) || undefined);
    expect(ipcache(nodes[0]!).find((r) => r.cidr === `${pods.get("db")!.ip}/32`)).toEqual({ cidr: `${pods.get("db")!.ip}/32`, identity: db, tunnelEndpoint: `10.97.${octet}.12` });
  });

  test("policy imported on n1 is enforced on n2 by the remote sender's labels", async () => {
    const db = pods.get("db")!;
    // No policy yet: both senders reach db.
    expect(await probeAsync(pods.get("web")!.netns, "tcp", db.ip, 80)).toBe(pods.get("web")!.ip);
    expect(await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80)).toBe(pods.get("other")!.ip);

    nodes[0]!.cilium(["policy", "import", "-"], { stdin: POLICY });
    await until("n2 to apply the policy", async () => {
      const { body } = await nodes[1]!.api("GET", "/policy");
      return body.policy?.length === 1 || undefined;
    });
    const revision = (await nodes[0]!.api("GET", "/policy")).body.revision;
    expect((await nodes[1]!.api("GET", "/policy")).body.revision).toBe(revision);
    await until("db's policy to be enforced", async () => ((await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)) === null ? true : undefined));
    expect(await probeAsync(pods.get("web")!.netns, "tcp", db.ip, 80)).toBe(pods.get("web")!.ip);
    expect(await probeAsync(pods.get("web")!.netns, "tcp", db.ip, 8080, DROP_TIMEOUT_MS)).toBeNull();
    expect(await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)).toBeNull();
  });

  test("policy deleted on n2 is gone on n1", async () => {
    nodes[1]!.cilium(["policy", "delete", "--all"]);
    await until("n1 to drop the rules", async () => ((await nodes[0]!.api("GET", "/policy")).body.policy.length === 0 ? true : undefined));
    await until("db open again", async () => ((await probeAsync(pods.get("other")!.netns, "tcp", pods.get("db")!.ip, 80)) !== null ? true : undefined));
    nodes[0]!.cilium(["policy", "import", "-"], { stdin: POLICY });
    await until("n2 to apply the policy again", async () => ((await nodes[1]!.api("GET", "/policy")).body.policy.length === 1 ? true : undefined));
  });

  test("etcd stopped: traffic and enforcement go on, agents are Degraded, new identities fail clearly; etcd back: all recovers", async () => {
    const db = pods.get("db")!;
    await until("enforced", async () => ((await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)) === null ? true : undefined));
    await etcd!.stop();
    try {
      for (const node of nodes) {
        const body = await until("the agent to notice", async () => {
          const s = await status(node);
          return s.kvstore.state === "Failure" ? s : undefined;
        });
        expect(body.cilium.state).toBe("Degraded");
        expect(body.problems.join("\n")).toMatch(/kvstore: etcd .* is unreachable/);
      }
      expect(await probeAsync(pods.get("web")!.netns, "tcp", db.ip, 80)).toBe(pods.get("web")!.ip);
      expect(await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)).toBeNull();
      // A pod with labels nobody has: its identity cannot be allocated without etcd.
      expect(() => nodes[0]!.addPod("late", "default", { app: "late" })).toThrow(/cannot allocate an identity for .*app=late.*etcd.*unreachable/s);
      const refused = nodes[0]!.cilium(["policy", "delete", "--all"], { check: false });
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr + refused.stdout).toMatch(/unreachable; nothing was changed/);
    } finally {
      await etcd!.start();
    }
    for (const node of nodes) {
      await until("the agent to recover", async () => {
        const s = await status(node);
        return s.kvstore.state === "Ok" && s.cilium.state === "Ok" ? s : undefined;
      }, 30_000);
    }
    const late = nodes[0]!.addPod("late2", "default", { app: "late" });
    pods.set("late2", late);
    const lateIdentity = await identityOf(nodes[0]!, late);
    await until("n2 to learn the new pod", () => ipcache(nodes[1]!).find((r) => r.cidr === `${late.ip}/32` && r.identity === lateIdentity));
    expect(await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)).toBeNull();
    expect(await probeAsync(pods.get("web")!.netns, "tcp", db.ip, 80)).toBe(pods.get("web")!.ip);
  }, 120_000);

  test("an agent restarted while etcd is down keeps its pods and other nodes' entries working, and completes its restore when etcd returns", async () => {
    const db = pods.get("db")!;
    const web = pods.get("web")!;
    await etcd!.stop();
    try {
      await nodes[0]!.stopAgent();
      await nodes[0]!.startAgent();
      const body = await status(nodes[0]!);
      expect(body.cilium.state).toBe("Degraded");
      expect(body.kvstore.state).toBe("Failure");
      expect(ipcache(nodes[0]!).some((r) => r.cidr === `${db.ip}/32`)).toBe(true);
      expect(await probeAsync(web.netns, "tcp", db.ip, 80)).toBe(web.ip);
      expect(await probeAsync(pods.get("other")!.netns, "tcp", db.ip, 80, DROP_TIMEOUT_MS)).toBeNull();
    } finally {
      await etcd!.start();
    }
    await until("n1 to finish its restore", async () => {
      const s = await status(nodes[0]!);
      const { body } = await nodes[0]!.api<any[]>("GET", "/endpoint");
      return s.cilium.state === "Ok" && body.every((e) => e.state === "ready") ? true : undefined;
    }, 30_000);
    expect(await probeAsync(web.netns, "tcp", db.ip, 80)).toBe(web.ip);
  }, 90_000);

  test("an agent killed: its node and pods leave the other node when its lease lapses, and come back with it, with the policy changed meanwhile", async () => {
    const web = pods.get("web")!;
    await nodes[0]!.killAgent();
    await until("n1's pods to leave n2's ipcache", () => (ipcache(nodes[1]!).some((r) => r.cidr === `${web.ip}/32`) ? undefined : true), 20_000);
    expect((await status(nodes[1]!)).kvstore.msg).toContain("0 other nodes");
    // The policy changes while n1 is down: n1 takes the cluster's revision when it comes back.
    nodes[1]!.cilium(["policy", "delete", "--all"]);
    const revision = (await nodes[1]!.api("GET", "/policy")).body.revision;
    await nodes[0]!.startAgent();
    await until("n1 to take the cluster's policy", async () => {
      const { body } = await nodes[0]!.api("GET", "/policy");
      return body.revision === revision && body.policy.length === 0 ? true : undefined;
    });
    await until("n1's pods back in n2's ipcache", () => ipcache(nodes[1]!).some((r) => r.cidr === `${web.ip}/32`) || undefined, 20_000);
    await until("web reaches db again", async () => ((await probeAsync(web.netns, "tcp", pods.get("db")!.ip, 80)) === web.ip ? true : undefined));
  }, 90_000);
});
