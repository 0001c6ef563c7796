/**
 * Two nodes on the real kernel, driven in-process: node namespaces A and B joined by an underlay
 * (a Linux bridge in a third namespace), each running a NodeDatapath with pods, each told about
 * the other with upsertRemoteNode and the other's pods' ipcache entries.
 *
 * Tunnel mode: pods reach each other across nodes through cilium_vxlan; each packet's VNI is its
 * sender's identity (read off the underlay with an AF_PACKET capture); B enforces its pod's
 * ingress policy by that identity (proved by changing the sender's identity on A only: B's
 * ipcache keeps the old one, and B's verdict follows A). Native mode with direct routes: the
 * same traffic is routed via the node IPs, identities come from B's ipcache. In both modes,
 * deleteRemoteNode removes what upsertRemoteNode added and cross-node traffic stops.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { BpfMap, u32 } from "../../src/datapath/bpf/index.ts";
import { NODE_CONFIG_MAP, NodeConfig } from "../../src/datapath/maps/node-config.ts";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { pinnedMapPath } from "../../src/datapath/pinned.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { NodeDatapath, type EndpointAttachment, type RoutingMode } from "../../src/datapath/node.ts";
import { NODE_ROUTE_PROTOCOL } from "../../src/datapath/remote-nodes.ts";
import { writeSysctl } from "../../src/datapath/sysctl.ts";
import { ipJson, run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probe, startEchoServer, type EchoServer } from "../helpers/traffic.ts";

const octet = process.pid % 200;
const clusterCidr = `10.213.${octet}.0/24`;
const UNDERLAY_MTU = 1500;
const TCP = 6;
const POLICY_DENIED = 133;
const ALLOWED_IDENTITY = 1000;
const OTHER_IDENTITY = 1001;
const REMOTE_NODE = 6;
const HOST = 1;
const INVALID_IDENTITY = 171;

interface NodeSpec {
  name: string;
  ip: string;
  podCidr: string;
  gateway: string;
  podBase: string;
}

const nodeSpecs: NodeSpec[] = [
  { name: "a", ip: `10.97.${octet}.1`, podCidr: `10.213.${octet}.0/25`, gateway: `10.213.${octet}.1`, podBase: `10.213.${octet}.` },
  { name: "b", ip: `10.97.${octet}.2`, podCidr: `10.213.${octet}.128/25`, gateway: `10.213.${octet}.129`, podBase: `10.213.${octet}.` },
];

interface Pod {
  netns: string;
  endpoint: EndpointAttachment;
}

interface TestNodeState {
  spec: NodeSpec;
  nsName: string;
  netns: Netns;
  bpfRoot: string;
  datapath: NodeDatapath;
  pods: Pod[];
  drops: { reason: number; srcIdentity: number; dstId: number }[];
  closeEvents: () => void;
}

/** Two nodes on one underlay, pods on each, every node told about the other. */
function twoNodeCluster(mode: RoutingMode, tag: string) {
  const prefix = uniquePrefix(tag);
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  const nodes: TestNodeState[] = [];
  const bpfRoots: string[] = [];

  function plumbPod(node: TestNodeState, index: number, hostOctet: number, identity: number, mtu: number): Pod {
    const netns = namespaces.create(`${node.spec.name}p${index}`);
    const ip = `${node.spec.podBase}${hostOctet}`;
    const hostName = `${prefix}${node.spec.name}${index}`;
    const podNetns = Netns.open(Netns.pathOf(netns));
    const host = Netlink.open({ netns: node.netns });
    const pod = Netlink.open({ netns: podNetns });
    try {
      host.createVeth({ name: hostName, peerName: `${prefix}t${node.spec.name}${index}`, peerNetns: podNetns, mtu });
      pod.setName(`${prefix}t${node.spec.name}${index}`, "eth0");
      pod.addAddress("eth0", `${ip}/32`);
      pod.setLinkUp("lo");
      pod.setLinkUp("eth0");
      pod.addRoute({ dst: `${node.spec.gateway}/32`, dev: "eth0", scope: "link" });
      pod.addRoute({ dst: "default", via: node.spec.gateway, dev: "eth0" });
      host.setLinkUp(hostName);
      writeSysctl(`net/ipv4/conf/${hostName}/rp_filter`, "0", { netns: node.netns });
      const endpoint = { id: (node.spec.name === "a" ? 100 : 200) + index, ipv4: ip, ifname: hostName, ifindex: host.link(hostName)!.index, mac: pod.link("eth0")!.mac!, identity };
      return { netns, endpoint };
    } finally {
      host.close();
      pod.close();
      podNetns.close();
    }
  }

  async function setUp(): Promise<void> {
    const underlay = namespaces.create("ul");
    run(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", underlay, "link", "set", "br0", "up"]);
    const podMtu = mode === "tunnel" ? UNDERLAY_MTU - 50 : UNDERLAY_MTU;
    for (const spec of nodeSpecs) {
      const nsName = namespaces.create(spec.name);
      const uplink = `${prefix}u${spec.name}`;
      run(["ip", "link", "add", uplink, "mtu", String(UNDERLAY_MTU), "netns", nsName, "type", "veth", "peer", "name", `${prefix}w${spec.name}`, "netns", underlay]);
      run(["ip", "-n", underlay, "link", "set", `${prefix}w${spec.name}`, "master", "br0", "up"]);
      run(["ip", "-n", nsName, "addr", "add", `${spec.ip}/24`, "dev", uplink]);
      run(["ip", "-n", nsName, "link", "set", uplink, "up"]);
      run(["ip", "-n", nsName, "link", "set", "lo", "up"]);
      const bpfRoot = `/sys/fs/bpf/${prefix}${spec.name}`;
      rmSync(bpfRoot, { recursive: true, force: true });
      bpfRoots.push(bpfRoot); // removed in tearDown even when start fails half-way
      const netns = Netns.open(Netns.pathOf(nsName));
      const datapath = NodeDatapath.start({
        bpfRoot,
        podCidr: spec.podCidr,
        clusterCidr,
        mtu: podMtu,
        masquerade: true,
        devices: [uplink],
        netns,
        routingMode: mode,
        autoDirectNodeRoutes: mode === "native",
      });
      const node: TestNodeState = { spec, nsName, netns, bpfRoot, datapath, pods: [], drops: [], closeEvents: () => {} };
      const reader = datapath.openEvents(
        (record) => {
          if (record[0] !== 1) return; // drops only
          const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
          node.drops.push({ reason: record[1]!, srcIdentity: view.getUint32(16, true), dstId: view.getUint16(24, true) });
        },
        { pollIntervalMs: 20 },
      );
      node.closeEvents = () => reader.close();
      nodes.push(node);
    }
    const [a, b] = nodes as [TestNodeState, TestNodeState];
    a.pods.push(plumbPod(a, 0, 10, ALLOWED_IDENTITY, podMtu), plumbPod(a, 1, 11, OTHER_IDENTITY, podMtu));
    b.pods.push(plumbPod(b, 0, 140, 2000, podMtu));
    for (const node of nodes) for (const pod of node.pods) node.datapath.applyEndpoint(pod.endpoint);
    for (const node of nodes) {
      for (const other of nodes) {
        if (other === node) continue;
        node.datapath.upsertRemoteNode({ name: other.spec.name, ipv4: other.spec.ip, podCidrs: [other.spec.podCidr] });
        for (const pod of other.pods) node.datapath.upsertIpcache(`${pod.endpoint.ipv4}/32`, pod.endpoint.identity, { tunnelEndpoint: other.spec.ip });
      }
    }
    for (const [netns, protocol] of [
      [b.pods[0]!.netns, "tcp"],
      [b.pods[0]!.netns, "udp"],
      [a.pods[0]!.netns, "tcp"],
    ] as const) {
      servers.push(await startEchoServer(netns, protocol, 7000));
    }
  }

  function tearDown(): void {
    for (const server of servers) server.stop();
    for (const node of nodes) {
      node.closeEvents();
      node.datapath.close();
      node.netns.close();
    }
    for (const root of bpfRoots) rmSync(root, { recursive: true, force: true });
    namespaces.removeAll();
  }

  return { nodes: nodes as TestNodeState[], setUp, tearDown, prefix };
}

/**
 * Prints "<frame length> <inner source> <VNI>" for every VXLAN (UDP 8472) frame seen on an
 * interface until killed: an AF_PACKET reader, so the test needs no tcpdump.
 */
const VXLAN_CAPTURE = `
import socket, struct, sys, signal
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind((sys.argv[1], 0))
while True:
    p = s.recv(65535)
    if p[12:14] != b'\\x08\\x00' or p[23] != 17: continue
    l4 = 14 + (p[14] & 15) * 4
    if struct.unpack('!H', p[l4 + 2:l4 + 4])[0] != 8472: continue
    vni = int.from_bytes(p[l4 + 12:l4 + 15], 'big')
    inner = l4 + 16 + 14
    print(len(p), socket.inet_ntoa(p[inner + 12:inner + 16]), vni, flush=True)
`;

/** Captures VXLAN frames on an interface of the underlay namespace until stopped. */
function captureVxlan(prefix: string, ifname: string): { stop(): Promise<{ length: number; innerSource: string; vni: number }[]> } {
  const capture = Bun.spawn(["nsenter", `--net=/var/run/netns/${prefix}-ul`, "python3", "-c", VXLAN_CAPTURE, ifname], { stdout: "pipe", stderr: "pipe" });
  return {
    async stop() {
      capture.kill("SIGTERM");
      const lines = (await new Response(capture.stdout).text()).trim().split("\n").filter(Boolean);
      return lines.map((line) => {
        const [length, innerSource, vni] = line.split(" ");
        return { length: Number(length), innerSource: innerSource!, vni: Number(vni) };
      });
    },
  };
}

/** Packets through each node's cilium_vxlan and datagrams into B's UDP stack. */
function overlayCounters(a: TestNodeState, b: TestNodeState) {
  const vxlan = (n: TestNodeState) => ipJson<{ stats64: { rx: { packets: number }; tx: { packets: number } } }[]>(["-s", "link", "show", "cilium_vxlan"], n.nsName)[0]!.stats64;
  const udpIn = Number(run(["ip", "netns", "exec", b.nsName, "cat", "/proc/net/snmp"]).stdout.split("\n").filter((l) => l.startsWith("Udp:"))[1]!.split(/\s+/)[1]);
  return { aVxlanTx: vxlan(a).tx.packets, bVxlanRx: vxlan(b).rx.packets, bUdpIn: udpIn };
}

/** Sets the node's tunnel port in its node config (0 turns the BPF fast path off); returns the undo. */
function setTunnelPort(node: TestNodeState, port: number): () => void {
  const write = (value: number) => {
    const config = BpfMap.openPinned(pinnedMapPath(node.bpfRoot, NODE_CONFIG_MAP), u32, NodeConfig);
    try {
      const current = config.lookup(0)!;
      config.update(0, { ...current, tunnelPort: value });
      return current.tunnelPort;
    } finally {
      config.close();
    }
  };
  const previous = write(port);
  return () => void write(previous);
}

/** Before a test closes a node's datapath: the events reader reads through its map handle. */
function stopEvents(node: TestNodeState): void {
  node.closeEvents();
  node.closeEvents = () => {};
}

/** B's pod admits only ALLOWED_IDENTITY on TCP 7000. */
function enforceOnB(b: TestNodeState): void {
  b.datapath.setEndpointPolicy(b.pods[0]!.endpoint.id, {
    ingressEnforced: true,
    egressEnforced: false,
    entries: [{ direction: "ingress", identity: ALLOWED_IDENTITY, protocol: TCP, port: 7000, prefixLength: 16, deny: false }],
  });
}

async function policyDropsOn(node: TestNodeState, dstId: number, sinceIndex: number): Promise<{ reason: number; srcIdentity: number }[]> {
  await Bun.sleep(100); // the ring reader polls every 20 ms
  return node.drops.slice(sinceIndex).filter((d) => d.reason === POLICY_DENIED && d.dstId === dstId);
}

describePrivileged("two nodes, routing mode tunnel (VXLAN, identity in the VNI)", () => {
  const cluster = twoNodeCluster("tunnel", "tov");
  const node = (i: number) => cluster.nodes[i]!;

  beforeAll(cluster.setUp);
  afterAll(cluster.tearDown);

  test("each node has an external cilium_vxlan on port 8472 with the pod MTU, and cil_from_overlay on it", () => {
    for (const n of cluster.nodes) {
      const [link] = ipJson<{ mtu: number; operstate: string; linkinfo: { info_kind: string; info_data: { port: number; external?: boolean } } }[]>(
        ["-d", "link", "show", "cilium_vxlan"],
        n.nsName,
      );
      expect(link!.linkinfo.info_kind).toBe("vxlan");
      expect(link!.linkinfo.info_data.port).toBe(8472);
      expect(link!.linkinfo.info_data.external).toBe(true);
      expect(link!.mtu).toBe(UNDERLAY_MTU - 50);
      const status = n.datapath.status();
      expect(status.routingMode).toBe("tunnel");
      expect(status.programs.find((p) => p.name === "cil_from_overlay")!.attachedTo).toEqual(["cilium_vxlan/ingress"]);
    }
  });

  test("the remote node's pod CIDR is an ipcache prefix tunnelled to its IP; its IP is REMOTE_NODE", () => {
    const [a, b] = [node(0), node(1)];
    const entries = a.datapath.listIpcache();
    expect(entries).toContainEqual({ cidr: b.spec.podCidr, identity: 2, tunnelEndpoint: b.spec.ip });
    expect(entries).toContainEqual({ cidr: `${b.spec.ip}/32`, identity: REMOTE_NODE });
    expect(a.datapath.listRemoteNodes()).toEqual([{ name: "b", ipv4: b.spec.ip, podCidrs: [b.spec.podCidr] }]);
  });

  test("pod to pod across nodes over TCP and UDP, both ways, source address preserved", () => {
    const [a0, b0] = [node(0).pods[0]!, node(1).pods[0]!];
    expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(a0.netns, "udp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(b0.netns, "tcp", a0.endpoint.ipv4, 7000)).toBe(b0.endpoint.ipv4);
  });

  test("the BPF fast path carries them: neither node's cilium_vxlan nor B's UDP stack sees the VXLAN frames", () => {
    const [a, b] = [node(0), node(1)];
    const before = overlayCounters(a, b);
    expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
    expect(probe(a.pods[0]!.netns, "udp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
    expect(overlayCounters(a, b)).toEqual(before);
  });

  test("with the fast path off (tunnel port 0 in the node config) the same traffic goes through cilium_vxlan", () => {
    const [a, b] = [node(0), node(1)];
    const restore = [a, b].map((n) => setTunnelPort(n, 0));
    try {
      const before = overlayCounters(a, b);
      expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
      const after = overlayCounters(a, b);
      expect(after.aVxlanTx).toBeGreaterThan(before.aVxlanTx);
      expect(after.bVxlanRx).toBeGreaterThan(before.bVxlanRx);
      expect(after.bUdpIn).toBeGreaterThan(before.bUdpIn);
    } finally {
      for (const undo of restore) undo();
    }
  });

  test("one fast-path end and one device end interoperate, both ways", () => {
    const [a, b] = [node(0), node(1)];
    const restore = setTunnelPort(a, 0);
    try {
      const before = overlayCounters(a, b);
      expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
      expect(probe(b.pods[0]!.netns, "tcp", a.pods[0]!.endpoint.ipv4, 7000)).toBe(b.pods[0]!.endpoint.ipv4);
      const after = overlayCounters(a, b);
      // A sends through its device and receives through it (its fast path is off); B takes A's frames in BPF.
      expect(after.aVxlanTx).toBeGreaterThan(before.aVxlanTx);
      expect(after.bVxlanRx).toBe(before.bVxlanRx);
    } finally {
      restore();
    }
  });

  test("a bulk TCP stream is segmented to full-size VXLAN frames that fit the underlay MTU, and B decapsulates them in BPF", async () => {
    const [a, b] = [node(0), node(1)];
    // A veth passes UDP-tunnel GSO packets whole; without that offload A's uplink segments them
    // as a NIC would, so the frames on the wire show the segment size.
    const uplink = `${cluster.prefix}ua`;
    const udpTunnelGso = (state: "on" | "off") => run(["ip", "netns", "exec", a.nsName, "ethtool", "-K", uplink, "tx-udp_tnl-segmentation", state]);
    udpTunnelGso("off");
    const before = overlayCounters(a, b);
    const capture = captureVxlan(cluster.prefix, `${cluster.prefix}wa`);
    const server = Bun.spawn(["nsenter", `--net=/var/run/netns/${b.pods[0]!.netns}`, "iperf3", "-s", "-1", "-p", "5299"], { stdout: "ignore", stderr: "ignore" });
    let report: { end: { sum_received: { bytes: number } } };
    let frames: { length: number }[] = [];
    try {
      await Bun.sleep(500); // capture bound, server listening
      const client = Bun.spawnSync(["nsenter", `--net=/var/run/netns/${a.pods[0]!.netns}`, "iperf3", "-c", b.pods[0]!.endpoint.ipv4, "-p", "5299", "-t", "1", "-J"], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
      expect(client.exitCode).toBe(0);
      report = JSON.parse(client.stdout.toString());
    } finally {
      server.kill();
      frames = await capture.stop();
      udpTunnelGso("on");
    }
    const after = overlayCounters(a, b);
    const sizes = frames.map((f) => f.length);
    expect(report.end.sum_received.bytes).toBeGreaterThan(10_000_000);
    expect(sizes.length).toBeGreaterThan(10); // a sample: the reader cannot keep up with the stream
    expect(Math.max(...sizes)).toBe(14 + UNDERLAY_MTU);
    expect(after.bVxlanRx).toBe(before.bVxlanRx);
  });

  test("on the wire the VNI is the sending endpoint's identity (captured on the underlay)", async () => {
    const [a, b] = [node(0), node(1)];
    const [a0, a1] = [a.pods[0]!, a.pods[1]!];
    const capture = captureVxlan(cluster.prefix, `${cluster.prefix}wb`);
    let frames: { innerSource: string; vni: number }[] = [];
    try {
      await Bun.sleep(500); // the capture socket is bound
      expect(probe(a0.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
      expect(probe(a1.netns, "udp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a1.endpoint.ipv4);
      await Bun.sleep(100);
    } finally {
      frames = await capture.stop();
    }
    const seen = new Set(frames.map((f) => `${f.innerSource} vni ${f.vni}`));
    // Both directions pass this bridge port: B's replies carry its pod's identity.
    const b0 = b.pods[0]!.endpoint;
    expect([...seen].sort()).toEqual([`${a0.endpoint.ipv4} vni ${ALLOWED_IDENTITY}`, `${a1.endpoint.ipv4} vni ${OTHER_IDENTITY}`, `${b0.ipv4} vni ${b0.identity}`].sort());
  });

  test("the receiving node enforces ingress policy by the identity in the VNI", async () => {
    const [a, b] = [node(0), node(1)];
    const [a0, a1, b0] = [a.pods[0]!, a.pods[1]!, b.pods[0]!];
    enforceOnB(b);
    const mark = b.drops.length;
    expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(a1.netns, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull();
    const drops = await policyDropsOn(b, b0.endpoint.id, mark);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.srcIdentity === OTHER_IDENTITY)).toBe(true);
  });

  test("changing the sender's identity on its own node flips the receiver's verdict (B's ipcache unchanged)", async () => {
    const [a, b] = [node(0), node(1)];
    const [a0, a1, b0] = [a.pods[0]!, a.pods[1]!, b.pods[0]!];
    enforceOnB(b);
    a.datapath.applyEndpoint({ ...a0.endpoint, identity: OTHER_IDENTITY });
    a.datapath.applyEndpoint({ ...a1.endpoint, identity: ALLOWED_IDENTITY });
    try {
      // B still maps a0 -> ALLOWED and a1 -> OTHER in its ipcache: only the VNI says otherwise.
      expect(b.datapath.listIpcache()).toContainEqual({ cidr: `${a0.endpoint.ipv4}/32`, identity: ALLOWED_IDENTITY, tunnelEndpoint: a.spec.ip });
      const mark = b.drops.length;
      expect(probe(a1.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a1.endpoint.ipv4);
      expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull();
      const drops = await policyDropsOn(b, b0.endpoint.id, mark);
      expect(drops.length).toBeGreaterThan(0);
      expect(drops.every((d) => d.srcIdentity === OTHER_IDENTITY)).toBe(true);
    } finally {
      a.datapath.applyEndpoint(a0.endpoint);
      a.datapath.applyEndpoint(a1.endpoint);
    }
  });

  test("replies of an allowed connection pass back through the tunnel with B's ingress enforced", () => {
    const [a, b] = [node(0), node(1)];
    enforceOnB(b);
    // b0 -> a0: B's egress is not enforced, A's ingress is not: the reply to b0 is a CT reply.
    expect(probe(b.pods[0]!.netns, "tcp", a.pods[0]!.endpoint.ipv4, 7000)).toBe(b.pods[0]!.endpoint.ipv4);
  });

  test("the node's host reaches a pod on the other node as REMOTE_NODE: B's policy decides by that identity", async () => {
    const [a, b] = [node(0), node(1)];
    const b0 = b.pods[0]!;
    // The host's route to B's pods goes into cilium_host, from the node's gateway address.
    const routes = ipJson<{ dst: string; dev: string; prefsrc: string; protocol: string }[]>(["route", "show", b.spec.podCidr], a.nsName);
    expect(routes).toEqual([expect.objectContaining({ dst: b.spec.podCidr, dev: "cilium_host", prefsrc: a.spec.gateway })]);
    b.datapath.setEndpointPolicy(b0.endpoint.id, { ingressEnforced: false, egressEnforced: false, entries: [] });
    expect(probe(a.nsName, "tcp", b0.endpoint.ipv4, 7000)).toBe(a.spec.gateway);
    expect(run(["ip", "netns", "exec", a.nsName, "ping", "-c", "1", "-W", "1", b0.endpoint.ipv4], { allowFailure: true }).exitCode).toBe(0);

    enforceOnB(b); // admits ALLOWED_IDENTITY only
    const mark = b.drops.length;
    expect(probe(a.nsName, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull();
    const drops = await policyDropsOn(b, b0.endpoint.id, mark);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.srcIdentity === REMOTE_NODE)).toBe(true);

    b.datapath.setEndpointPolicy(b0.endpoint.id, {
      ingressEnforced: true,
      egressEnforced: false,
      entries: [{ direction: "ingress", identity: REMOTE_NODE, protocol: TCP, port: 7000, prefixLength: 16, deny: false }],
    });
    expect(probe(a.nsName, "tcp", b0.endpoint.ipv4, 7000)).toBe(a.spec.gateway);
    expect(probe(a.pods[0]!.netns, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull(); // a pod is not the node
  });

  test("a VNI claiming HOST is refused by the receiver: no node may pose as the receiving host", async () => {
    const [a, b] = [node(0), node(1)];
    const [a0, b0] = [a.pods[0]!, b.pods[0]!];
    b.datapath.setEndpointPolicy(b0.endpoint.id, { ingressEnforced: false, egressEnforced: false, entries: [] });
    a.datapath.applyEndpoint({ ...a0.endpoint, identity: HOST });
    try {
      const mark = b.drops.length;
      expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull();
      const deadline = Date.now() + 2000;
      while (!b.drops.slice(mark).some((d) => d.reason === INVALID_IDENTITY) && Date.now() < deadline) await Bun.sleep(20);
      expect(b.drops.slice(mark).filter((d) => d.reason === INVALID_IDENTITY).map((d) => d.srcIdentity)).toContain(HOST);
    } finally {
      a.datapath.applyEndpoint(a0.endpoint);
    }
  });

  test("deleteRemoteNode removes the tunnel entries and the node's identity; traffic stops; upsert restores it", () => {
    const [a, b] = [node(0), node(1)];
    b.datapath.setEndpointPolicy(b.pods[0]!.endpoint.id, { ingressEnforced: false, egressEnforced: false, entries: [] });
    a.datapath.deleteRemoteNode("b");
    a.datapath.deleteRemoteNode("b"); // idempotent
    const left = a.datapath.listIpcache();
    expect(left.find((e) => e.cidr === b.spec.podCidr)).toBeUndefined();
    expect(left.find((e) => e.cidr === `${b.spec.ip}/32`)).toBeUndefined();
    expect(a.datapath.listRemoteNodes()).toEqual([]);
    expect(ipJson(["route", "show", b.spec.podCidr], a.nsName)).toEqual([]);
    // The endpoint's own /32 is the control plane's (deleteIpcache): drop it too, then nothing tunnels.
    a.datapath.deleteIpcache(`${b.pods[0]!.endpoint.ipv4}/32`);
    expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000, 500)).toBeNull();

    a.datapath.upsertRemoteNode({ name: "b", ipv4: b.spec.ip, podCidrs: [b.spec.podCidr] });
    expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
  });

  test("an upsert with other pod CIDRs replaces the old entries; bad input names the problem and changes nothing", () => {
    const [a, b] = [node(0), node(1)];
    const extra = `10.214.${octet}.0/24`;
    a.datapath.upsertRemoteNode({ name: "b", ipv4: b.spec.ip, podCidrs: [extra] });
    let cidrs = a.datapath.listIpcache().filter((e) => e.tunnelEndpoint === b.spec.ip).map((e) => e.cidr);
    expect(cidrs).toEqual([extra]);
    a.datapath.upsertRemoteNode({ name: "b", ipv4: b.spec.ip, podCidrs: [b.spec.podCidr] });

    const before = a.datapath.listIpcache();
    expect(() => a.datapath.upsertRemoteNode({ name: "c", ipv4: "10.1.2.3", podCidrs: [a.spec.podCidr] })).toThrow(/overlaps this node's pod CIDR/);
    expect(() => a.datapath.upsertRemoteNode({ name: "c", ipv4: "10.1.2.3", podCidrs: [b.spec.podCidr] })).toThrow(/overlaps .* of node b/);
    expect(() => a.datapath.upsertRemoteNode({ name: "c", ipv4: "10.1.2.300", podCidrs: [] })).toThrow(/not an IPv4 address/);
    expect(() => a.datapath.upsertRemoteNode({ name: "c", ipv4: "10.1.2.3", podCidrs: ["10.9.9.1/24"] })).toThrow(/host bits/);
    expect(() => a.datapath.upsertRemoteNode({ name: "c", ipv4: a.spec.ip, podCidrs: [] })).toThrow(/address of this node/);
    expect(a.datapath.listIpcache()).toEqual(before);
    cidrs = a.datapath.listIpcache().filter((e) => e.tunnelEndpoint === b.spec.ip).map((e) => e.cidr);
    expect(cidrs).toEqual([b.spec.podCidr]); // the pod's /32 went in the test before
  });

  test("a restarted datapath re-adopts cilium_vxlan and the overlay keeps forwarding", () => {
    const a = node(0);
    const ifindex = ipJson<{ ifindex: number }[]>(["link", "show", "cilium_vxlan"], a.nsName)[0]!.ifindex;
    stopEvents(a);
    a.datapath.close();
    a.datapath = NodeDatapath.start({ ...a.datapath.config });
    expect(ipJson<{ ifindex: number }[]>(["link", "show", "cilium_vxlan"], a.nsName)[0]!.ifindex).toBe(ifindex);
    expect(probe(a.pods[0]!.netns, "tcp", node(1).pods[0]!.endpoint.ipv4, 7000)).toBe(a.pods[0]!.endpoint.ipv4);
  });
});

describePrivileged("two nodes, routing mode native with auto-direct-node-routes", () => {
  const cluster = twoNodeCluster("native", "tnr");
  const node = (i: number) => cluster.nodes[i]!;

  beforeAll(cluster.setUp);
  afterAll(cluster.tearDown);

  test("no overlay device; the remote pod CIDR is routed via the remote node's IP", () => {
    const [a, b] = [node(0), node(1)];
    expect(run(["ip", "-n", a.nsName, "link", "show", "cilium_vxlan"], { allowFailure: true }).exitCode).not.toBe(0);
    const routes = ipJson<{ dst: string; gateway?: string; protocol: string | number }[]>(["route", "show", b.spec.podCidr], a.nsName);
    expect(routes).toHaveLength(1);
    expect(routes[0]!.gateway).toBe(b.spec.ip);
    expect(String(routes[0]!.protocol)).toBe(String(NODE_ROUTE_PROTOCOL));
    expect(a.datapath.listIpcache().find((e) => e.cidr === b.spec.podCidr)).toBeUndefined();
  });

  test("pod to pod across nodes over TCP and UDP, both ways, source address preserved (no masquerade)", () => {
    const [a0, b0] = [node(0).pods[0]!, node(1).pods[0]!];
    expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(a0.netns, "udp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(b0.netns, "tcp", a0.endpoint.ipv4, 7000)).toBe(b0.endpoint.ipv4);
  });

  test("the receiving node enforces ingress policy by the source identity in its ipcache", async () => {
    const [a, b] = [node(0), node(1)];
    const [a0, a1, b0] = [a.pods[0]!, a.pods[1]!, b.pods[0]!];
    enforceOnB(b);
    const mark = b.drops.length;
    expect(probe(a0.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a0.endpoint.ipv4);
    expect(probe(a1.netns, "tcp", b0.endpoint.ipv4, 7000, 500)).toBeNull();
    const drops = await policyDropsOn(b, b0.endpoint.id, mark);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.srcIdentity === OTHER_IDENTITY)).toBe(true);

    // The ipcache decides here: giving a1's address the allowed identity on B lets it in.
    b.datapath.upsertIpcache(`${a1.endpoint.ipv4}/32`, ALLOWED_IDENTITY);
    expect(probe(a1.netns, "tcp", b0.endpoint.ipv4, 7000)).toBe(a1.endpoint.ipv4);
    b.datapath.setEndpointPolicy(b0.endpoint.id, { ingressEnforced: false, egressEnforced: false, entries: [] });
  });

  test("deleteRemoteNode removes the route and the node's identity; traffic stops", () => {
    const [a, b] = [node(0), node(1)];
    a.datapath.deleteRemoteNode("b");
    expect(ipJson(["route", "show", b.spec.podCidr], a.nsName)).toEqual([]);
    expect(a.datapath.listIpcache().find((e) => e.cidr === `${b.spec.ip}/32`)).toBeUndefined();
    expect(probe(a.pods[0]!.netns, "tcp", b.pods[0]!.endpoint.ipv4, 7000, 500)).toBeNull();
  });

  test("a datapath restarted in tunnel mode creates cilium_vxlan; back in native mode removes it and its pin", () => {
    const a = node(0);
    const config = { ...a.datapath.config };
    stopEvents(a);
    a.datapath.close();
    a.datapath = NodeDatapath.start({ ...config, routingMode: "tunnel", autoDirectNodeRoutes: false, mtu: UNDERLAY_MTU - 50 });
    expect(run(["ip", "-n", a.nsName, "link", "show", "cilium_vxlan"]).exitCode).toBe(0);
    a.datapath.close();
    a.datapath = NodeDatapath.start(config);
    expect(run(["ip", "-n", a.nsName, "link", "show", "cilium_vxlan"], { allowFailure: true }).exitCode).not.toBe(0);
    expect(run(["ls", `${a.bpfRoot}/cilium/links`]).stdout).not.toContain("cilium_vxlan");
  });
});
