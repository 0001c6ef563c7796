/**
 * The node datapath on the real kernel, driven in-process: a node namespace with two pods and an
 * "outside" namespace routed from the node. Pods reach each other, the host and (masqueraded)
 * the outside; the host reaches pods; a removed endpoint is unreachable; a datapath closed and
 * started again (an agent restart) keeps forwarding.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { BpfMap, BpfObject } from "../../src/datapath/bpf/index.ts";
import { readObject } from "../../src/datapath/objects.ts";
import { mapPinRoot } from "../../src/datapath/pinned.ts";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { NodeDatapath, type EndpointAttachment } from "../../src/datapath/node.ts";
import { writeSysctl } from "../../src/datapath/sysctl.ts";
import { TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { connectOutside } from "../helpers/outside.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probe, startEchoServer, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tdn");
const octet = process.pid % 200;
const podCidr = `10.201.${octet}.0/24`;
const gateway = `10.201.${octet}.1`;
const nodeIp = `10.99.${octet}.1`;
const outsideIp = `10.99.${octet}.2`;
const bpfRoot = `/sys/fs/bpf/${prefix}`;

interface Pod {
  netns: string;
  endpoint: EndpointAttachment;
}

describePrivileged("node datapath: pods, host and outside", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  let node: Netns;
  let datapath: NodeDatapath | undefined;
  let nodeNs: string;
  let outsideNs: string;
  const pods: Pod[] = [];

  /** What the CNI plugin does for a pod: veth with the peer in the pod, address, routes. */
  function plumbPod(index: number): Pod {
    const netns = namespaces.create(`p${index}`);
    const ip = `10.201.${octet}.${10 + index}`;
    const hostName = `${prefix}l${index}`;
    const podNetns = Netns.open(Netns.pathOf(netns));
    const host = Netlink.open({ netns: node });
    const pod = Netlink.open({ netns: podNetns });
    try {
      host.createVeth({ name: hostName, peerName: `${prefix}t${index}`, peerNetns: podNetns });
      pod.setName(`${prefix}t${index}`, "eth0");
      pod.addAddress("eth0", `${ip}/32`);
      pod.setLinkUp("lo");
      pod.setLinkUp("eth0");
      pod.addRoute({ dst: `${gateway}/32`, dev: "eth0", scope: "link" });
      pod.addRoute({ dst: "default", via: gateway, dev: "eth0" });
      host.setLinkUp(hostName);
      writeSysctl(`net/ipv4/conf/${hostName}/rp_filter`, "0", { netns: node });
      const veth = host.link(hostName)!;
      const mac = pod.link("eth0")!.mac!;
      return { netns, endpoint: { id: 100 + index, ipv4: ip, ifname: hostName, ifindex: veth.index, mac, identity: 0 } };
    } finally {
      host.close();
      pod.close();
      podNetns.close();
    }
  }

  beforeAll(async () => {
    nodeNs = namespaces.create("node");
    outsideNs = namespaces.create("out");
    node = Netns.open(Netns.pathOf(nodeNs));
    connectOutside({ nodeNetns: Netns.pathOf(nodeNs), outsideNetns: Netns.pathOf(outsideNs), prefix, nodeIp, outsideIp });

    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: true, netns: node });
    for (const index of [0, 1]) {
      const pod = plumbPod(index);
      datapath.applyEndpoint(pod.endpoint);
      pods.push(pod);
    }
    for (const [netns, protocol] of [
      [pods[1]!.netns, "tcp"],
      [pods[1]!.netns, "udp"],
      [pods[0]!.netns, "tcp"],
      [nodeNs, "tcp"],
      [outsideNs, "tcp"],
      [outsideNs, "udp"],
    ] as const) {
      servers.push(await startEchoServer(netns, protocol, 7000));
    }
  });

  afterAll(() => {
    for (const server of servers) server.stop();
    datapath?.close();
    node?.close();
    namespaces.removeAll();
    rmSync(bpfRoot, { recursive: true, force: true });
  });

  test("status names the attach mode, gateway, native device and programs", () => {
    const status = datapath!.status();
    expect(status.attachMode).toBe("tcx");
    expect(status.endpointAttachMode).toBe("clsact");
    expect(status.gateway).toBe(gateway);
    expect(status.nativeDevice).toBe(`${prefix}ext`);
    expect(status.nodeIp).toBe(nodeIp);
    const lxc = status.programs.find((p) => p.name === "cil_from_container")!;
    expect(lxc.attachedTo.sort()).toEqual([`${prefix}l0/ingress`, `${prefix}l1/ingress`]);
    expect(status.programs.find((p) => p.name === "cil_from_host")!.attachedTo).toEqual(["cilium_host/egress"]);
  });

  test("the node's own addresses are HOST in the ipcache", () => {
    const host = datapath!.listIpcache().filter((e) => e.identity === 1).map((e) => e.cidr).sort();
    expect(host).toEqual([`${nodeIp}/32`, `${gateway}/32`].sort());
  });

  test("the endpoints map holds each pod with its host veth", () => {
    const entries = datapath!.listEndpoints().sort((a, b) => a.info.lxcId - b.info.lxcId);
    expect(entries.map((e) => [e.ip, e.info.lxcId, e.info.ifindex, e.info.mac])).toEqual(
      pods.map((p) => [p.endpoint.ipv4, p.endpoint.id, p.endpoint.ifindex, p.endpoint.mac]),
    );
  });

  test("pod to pod over TCP and UDP, source address preserved", () => {
    expect(probe(pods[0]!.netns, "tcp", pods[1]!.endpoint.ipv4, 7000)).toBe(pods[0]!.endpoint.ipv4);
    expect(probe(pods[0]!.netns, "udp", pods[1]!.endpoint.ipv4, 7000)).toBe(pods[0]!.endpoint.ipv4);
    expect(probe(pods[1]!.netns, "tcp", pods[0]!.endpoint.ipv4, 7000)).toBe(pods[1]!.endpoint.ipv4);
  });

  test("pod to host and host to pod", () => {
    expect(probe(pods[0]!.netns, "tcp", gateway, 7000)).toBe(pods[0]!.endpoint.ipv4);
    expect(probe(pods[0]!.netns, "tcp", nodeIp, 7000)).toBe(pods[0]!.endpoint.ipv4);
    expect(probe(nodeNs, "tcp", pods[1]!.endpoint.ipv4, 7000)).toBe(gateway);
  });

  test("pod to outside is masqueraded behind the node address", () => {
    expect(probe(pods[0]!.netns, "tcp", outsideIp, 7000)).toBe(nodeIp);
    expect(probe(pods[1]!.netns, "udp", outsideIp, 7000)).toBe(nodeIp);
  });

  test("a restarted datapath keeps its maps and forwards without re-applying", () => {
    datapath!.close();
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: true, netns: node });
    expect(datapath.listEndpoints()).toHaveLength(2);
    expect(probe(pods[0]!.netns, "tcp", pods[1]!.endpoint.ipv4, 7000)).toBe(pods[0]!.endpoint.ipv4);
    for (const pod of pods) datapath.applyEndpoint(pod.endpoint);
    expect(probe(pods[1]!.netns, "udp", outsideIp, 7000)).toBe(nodeIp);
  });

  test("a restart over an events ring pinned at another size (an earlier build) recreates the ring and keeps the rest", () => {
    datapath!.close();
    const eventsPin = join(mapPinRoot(bpfRoot), "cilium_events");
    rmSync(eventsPin);
    const older = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot: mapPinRoot(bpfRoot) });
    try {
      older.map("cilium_events").setMaxEntries(1 << 20);
      older.load();
    } finally {
      older.close();
    }
    expect(BpfMap.pinnedInfo(eventsPin).maxEntries).toBe(1 << 20);
    datapath = NodeDatapath.start({ bpfRoot, podCidr, mtu: 1500, masquerade: true, netns: node });
    expect(BpfMap.pinnedInfo(eventsPin).maxEntries).toBe(1 << 23);
    expect(datapath.listEndpoints()).toHaveLength(2);
    expect(probe(pods[0]!.netns, "tcp", pods[1]!.endpoint.ipv4, 7000)).toBe(pods[0]!.endpoint.ipv4);
  });

  test("a removed endpoint is unreachable and leaves no map entry or pin", () => {
    datapath!.removeEndpoint(pods[1]!.endpoint);
    expect(datapath!.listEndpoints().map((e) => e.ip)).toEqual([pods[0]!.endpoint.ipv4]);
    expect(probe(pods[0]!.netns, "tcp", pods[1]!.endpoint.ipv4, 7000, 500)).toBeNull();
    expect(Bun.spawnSync(["ls", `${bpfRoot}/cilium/links`]).stdout.toString()).not.toContain(`${prefix}l1`);
  });
});
