/**
 * One node's datapath: the BPF programs loaded once and shared by every endpoint, the maps they
 * share (pinned, so they outlive the agent), the cilium_host/cilium_net pair that holds the pod
 * gateway, and the attachments to each endpoint's host-side veth.
 *
 * Everything is pinned under the bpf root: an agent killed with -9 leaves the datapath running,
 * and a restarted agent re-opens the same maps and swaps fresh programs into the same links, so
 * established connections never see a gap.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  attachTc,
  BpfLink,
  BpfMap,
  BpfObject,
  programInfo,
  tcxSupported,
  u32,
  type BpfProgram,
  type TcAttachment,
  type TcDirection,
} from "./bpf/index.ts";
import { ensureBpffs } from "./bpffs.ts";
import { EndpointInfo, EndpointKey, ENDPOINTS_MAP, type EndpointInfoValue } from "./maps/endpoints.ts";
import { MonitorAggregation, NODE_CONFIG_MAP, NodeConfig, NodeFlags, type MonitorAggregationLevel } from "./maps/node-config.ts";
import { Netlink, type Link } from "./netlink/index.ts";
import type { Netns } from "./netns.ts";
import { readObject } from "./objects.ts";
import { mapPinRoot } from "./pinned.ts";
import { writeSysctl } from "./sysctl.ts";
import { formatIpv4, parseCidr, type Ipv4Cidr } from "../net/ipv4.ts";

export const HOST_DEVICE = "cilium_host";
export const NET_DEVICE = "cilium_net";

export interface NodeDatapathConfig {
  /** Root of this node's pins (maps under tc/globals, links under cilium/links). */
  bpfRoot: string;
  /** This node's pod CIDR; its first address is the pods' gateway on cilium_host. */
  podCidr: string;
  /** Destinations inside this CIDR are never masqueraded (default: the pod CIDR). */
  clusterCidr?: string;
  mtu: number;
  masquerade: boolean;
  /** Native devices for masquerade; default: the device of the IPv4 default route. */
  devices?: string[];
  monitorAggregation?: MonitorAggregationLevel;
  /**
   * The node's network namespace when it is not this thread's own (tests drive several nodes
   * from one process). Every kernel call of this datapath then runs inside it.
   */
  netns?: Netns;
}

/** What the datapath needs to know of an endpoint to deliver to and from it. */
export interface EndpointAttachment {
  id: number;
  ipv4: string;
  /** Host-side veth. */
  ifname: string;
  ifindex: number;
  /** Pod-side MAC; the host-side MAC is read from the veth itself. */
  mac: string;
  identity: number;
}

export interface NodeDatapathStatus {
  attachMode: "tcx" | "clsact";
  bpfRoot: string;
  gateway: string;
  nativeDevice: string | null;
  nodeIp: string | null;
  masquerade: boolean;
  programs: { name: string; id: number; attachedTo: string[] }[];
}

interface NativeDevice {
  link: Link;
  address: string;
}

const LXC_PROGRAM = "cil_from_container";
const HOST_PROGRAM = "cil_from_host";
const TO_NETDEV_PROGRAM = "cil_to_netdev";
const FROM_NETDEV_PROGRAM = "cil_from_netdev";

export class NodeDatapath {
  /** "ifname/direction" -> the attachment and the name of its program. */
  private readonly attachments = new Map<string, { attachment: TcAttachment; program: string }>();

  private constructor(
    readonly config: NodeDatapathConfig,
    private readonly objects: { lxc: BpfObject; host: BpfObject },
    private readonly endpoints: BpfMap<{ ip4: string }, EndpointInfoValue>,
    private readonly netlink: Netlink,
    readonly gateway: string,
    readonly native: NativeDevice | null,
    readonly attachMode: "tcx" | "clsact",
  ) {}

  /** Loads (or re-adopts) the node's datapath. Safe to call after a crash: every step converges. */
  static start(config: NodeDatapathConfig): NodeDatapath {
    return inNetns(config.netns, () => NodeDatapath.startHere(config));
  }

