/**
 * Pod networking on one node through the real executable: `cilium agent` in a node namespace,
 * pods attached by `cilium-cni` invoked exactly as a runtime does (env + stdin), traffic through
 * the eBPF datapath. Expected outcomes are written out by hand.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { connectOutside } from "../helpers/outside.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probe, startEchoServer, startStream, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tpn");
const octet = (process.pid % 200) + 20;
const podCidr = `10.202.${octet}.0/24`;
const gateway = `10.202.${octet}.1`;
const nodeIp = `10.98.${octet}.1`;
const outsideIp = `10.98.${octet}.2`;
const PORT = 7100;

describePrivileged("pod networking on one node (real agent, real CNI plugin)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  let node: TestNode;
  let outsideNs: string;
  const pods: Pod[] = [];

  async function ipamUsed(): Promise<number> {
    const { body } = await node.api("GET", "/healthz");
    return body.ipam.ipv4.used;
  }

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n1", podCidr });
    outsideNs = namespaces.create("out");
    connectOutside({ nodeNetns: node.netnsPath, outsideNetns: `/var/run/netns/${outsideNs}`, prefix, nodeIp, outsideIp });
    await node.startAgent();
    for (const [name, namespace] of [
      ["web-0", "shop"],
      ["web-1", "shop"],
      ["db-0", "shop"],
      ["api-0", "billing"],
      ["api-1", "billing"],
      ["batch-0", "billing"],
    ] as const) {
      pods.push(node.addPod(name, namespace));
    }
    for (const pod of pods) {
      servers.push(await startEchoServer(pod.netns, "tcp", PORT));
      servers.push(await startEchoServer(pod.netns, "udp", PORT));
    }
    servers.push(await startEchoServer(outsideNs, "tcp", PORT));
    servers.push(await startEchoServer(node.netns, "tcp", PORT));
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  test("six pods got distinct addresses from the pod CIDR and ready endpoints", async () => {
    const ips = pods.map((p) => p.ip);
    expect(new Set(ips).size).toBe(6);
    for (const ip of ips) expect(ip).toStartWith(`10.202.${octet}.`);
    expect(ips).not.toContain(gateway);
    const { body: endpoints } = await node.api("GET", "/endpoint");
    expect(endpoints.map((e: any) => e.state)).toEqual(["ready", "ready", "ready", "ready", "ready", "ready"]);
    expect(node.bpfEndpointIps()).toEqual([...ips].sort());
    expect(endpoints.find((e: any) => e.addressing.ipv4 === pods[3]!.ip).labels).toContain("k8s:io.kubernetes.pod.namespace=billing");
  });

  test("every pod reaches every other pod over TCP and UDP", () => {
    const failures: string[] = [];
    for (const protocol of ["tcp", "udp"] as const) {
      for (const from of pods) {
        for (const to of pods) {
          if (from === to) continue;
          const seen = probe(from.netns, protocol, to.ip, PORT);
          if (seen !== from.ip) failures.push(`${protocol} ${from.name} -> ${to.name}: ${seen ?? "no answer"}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  test("pods reach the host and the host reaches pods", () => {
    expect(probe(pods[0]!.netns, "tcp", gateway, PORT)).toBe(pods[0]!.ip);
    expect(probe(pods[4]!.netns, "tcp", nodeIp, PORT)).toBe(pods[4]!.ip);
    expect(probe(node.netns, "tcp", pods[2]!.ip, PORT)).toBe(gateway);
  });

  test("pods reach the outside masqueraded behind the node address", () => {
    expect(probe(pods[1]!.netns, "tcp", outsideIp, PORT)).toBe(nodeIp);
    expect(probe(pods[5]!.netns, "tcp", outsideIp, PORT)).toBe(nodeIp);
  });

  test("CHECK confirms an attachment", () => {
    const pod = pods[0]!;
    const outcome = node.cni({ command: "CHECK", containerId: pod.containerId, netns: `/var/run/netns/${pod.netns}`, ifname: "eth0" });
    expect(outcome.exitCode).toBe(0);
  });

  test("ADD of an existing attachment is refused and the pod keeps working", async () => {
    const pod = pods[2]!;
    const before = await ipamUsed();
    const outcome = node.cni({
      command: "ADD",
      containerId: pod.containerId,
      netns: `/var/run/netns/${pod.netns}`,
      ifname: "eth0",
      args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0",
    });
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.json!.code).toBe(103);
    expect(await ipamUsed()).toBe(before);
    expect(probe(pods[0]!.netns, "tcp", pod.ip, PORT)).toBe(pods[0]!.ip);
  });

  describe("spec errors", () => {
    const attachment = (netns: string) => ({ command: "ADD" as const, containerId: `${prefix}bad`, netns, ifname: "eth0" });
    let scratch: string;
    beforeAll(() => {
      scratch = `/var/run/netns/${namespaces.create("scratch")}`;
    });

    test("malformed config: code 6", () => {
      const outcome = node.cni({ ...attachment(scratch), config: "{not json" });
      expect(outcome.exitCode).not.toBe(0);
      expect(outcome.json!.code).toBe(6);
      expect(outcome.json!.msg).toContain("cannot decode network config");
    });

    test("unknown cniVersion: code 1", () => {
      const outcome = node.cni({ ...attachment(scratch), config: node.networkConfig({ cniVersion: "3.0.0" }) });
      expect(outcome.json!.code).toBe(1);
      expect(outcome.json!.msg).toContain('"3.0.0"');
    });

    test("dead agent socket: code 11 naming the socket, nothing left behind", () => {
      const socket = join(node.dir, "nobody-listens.sock");
      const outcome = node.cni({ ...attachment(scratch), config: node.networkConfig({ "socket-path": socket }) });
      expect(outcome.json!.code).toBe(11);
      expect(outcome.json!.msg).toContain(socket);
      expect(node.lxcInterfaces()).toHaveLength(6);
    });
  });

  test("an exhausted pool is plugin error 100 naming the pool, and a failed ADD leaves nothing", async () => {
    const small = new TestNode(namespaces, { name: "n2", podCidr: `10.203.${octet}.0/29`, extraAgentArgs: ["--enable-ipv4-masquerade=false"] });
    try {
      await small.startAgent();
      const attached = [1, 2, 3, 4, 5].map((i) => small.addPod(`p${i}`));
      expect(attached.map((p) => p.ip.split(".")[3]).sort()).toEqual(["2", "3", "4", "5", "6"]);
      const netns = `/var/run/netns/${namespaces.create("n2-p6")}`;
      const outcome = small.cni({ command: "ADD", containerId: `${prefix}n2p6`, netns, ifname: "eth0" });
      expect(outcome.exitCode).not.toBe(0);
      expect(outcome.json!.code).toBe(100);
      expect(outcome.json!.msg).toContain(`IPAM pool 10.203.${octet}.0/29 is exhausted`);
      expect(small.lxcInterfaces()).toHaveLength(5);
      // A freed address is handed out again.
      expect(small.delPod(attached[2]!).exitCode).toBe(0);
      expect(small.addPod("p7").ip).toBe(attached[2]!.ip);
    } finally {
      await small.destroy();
    }
  }, 60_000);

  test("DEL leaves no interface, map entry, IP, endpoint, state file or pin; a second DEL succeeds", async () => {
    const pod = pods.pop()!;
    const before = await ipamUsed();
    const endpointIds: number[] = (await node.api("GET", "/endpoint")).body.filter((e: any) => e.addressing.ipv4 === pod.ip).map((e: any) => e.id);
    expect(node.delPod(pod).exitCode).toBe(0);
    expect(await ipamUsed()).toBe(before - 1);
    expect(node.bpfEndpointIps()).not.toContain(pod.ip);
    expect(node.lxcInterfaces()).toHaveLength(5);
    expect((await node.api("GET", "/endpoint")).body.map((e: any) => e.addressing.ipv4)).not.toContain(pod.ip);
    expect((await node.api("GET", `/endpoint/${endpointIds[0]}`)).status).toBe(404);
    // Each remaining pod's veth carries exactly our one filter; nothing else is pinned for pods.
    for (const ifname of node.lxcInterfaces()) {
      const filters = run(["ip", "netns", "exec", node.netns, "tc", "filter", "show", "dev", ifname, "ingress"]).stdout;
      // The kernel keeps 15 characters of a program name.
      expect(filters.match(/handle 0x1 cil_from_contai:/g)).toHaveLength(1);
    }
    expect(readdirSync(join(node.bpfRoot, "cilium", "links")).filter((p) => p.startsWith("lxc"))).toEqual([]);
    const stateFiles = readdirSync(join(node.dir, "state"), { recursive: true }).map(String);
    expect(stateFiles.join(" ")).not.toContain(pod.containerId);
    expect(node.delPod(pod).exitCode).toBe(0);
    expect(probe(pods[0]!.netns, "tcp", pod.ip, PORT, 500)).toBeNull();
  });

  test("STATUS answers 0 while the agent serves and 50 when it is gone", async () => {
    expect(node.cni({ command: "STATUS" }).exitCode).toBe(0);
    await node.stopAgent();
    const down = node.cni({ command: "STATUS" });
    expect(down.exitCode).not.toBe(0);
    expect(down.json!.code).toBe(50);
    expect(down.json!.msg).toContain(node.socketPath);
    await node.startAgent();
    expect(node.cni({ command: "STATUS" }).exitCode).toBe(0);
  }, 30_000);

  test("GC removes exactly the attachments not in cni.dev/valid-attachments", async () => {
    const extra = node.addPod("gc-victim", "shop");
    const before = await ipamUsed();
    const valid = pods.map((p) => ({ containerID: p.containerId, ifname: "eth0" }));
    const outcome = node.cni({ command: "GC", config: node.networkConfig({ "cni.dev/valid-attachments": valid }) });
    expect(outcome.exitCode).toBe(0);
    expect(await ipamUsed()).toBe(before - 1);
    expect(node.bpfEndpointIps()).toEqual(pods.map((p) => p.ip).sort());
    expect(node.lxcInterfaces()).toHaveLength(pods.length);
    expect(probe(pods[0]!.netns, "tcp", pods[1]!.ip, PORT)).toBe(pods[0]!.ip);
    expect(probe(pods[0]!.netns, "tcp", extra.ip, PORT, 500)).toBeNull();
  }, 30_000);

  test("kill -9 of the agent under continuous traffic loses no established connection", async () => {
    const stream = startStream(pods[0]!.netns, pods[1]!.ip, PORT, 20);
    await Bun.sleep(500);
    await node.killAgent();
    await Bun.sleep(1500);
    // While the agent is down, new connections work too: the datapath runs on its own.
    expect(probe(pods[3]!.netns, "tcp", pods[4]!.ip, PORT)).toBe(pods[3]!.ip);
    await node.startAgent();
    await Bun.sleep(500);
    const result = await stream.stop();
    expect(result.closed).toBe(false);
    expect(result.sent).toBeGreaterThan(80);
    expect(result.received).toBeGreaterThanOrEqual(result.sent - 2);
    const { body: endpoints } = await node.api("GET", "/endpoint");
    expect(endpoints).toHaveLength(5);
    expect(endpoints.every((e: any) => e.state === "ready")).toBe(true);
    expect(probe(pods[1]!.netns, "udp", pods[2]!.ip, PORT)).toBe(pods[1]!.ip);
  }, 30_000);

  test("kill -9 in the middle of an ADD leaves nothing behind after the runtime's DEL", async () => {
    // ADD takes ~10-40 ms here: points from the plugin's start-up through the agent's work, and one after.
    for (const delayMs of [5, 9, 13, 17, 22, 30, 80]) {
      const before = await ipamUsed();
      const interfaces = node.lxcInterfaces().length;
      const netns = namespaces.create(`mid${delayMs}`);
      const containerId = `${prefix}mid${delayMs}`;
      const env = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/var/run/netns/${netns}`,
        CNI_IFNAME: "eth0",
        CNI_PATH: "/opt/cni/bin",
      };
      const add = Bun.spawn(node.nodeArgv([join(import.meta.dir, "../../dist/cilium-cni")]), {
        env,
        stdin: Buffer.from(JSON.stringify(node.networkConfig())),
        stdout: "pipe",
        stderr: "pipe",
      });
      await Bun.sleep(delayMs);
      await node.killAgent();
      await add.exited;
      await node.startAgent();
      const del = node.cni({ command: "DEL", containerId, netns: `/var/run/netns/${netns}`, ifname: "eth0" });
      expect(del.exitCode).toBe(0);
      expect(node.lxcInterfaces()).toHaveLength(interfaces);
      expect(await ipamUsed()).toBe(before);
      const { body: endpoints } = await node.api("GET", "/endpoint");
      expect(endpoints.map((e: any) => e["container-id"])).not.toContain(containerId);
      expect(existsSync(`/var/run/netns/${netns}`)).toBe(true);
    }
  }, 90_000);
});