  private static startHere(config: NodeDatapathConfig): NodeDatapath {
    const podCidr = parseCidr(config.podCidr);
    if (podCidr.prefixLength > 30) throw new Error(`pod CIDR ${config.podCidr} is too small: it needs a gateway and pod addresses`);
    const clusterCidr = parseCidr(config.clusterCidr ?? config.podCidr);
    const gateway = formatIpv4(podCidr.network + 1);

    ensureBpffs(config.bpfRoot);
    const pinRoot = mapPinRoot(config.bpfRoot);
    mkdirSync(pinRoot, { recursive: true, mode: 0o700 });
    mkdirSync(linksDir(config.bpfRoot), { recursive: true, mode: 0o700 });

    const objects: { lxc?: BpfObject; host?: BpfObject } = {};
    const netlink = Netlink.open();
    try {
      // Both objects declare the shared maps pinned by name: the first load creates (or reuses
      // from an earlier run) and pins them, the second reuses them.
      objects.lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot });
      objects.lxc.load();
      objects.host = BpfObject.open(readObject("bpf_host"), { name: "bpf_host", pinRoot });
      objects.host.load();

      const host = setUpHostDevices(netlink, gateway, podCidr, config.mtu);
      setUpSysctls();
      const native = config.masquerade ? findNativeDevice(netlink, config.devices) : null;

      const nodeConfig = new BpfMap(objects.host.map(NODE_CONFIG_MAP), u32, NodeConfig);
      try {
        nodeConfig.update(0, {
          nodeIp4: native?.address ?? "0.0.0.0",
          podCidr4: formatIpv4(podCidr.network),
          podCidr4Mask: formatIpv4(podCidr.mask),
          clusterCidr4: formatIpv4(clusterCidr.network),
          clusterCidr4Mask: formatIpv4(clusterCidr.mask),
          hostIp4: gateway,
          hostIfindex: host.index,
          nativeIfindex: native?.link.index ?? 0,
          hostMac: host.mac ?? "00:00:00:00:00:00",
          monitorAggregation: MonitorAggregation[config.monitorAggregation ?? "medium"],
          flags: native ? NodeFlags.Masquerade : 0,
          snatPortMin: 0,
          snatPortMax: 0,
          reserved: [0, 0, 0, 0],
        });
      } finally {
        nodeConfig.close();
      }

      const datapath = new NodeDatapath(
        config,
        objects as { lxc: BpfObject; host: BpfObject },
        new BpfMap(objects.lxc.map(ENDPOINTS_MAP), EndpointKey, EndpointInfo),
        netlink,
        gateway,
        native,
        tcxSupported() ? "tcx" : "clsact",
      );
      datapath.attach(objects.host.program(HOST_PROGRAM), host, "egress");
      if (native) {
        datapath.attach(objects.host.program(TO_NETDEV_PROGRAM), native.link, "egress");
        datapath.attach(objects.host.program(FROM_NETDEV_PROGRAM), native.link, "ingress");
      }
      return datapath;
    } catch (error) {
      objects.lxc?.close();
      objects.host?.close();
      netlink.close();
      throw error;
    }
  }

  /** Programs one endpoint: its map entry, then the program on its host veth. Idempotent. */
  applyEndpoint(endpoint: EndpointAttachment): void {
    inNetns(this.config.netns, () => this.applyEndpointHere(endpoint));
  }

  private applyEndpointHere(endpoint: EndpointAttachment): void {
    const veth = this.netlink.link(endpoint.ifindex);
    if (!veth || veth.name !== endpoint.ifname) {
      throw new Error(`endpoint ${endpoint.id}: host interface ${endpoint.ifname} (ifindex ${endpoint.ifindex}) does not exist`);
    }
    if (!veth.mac) throw new Error(`endpoint ${endpoint.id}: host interface ${endpoint.ifname} has no MAC address`);
    this.endpoints.update(
      { ip4: endpoint.ipv4 },
      { ifindex: endpoint.ifindex, lxcId: endpoint.id, flags: 0, mac: endpoint.mac, nodeMac: veth.mac, secIdentity: endpoint.identity },
    );
    try {
      this.attach(this.objects.lxc.program(LXC_PROGRAM), veth, "ingress");
    } catch (error) {
      this.endpoints.delete({ ip4: endpoint.ipv4 });
      throw error;
    }
  }

  /** Removes an endpoint's map entry and program; anything already gone is fine. */
  removeEndpoint(endpoint: Pick<EndpointAttachment, "ipv4" | "ifname" | "ifindex">): void {
    inNetns(this.config.netns, () => this.removeEndpointHere(endpoint));
  }

  private removeEndpointHere(endpoint: Pick<EndpointAttachment, "ipv4" | "ifname" | "ifindex">): void {
    const entry = this.endpoints.lookup({ ip4: endpoint.ipv4 });
    // Only the entry that still belongs to this interface: the IP may already serve another pod.
    if (entry && entry.ifindex === endpoint.ifindex) this.endpoints.delete({ ip4: endpoint.ipv4 });
    this.detach(endpoint.ifname, "ingress");
  }

  /** Whether the endpoint's host veth still exists under that index and name. */
  hasInterface(ifindex: number, ifname: string): boolean {
    return inNetns(this.config.netns, () => this.netlink.link(ifindex)?.name === ifname);
  }

  /**
   * Removes map entries and endpoint program pins that belong to no live endpoint (say, the
   * state dir was wiped while pods ran). Answers a description of each thing removed.
   */
  removeStale(live: readonly Pick<EndpointAttachment, "ipv4" | "ifname">[]): string[] {
    return inNetns(this.config.netns, () => {
      const liveIps = new Set(live.map((e) => e.ipv4));
      const liveInterfaces = new Set([HOST_DEVICE, ...(this.native ? [this.native.link.name] : []), ...live.map((e) => e.ifname)]);
      const removed: string[] = [];
      for (const { ip, info } of this.listEndpoints()) {
        if (liveIps.has(ip)) continue;
        this.endpoints.delete({ ip4: ip });
        removed.push(`endpoint map entry ${ip} (endpoint ${info.lxcId}, ifindex ${info.ifindex})`);
      }
      for (const pin of readdirSync(linksDir(this.config.bpfRoot))) {
        const dash = pin.lastIndexOf("-");
        const ifname = pin.slice(0, dash);
        const direction = pin.slice(dash + 1) as TcDirection;
        if (liveInterfaces.has(ifname)) continue;
        this.detach(ifname, direction);
        removed.push(`program link ${pin}`);
      }
      return removed;
    });
  }

  /** The endpoints map as the kernel holds it. */
  listEndpoints(): { ip: string; info: EndpointInfoValue }[] {
    return [...this.endpoints.entries()].map(([key, info]) => ({ ip: key.ip4, info }));
  }

  status(): NodeDatapathStatus {
    const attachedTo = new Map<string, string[]>();
    for (const [key, { program }] of this.attachments) attachedTo.set(program, [...(attachedTo.get(program) ?? []), key]);
    const programs = [this.objects.lxc.program(LXC_PROGRAM), ...[HOST_PROGRAM, TO_NETDEV_PROGRAM, FROM_NETDEV_PROGRAM].map((n) => this.objects.host.program(n))];
    return {
      attachMode: this.attachMode,
      bpfRoot: this.config.bpfRoot,
      gateway: this.gateway,
      nativeDevice: this.native?.link.name ?? null,
      nodeIp: this.native?.address ?? null,
      masquerade: this.native !== null,
      programs: programs.map((p) => ({ name: p.name, id: programInfo(p.fd).id, attachedTo: attachedTo.get(p.name) ?? [] })),
    };
  }

  /** Closes our handles. Pinned maps and links stay: the datapath keeps forwarding without us. */
  close(): void {
    for (const { attachment } of this.attachments.values()) attachment.close();
    this.attachments.clear();
    this.endpoints.close();
    this.objects.lxc.close();
    this.objects.host.close();
    this.netlink.close();
  }

  private attach(program: BpfProgram, link: Link, direction: TcDirection): void {
    const key = `${link.name}/${direction}`;
    this.attachments.get(key)?.attachment.close();
    const attachment = attachTc(program, link.index, direction, {
      mode: this.attachMode,
      pinPath: linkPin(this.config.bpfRoot, link.name, direction),
      replace: true,
    });
    this.attachments.set(key, { attachment, program: program.name });
  }

  private detach(ifname: string, direction: TcDirection): void {
    const key = `${ifname}/${direction}`;
    const attachment = this.attachments.get(key)?.attachment;
    this.attachments.delete(key);
    const pin = linkPin(this.config.bpfRoot, ifname, direction);
    if (attachment) {
      try {
        attachment.detach();
      } catch {
        // The interface went first (CNI DEL removes the veth): the kernel dropped the link.
      }
      attachment.close();
    } else if (existsSync(pin)) {
      try {
        BpfLink.openPinned(pin).detach();
      } catch {
        // A defunct link of a vanished interface: removing the pin is all that is left.
      }
    }
    rmSync(pin, { force: true });
  }
}

function inNetns<T>(netns: Netns | undefined, fn: () => T): T {
  return netns ? netns.run(fn) : fn();
}

export function linksDir(bpfRoot: string): string {
  return join(bpfRoot, "cilium", "links");
}

function linkPin(bpfRoot: string, ifname: string, direction: TcDirection): string {
  return join(linksDir(bpfRoot), `${ifname}-${direction}`);
}

/**
 * cilium_host holds the pods' gateway address; cilium_net is its peer. Both are NOARP: the
 * kernel hands packets for pods to cilium_host without resolving neighbours, and the egress
 * program there rewrites the MACs and redirects to the pod's veth.
 */
function setUpHostDevices(netlink: Netlink, gateway: string, podCidr: Ipv4Cidr, mtu: number): Link {
  if (!netlink.link(HOST_DEVICE)) netlink.createVeth({ name: HOST_DEVICE, peerName: NET_DEVICE, mtu });
  for (const name of [HOST_DEVICE, NET_DEVICE]) {
    netlink.setArp(name, false);
    netlink.setMtu(name, mtu);
    netlink.setLinkUp(name);
  }
  const host = netlink.link(HOST_DEVICE)!;
  if (!netlink.addresses({ link: HOST_DEVICE }).some((a) => a.address === gateway && a.prefixLength === 32)) {
    netlink.addAddress(HOST_DEVICE, `${gateway}/32`);
  }
  netlink.replaceRoute({ dst: `${formatIpv4(podCidr.network)}/${podCidr.prefixLength}`, dev: HOST_DEVICE, scope: "link", src: gateway });
  return host;
}

function setUpSysctls(): void {
  writeSysctl("net.ipv4.ip_forward", "1");
  // Pods' packets enter on their veth with source addresses routed via cilium_host: strict
  // reverse-path filtering would drop them. The kernel uses max(all, device).
  for (const device of ["all", "default", HOST_DEVICE, NET_DEVICE]) writeSysctl(`net/ipv4/conf/${device}/rp_filter`, "0");
}

function findNativeDevice(netlink: Netlink, devices: string[] | undefined): NativeDevice | null {
  let link: Link | undefined;
  if (devices?.length) {
    link = netlink.link(devices[0]!);
    if (!link) throw new Error(`--devices: no interface named ${devices[0]}`);
  } else {
    const route = netlink.routes({ family: 4 }).find((r) => r.dst === "default" && r.dev !== undefined);
    link = route?.dev === undefined ? undefined : netlink.link(route.dev);
  }
  if (!link) return null;
  const address = netlink.addresses({ link: link.index }).find((a) => a.family === 4)?.address;
  if (!address) throw new Error(`native device ${link.name} has no IPv4 address to masquerade behind`);
  return { link, address };
}
