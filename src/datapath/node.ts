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
  bytes,
  ClsactAttachment,
  mapInfo,
  programInfo,
  RingBufferReader,
  tcxSupported,
  u32,
  type BpfProgram,
  type TcAttachment,
  type TcDirection,
} from "./bpf/index.ts";
import { ensureBpffs } from "./bpffs.ts";
import { ENDPOINT_POLICY_FLAGS, EndpointFlags, EndpointInfo, EndpointKey, ENDPOINTS_MAP, type EndpointInfoValue } from "./maps/endpoints.ts";
import {
  checkIdentity,
  IPCACHE_MAP,
  ipcacheCidrOf,
  ipcacheKeyOf,
  IpcacheKey,
  RemoteEndpointInfo,
  type IpcacheEntry,
  type IpcacheKeyValue,
  type RemoteEndpointInfoValue,
} from "./maps/ipcache.ts";
import {
  checkEndpointId,
  normalizePolicyKey,
  normalizePolicyRules,
  planFailClosed,
  policyKeyId,
  planPolicyUpdate,
  POLICY_MAP,
  PolicyEntry,
  PolicyEntryFlags,
  PolicyKey,
  policyRuleOf,
  sortPolicyRules,
  type EndpointPolicy,
  type PolicyEntryValue,
  type PolicyKeyValue,
  type PolicyMapEntry,
  type PolicyPlan,
  type PolicyRule,
} from "./maps/policy.ts";
import { METRIC_EVENTS_LOST, METRICS_MAP, MetricsKey, metricsValuePerCpu, type MapFill, type MetricsCounter } from "./maps/metrics.ts";
import { MonitorAggregation, NODE_CONFIG_MAP, NodeConfig, NodeFlags, type MonitorAggregationLevel } from "./maps/node-config.ts";
import { Netlink, type Link } from "./netlink/index.ts";
import type { Netns } from "./netns.ts";
import { readObject } from "./objects.ts";
import { DEFAULT_TUNNEL_PORT, ensureVxlanDevice, removeVxlanDevice, VXLAN_DEVICE, type RoutingMode } from "./overlay.ts";
import { RemoteNodes, type RemoteNode } from "./remote-nodes.ts";
import { mapPinRoot } from "./pinned.ts";
import { writeSysctl } from "./sysctl.ts";
import { ReservedIdentity } from "../identity/reserved.ts";
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
  /**
   * The most entries setEndpointPolicy lets cilium_policy hold, all endpoints together (default
   * and upper bound: the map's max_entries). A policy that does not fit fails closed.
   */
  policyMaxEntries?: number;
  /**
   * How pods reach pods on other nodes (upsertRemoteNode): "tunnel" (cilium_vxlan, the source
   * identity in the VNI) or "native" (the node's routing table). Default "native": a single node
   * needs no overlay.
   */
  routingMode?: RoutingMode;
  /** Tunnel mode: cilium_vxlan's UDP port (default 8472). */
  tunnelPort?: number;
  /** Native mode: route each remote node's pod CIDRs via its node IP (the nodes share an L2). */
  autoDirectNodeRoutes?: boolean;
}

export type { RemoteNode, RoutingMode };

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
  /**
   * Policy enforcement to program with the entry. Without it applyEndpoint keeps what the
   * endpoint's existing entry has (a restore re-applies without resetting enforcement), else
   * what setEndpointPolicy last asked for this endpoint id, else none (allow all).
   */
  policyEnforcement?: { ingress: boolean; egress: boolean };
}

export type { EndpointPolicy, IpcacheEntry, PolicyRule };

/** What setEndpointPolicy changed in cilium_policy. */
export interface PolicyUpdateResult {
  /** Entries written: new keys and keys whose verdict changed. */
  added: number;
  /** Entries deleted. */
  removed: number;
}

/** applyEndpoint: the endpoint's host interface is gone (or another interface has its index now). */
export class MissingInterfaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MissingInterfaceError";
  }
}

/** setEndpointPolicy could not write the policy; the endpoint was left enforced, failing closed. */
export class PolicyMapFullError extends Error {
  constructor(
    message: string,
    readonly endpointId: number,
    readonly needed: number,
    readonly limit: number,
  ) {
    super(message);
    this.name = "PolicyMapFullError";
  }
}

export interface NodeDatapathStatus {
  /** How the node's own devices (cilium_host, the native device) carry their programs. */
  attachMode: "tcx" | "clsact";
  /** Endpoint veths always use clsact: see ENDPOINT_FILTER. */
  endpointAttachMode: "clsact";
  bpfRoot: string;
  gateway: string;
  nativeDevice: string | null;
  nodeIp: string | null;
  masquerade: boolean;
  routingMode: RoutingMode;
  /** Tunnel mode: the overlay device and its UDP port. */
  tunnel: { device: string; port: number } | null;
  programs: { name: string; id: number; attachedTo: string[] }[];
}

interface NativeDevice {
  link: Link;
  address: string;
}

/**
 * Endpoint veths carry their program as a clsact filter (handle 1, priority 1), not a tcx link:
 * on this kernel creating a tcx link waits for an RCU grace period while holding RTNL (measured
 * ~10-14 ms per attach and again per detach, stalling every other netlink user), a filter takes
 * ~0.3 ms. Filters outlive the agent like pinned links do, and `replace` swaps the program of a
 * restarted agent in place.
 */
const ENDPOINT_FILTER = { handle: 1, priority: 1 } as const;

const LXC_PROGRAM = "cil_from_container";
const EVENTS_MAP = "cilium_events";

/**
 * A pinned cilium_events of another size (left by an earlier build) cannot be reused by the
 * load, which would fail. Its records are transient, so it is unpinned and the load creates the
 * ring at the size bpf/lib/maps.h declares.
 */
function unpinResizedEventsRing(lxc: BpfObject, pinRoot: string): void {
  const pin = join(pinRoot, EVENTS_MAP);
  if (!existsSync(pin)) return;
  if (BpfMap.pinnedInfo(pin).maxEntries !== lxc.map(EVENTS_MAP).maxEntries) rmSync(pin);
}
/** Connection-tracking and NAT maps, reported by mapFill besides the endpoint, ipcache and policy maps. */
const PRESSURE_MAPS = ["cilium_ct4_global", "cilium_snat_v4_external"] as const;
const HOST_PROGRAM = "cil_from_host";
const TO_NETDEV_PROGRAM = "cil_to_netdev";
const FROM_NETDEV_PROGRAM = "cil_from_netdev";
const OVERLAY_PROGRAM = "cil_from_overlay";

interface DatapathObjects {
  lxc: BpfObject;
  host: BpfObject;
  /** Tunnel mode only. */
  overlay?: BpfObject;
}

export class NodeDatapath {
  /** "ifname/direction" -> the attachment and the name of its program. */
  private readonly attachments = new Map<string, { attachment: TcAttachment; program: string }>();
  /** Enforcement bits setEndpointPolicy last asked for, by endpoint id (for an entry applied later). */
  private readonly enforcement = new Map<number, number>();
  private readonly remoteNodes: RemoteNodes;
  /**
   * What cilium_policy holds, by endpoint id and policyKeyId: read from the kernel once when the
   * datapath starts (which adopts what an earlier run left), then kept in step with every write
   * and delete this process makes (the agent is the map's only writer). setEndpointPolicy diffs
   * against it instead of walking the whole map, so an update costs the endpoint's entries, not
   * every endpoint's. A write that fails re-reads the kernel before failing closed.
   */
  private readonly policyMirror = new Map<number, Map<string, PolicyMapEntry>>();
  private policyEntryCount = 0;
  /** The mirror may differ from the kernel (a re-read failed): re-read before the next use. */
  private policyMirrorStale = false;
  /**
   * cilium_lxc's addresses by endpoint id, read from the kernel when the datapath starts and then
   * kept in step with every write and delete this process makes (the agent is the map's only
   * writer): a policy write finds its endpoint's entries without walking the whole map.
   */
  private readonly endpointAddresses = new Map<number, Set<string>>();

  private constructor(
    readonly config: NodeDatapathConfig,
    private readonly objects: DatapathObjects,
    private readonly endpoints: BpfMap<{ ip4: string }, EndpointInfoValue>,
    private readonly ipcache: BpfMap<IpcacheKeyValue, RemoteEndpointInfoValue>,
    private readonly policy: BpfMap<PolicyKeyValue, PolicyEntryValue>,
    private readonly netlink: Netlink,
    readonly gateway: string,
    readonly native: NativeDevice | null,
    readonly attachMode: "tcx" | "clsact",
  ) {
    this.remoteNodes = new RemoteNodes({
      mode: this.routingMode,
      autoDirectNodeRoutes: config.autoDirectNodeRoutes ?? false,
      localPodCidr: parseCidr(config.podCidr),
      localAddresses: () => this.netlink.addresses().filter((a) => a.family === 4).map((a) => a.address),
      ipcache: this,
      netlink,
      ...(this.routingMode === "tunnel" ? { hostRoute: { dev: HOST_DEVICE, src: gateway } } : {}),
    });
  }

  get routingMode(): RoutingMode {
    return this.config.routingMode ?? "native";
  }

  /** Loads (or re-adopts) the node's datapath. Safe to call after a crash: every step converges. */
  static start(config: NodeDatapathConfig): NodeDatapath {
    return inNetns(config.netns, () => NodeDatapath.startHere(config));
  }

  private static startHere(config: NodeDatapathConfig): NodeDatapath {
    const podCidr = parseCidr(config.podCidr);
    if (podCidr.prefixLength > 30) throw new Error(`pod CIDR ${config.podCidr} is too small: it needs a gateway and pod addresses`);
    const clusterCidr = parseCidr(config.clusterCidr ?? config.podCidr);
    const routingMode = config.routingMode ?? "native";
    if (routingMode !== "tunnel" && routingMode !== "native") throw new Error(`routing mode ${JSON.stringify(routingMode)} must be "tunnel" or "native"`);
    if (routingMode === "tunnel" && config.autoDirectNodeRoutes) throw new Error("auto-direct-node-routes needs routing mode native (tunnel mode encapsulates instead)");
    const gateway = formatIpv4(podCidr.network + 1);

    ensureBpffs(config.bpfRoot);
    const pinRoot = mapPinRoot(config.bpfRoot);
    mkdirSync(pinRoot, { recursive: true, mode: 0o700 });
    mkdirSync(linksDir(config.bpfRoot), { recursive: true, mode: 0o700 });

    const objects: Partial<DatapathObjects> = {};
    const netlink = Netlink.open();
    try {
      // Both objects declare the shared maps pinned by name: the first load creates (or reuses
      // from an earlier run) and pins them, the second reuses them.
      objects.lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot });
      unpinResizedEventsRing(objects.lxc, pinRoot);
      objects.lxc.load();
      objects.host = BpfObject.open(readObject("bpf_host"), { name: "bpf_host", pinRoot });
      objects.host.load();
      if (routingMode === "tunnel") {
        objects.overlay = BpfObject.open(readObject("bpf_overlay"), { name: "bpf_overlay", pinRoot });
        objects.overlay.load();
      }

      const host = setUpHostDevices(netlink, gateway, podCidr, config.mtu);
      setUpSysctls();
      const native = nativeDeviceFor(netlink, config, routingMode);
      const tunnelPort = config.tunnelPort ?? DEFAULT_TUNNEL_PORT;
      const vxlan = routingMode === "tunnel" ? ensureVxlanDevice(netlink, { port: tunnelPort, mtu: config.mtu }) : null;
      if (!vxlan) removeOverlay(netlink, config.bpfRoot);

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
          flags: (native && config.masquerade ? NodeFlags.Masquerade : 0) | (vxlan ? NodeFlags.Tunnel : 0),
          snatPortMin: 0,
          snatPortMax: 0,
          tunnelIfindex: vxlan?.index ?? 0,
          tunnelPort: vxlan && native ? tunnelPort : 0,
          reserved: [0, 0],
        });
      } finally {
        nodeConfig.close();
      }

      const policyMap = objects.lxc.map(POLICY_MAP);
      if (config.policyMaxEntries !== undefined) {
        const max = policyMap.maxEntries;
        if (!Number.isInteger(config.policyMaxEntries) || config.policyMaxEntries < 0 || config.policyMaxEntries > max) {
          throw new Error(`policyMaxEntries ${config.policyMaxEntries} must be 0-${max} (the size of ${POLICY_MAP})`);
        }
      }
      const datapath = new NodeDatapath(
        config,
        objects as DatapathObjects,
        new BpfMap(objects.lxc.map(ENDPOINTS_MAP), EndpointKey, EndpointInfo),
        new BpfMap(objects.lxc.map(IPCACHE_MAP), IpcacheKey, RemoteEndpointInfo),
        new BpfMap(policyMap, PolicyKey, PolicyEntry),
        netlink,
        gateway,
        native,
        tcxSupported() ? "tcx" : "clsact",
      );
      datapath.loadPolicyMirror();
      datapath.loadEndpointIndex();
      datapath.registerHostAddresses();
      datapath.attach(objects.host.program(HOST_PROGRAM), host, "egress");
      if (native) {
        datapath.attach(objects.host.program(TO_NETDEV_PROGRAM), native.link, "egress");
        datapath.attach(objects.host.program(FROM_NETDEV_PROGRAM), native.link, "ingress");
      }
      if (vxlan) datapath.attach(objects.overlay!.program(OVERLAY_PROGRAM), vxlan, "ingress");
      return datapath;
    } catch (error) {
      objects.lxc?.close();
      objects.host?.close();
      objects.overlay?.close();
      netlink.close();
      throw error;
    }
  }

  /** Programs one endpoint: the program on its host veth, then its map entry. Idempotent. */
  applyEndpoint(endpoint: EndpointAttachment): void {
    inNetns(this.config.netns, () => this.applyEndpointHere(endpoint));
  }

  private applyEndpointHere(endpoint: EndpointAttachment): void {
    const veth = this.netlink.link(endpoint.ifindex);
    if (!veth || veth.name !== endpoint.ifname) {
      throw new MissingInterfaceError(`endpoint ${endpoint.id}: host interface ${endpoint.ifname} (ifindex ${endpoint.ifindex}) does not exist`);
    }
    if (!veth.mac) throw new Error(`endpoint ${endpoint.id}: host interface ${endpoint.ifname} has no MAC address`);
    const existing = this.endpoints.lookup({ ip4: endpoint.ipv4 });
    let flags: number;
    if (endpoint.policyEnforcement) {
      flags = ((existing?.lxcId === endpoint.id ? existing.flags : 0) & ~ENDPOINT_POLICY_FLAGS) | enforcementFlags(endpoint.policyEnforcement.ingress, endpoint.policyEnforcement.egress);
      this.enforcement.set(endpoint.id, flags & ENDPOINT_POLICY_FLAGS);
    } else if (existing?.lxcId === endpoint.id) {
      flags = existing.flags; // a re-apply (restore) keeps the enforcement it had
    } else {
      flags = this.enforcement.get(endpoint.id) ?? 0;
    }
    // The program first, then the entry that lets traffic in: a pod answering its first packet
    // ARPs for the gateway, and only the program answers that; an ARP lost to a veth without it
    // costs the pod the kernel's 1 s retransmit.
    this.attachEndpoint(this.objects.lxc.program(LXC_PROGRAM), veth);
    try {
      this.writeEndpointEntry(
        endpoint.ipv4,
        { ifindex: endpoint.ifindex, lxcId: endpoint.id, flags, mac: endpoint.mac, nodeMac: veth.mac, secIdentity: endpoint.identity },
        existing?.lxcId,
      );
    } catch (error) {
      if (existing?.ifindex !== endpoint.ifindex) this.detachEndpoint(veth.name, veth.index);
      throw error;
    }
  }

  /**
   * Removes an endpoint's map entry, program and policy entries (those of its id, once no
   * cilium_lxc entry carries that id any more); anything already gone is fine. Its ipcache entry
   * is the agent's to remove (deleteIpcache): the address may be known elsewhere.
   */
  removeEndpoint(endpoint: Pick<EndpointAttachment, "ipv4" | "ifname" | "ifindex"> & { id?: number }): void {
    inNetns(this.config.netns, () => this.removeEndpointHere(endpoint));
  }

  private removeEndpointHere(endpoint: Pick<EndpointAttachment, "ipv4" | "ifname" | "ifindex"> & { id?: number }): void {
    const entry = this.endpoints.lookup({ ip4: endpoint.ipv4 });
    let id = endpoint.id;
    // Only the entry that still belongs to this interface: the IP may already serve another pod.
    if (entry && entry.ifindex === endpoint.ifindex) {
      this.deleteEndpointEntry(endpoint.ipv4, entry.lxcId);
      id ??= entry.lxcId;
    }
    this.detachEndpoint(endpoint.ifname, endpoint.ifindex);
    if (id !== undefined && !this.endpointAddresses.has(id)) {
      this.enforcement.delete(id);
      this.deletePolicyOf(new Set([id]));
    }
  }

  /**
   * Removes map entries and endpoint program pins that belong to no live endpoint (say, the
   * state dir was wiped while pods ran). Answers a description of each thing removed.
   */
  removeStale(live: readonly (Pick<EndpointAttachment, "ipv4" | "ifname"> & { id?: number })[]): string[] {
    return inNetns(this.config.netns, () => {
      const liveIps = new Set(live.map((e) => e.ipv4));
      const liveInterfaces = new Set([HOST_DEVICE, ...(this.native ? [this.native.link.name] : []), ...(this.objects.overlay ? [VXLAN_DEVICE] : []), ...live.map((e) => e.ifname)]);
      const removed: string[] = [];
      for (const { ip, info } of this.listEndpoints()) {
        if (liveIps.has(ip)) continue;
        this.deleteEndpointEntry(ip, info.lxcId);
        removed.push(`endpoint map entry ${ip} (endpoint ${info.lxcId}, ifindex ${info.ifindex})`);
      }
      for (const link of this.netlink.links()) {
        if (!link.name.startsWith("lxc") || liveInterfaces.has(link.name)) continue;
        if (this.detachEndpoint(link.name, link.index)) removed.push(`endpoint program on ${link.name}`);
      }
      for (const pin of readdirSync(linksDir(this.config.bpfRoot))) {
        const dash = pin.lastIndexOf("-");
        const ifname = pin.slice(0, dash);
        const direction = pin.slice(dash + 1) as TcDirection;
        if (liveInterfaces.has(ifname)) continue;
        this.detach(ifname, direction);
        removed.push(`program link ${pin}`);
      }
      // Policy entries of endpoints that are gone, when every live endpoint is known by id.
      if (live.every((e) => e.id !== undefined)) {
        const keep = new Set<number>([...live.map((e) => e.id!), ...this.enforcement.keys()]);
        for (const id of this.endpointAddresses.keys()) keep.add(id);
        const stale = new Set<number>();
        for (const id of this.policyMirror.keys()) if (!keep.has(id)) stale.add(id);
        const count = this.deletePolicyOf(stale);
        for (const id of [...stale].sort((a, b) => a - b)) removed.push(`policy entries of endpoint ${id} (${count.get(id) ?? 0})`);
      }
      return removed;
    });
  }

  /** The endpoints map as the kernel holds it (read in batches). */
  listEndpoints(): { ip: string; info: EndpointInfoValue }[] {
    return this.endpoints.batchLookup().map(([key, info]) => ({ ip: key.ip4, info }));
  }

  /** (Re)builds endpointAddresses from the kernel. */
  private loadEndpointIndex(): void {
    this.endpointAddresses.clear();
    for (const { ip, info } of this.listEndpoints()) this.indexAddress(info.lxcId, ip);
  }

  /** The endpoint's cilium_lxc entries as the kernel holds them (found through the index, each one read). */
  private entriesOf(endpointId: number): { ip: string; info: EndpointInfoValue }[] {
    const entries: { ip: string; info: EndpointInfoValue }[] = [];
    for (const ip of [...(this.endpointAddresses.get(endpointId) ?? [])]) {
      const info = this.endpoints.lookup({ ip4: ip });
      if (info?.lxcId === endpointId) entries.push({ ip, info });
      else this.unindexAddress(endpointId, ip);
    }
    return entries;
  }

  /** Writes an entry; `previousId` is the endpoint whose entry it replaces, if any. */
  private writeEndpointEntry(ip: string, info: EndpointInfoValue, previousId: number | undefined): void {
    this.endpoints.update({ ip4: ip }, info);
    if (previousId !== undefined && previousId !== info.lxcId) this.unindexAddress(previousId, ip);
    this.indexAddress(info.lxcId, ip);
  }

  private deleteEndpointEntry(ip: string, endpointId: number): void {
    this.endpoints.delete({ ip4: ip });
    this.unindexAddress(endpointId, ip);
  }

  private indexAddress(endpointId: number, ip: string): void {
    let addresses = this.endpointAddresses.get(endpointId);
    if (!addresses) this.endpointAddresses.set(endpointId, (addresses = new Set()));
    addresses.add(ip);
  }

  private unindexAddress(endpointId: number, ip: string): void {
    const addresses = this.endpointAddresses.get(endpointId);
    if (!addresses?.delete(ip)) return;
    if (addresses.size === 0) this.endpointAddresses.delete(endpointId);
  }

  /* ---- ipcache ------------------------------------------------------------------------ */
  // Map operations do not depend on the thread's network namespace: these run anywhere.

  /**
   * Sets the security identity of a prefix ("a.b.c.d/n", or an address for /32): endpoints here
   * and on other nodes, the node's own addresses (HOST, 1), CIDRs used by policy. Addresses no
   * prefix holds are WORLD (2).
   */
  upsertIpcache(cidr: string, identity: number, options: { tunnelEndpoint?: string } = {}): void {
    const key = ipcacheKeyOf(cidr);
    checkIdentity(identity, `ipcache ${cidr}: identity`);
    this.ipcache.update(key, { secIdentity: identity, tunnelEndpoint: options.tunnelEndpoint ?? "0.0.0.0", flags: 0 });
  }

  /** Removes a prefix; one that is not there is fine. */
  deleteIpcache(cidr: string): void {
    this.ipcache.delete(ipcacheKeyOf(cidr));
  }

  /** The ipcache as the kernel holds it, by address then prefix length. */
  listIpcache(): IpcacheEntry[] {
    const entries = [...this.ipcache.entries()].map(([key, value]): IpcacheEntry => ({
      cidr: ipcacheCidrOf(key),
      identity: value.secIdentity,
      ...(value.tunnelEndpoint !== "0.0.0.0" ? { tunnelEndpoint: value.tunnelEndpoint } : {}),
    }));
    const order = (cidr: string) => {
      const [ip, length] = cidr.split("/");
      return ip!.split(".").reduce((n, o) => n * 256 + Number(o), 0) * 64 + Number(length);
    };
    return entries.sort((a, b) => order(a.cidr) - order(b.cidr));
  }

  /* ---- other nodes ------------------------------------------------------------------- */

  /**
   * Makes pods on another node reachable (see remote-nodes.ts): its IP becomes REMOTE_NODE in the
   * ipcache and, by routing mode, its pod CIDRs get tunnel entries (ipcache prefix -> node IP) or
   * routes via its IP. Idempotent; an upsert with other values replaces what the last one
   * programmed for this name. Bad input throws before anything is written.
   */
  upsertRemoteNode(node: RemoteNode): void {
    inNetns(this.config.netns, () => this.remoteNodes.upsert(node));
  }

  /** Removes everything upsertRemoteNode programmed for the node; an unknown name is fine. */
  deleteRemoteNode(name: string): void {
    inNetns(this.config.netns, () => this.remoteNodes.delete(name));
  }

  /** The nodes upsertRemoteNode programmed, by name (canonical addresses and CIDRs). */
  listRemoteNodes(): RemoteNode[] {
    return this.remoteNodes.list();
  }

  /* ---- policy -------------------------------------------------------------------------- */

  /**
   * Makes cilium_policy and the endpoint's enforcement bits say `policy`, writing only the
   * difference against what the map holds for the endpoint now (the mirror, read from the kernel
   * at start, so it converges after an agent restart too): the cost is this endpoint's entries,
   * whatever the other endpoints hold. Enforcement is set first: a direction becoming enforced was allowing
   * everything, one becoming unenforced will. Entries are then written in an order under which
   * the endpoint never allows more than the old or the new policy (planPolicyUpdate).
   *
   * Fail closed: when the map (policyMaxEntries, counting every endpoint) cannot hold the new
   * entries, enforcement stays as requested, the denies are written and the new allows are not
   * (or, if not even the denies fit, every allow of the endpoint goes), and a PolicyMapFullError
   * names the endpoint and the counts. A kernel error half-way does the same and is rethrown.
   *
   * The endpoint need not be applied yet: its enforcement is remembered for applyEndpoint.
   */
  setEndpointPolicy(endpointId: number, policy: EndpointPolicy): PolicyUpdateResult {
    checkEndpointId(endpointId);
    if (typeof policy !== "object" || policy === null) throw new TypeError(`endpoint ${endpointId}: policy must be an object`);
    if (typeof policy.ingressEnforced !== "boolean" || typeof policy.egressEnforced !== "boolean") {
      throw new TypeError(`endpoint ${endpointId}: ingressEnforced and egressEnforced must be booleans`);
    }
    const desired = normalizePolicyRules(endpointId, policy.entries);
    const flags = enforcementFlags(policy.ingressEnforced, policy.egressEnforced);

    const { current, total } = this.readPolicy(endpointId);
    const limit = this.policyLimit;
    const plan = planPolicyUpdate({ current, desired, otherEntries: total - current.length, limit });

    // A direction turning enforcement off takes effect first (allow-all is then the new policy);
    // one turning it on takes effect only once its entries are in, so allowed traffic never
    // sees a moment of enforcement without them. On any failure every new bit is set: closed.
    this.setEnforcement(endpointId, this.enforcementOf(endpointId) & flags);
    try {
      this.runPolicySteps(plan.steps);
    } catch (error) {
      this.setEnforcement(endpointId, flags);
      const outcome = this.failClosed(endpointId, desired);
      throw new Error(
        `endpoint ${endpointId}: writing its policy (${desired.length} entries) failed half-way: ${(error as Error).message}; ` +
          `enforcement left ${describeEnforcement(flags)}, ${outcome}`,
        { cause: error },
      );
    }
    this.setEnforcement(endpointId, flags);
    if (plan.mode === "overflow") throw this.overflowError(endpointId, plan, desired, total - current.length, limit, flags);
    return { added: plan.added, removed: plan.removed };
  }

  /** The enforcement bits the endpoint has now (its cilium_lxc entry, else what was asked last). */
  private enforcementOf(endpointId: number): number {
    const entry = this.entriesOf(endpointId)[0];
    return entry ? entry.info.flags & ENDPOINT_POLICY_FLAGS : (this.enforcement.get(endpointId) ?? 0);
  }

  /** The endpoint's policy as the kernel holds it (enforcement from its cilium_lxc entry). */
  endpointPolicy(endpointId: number): EndpointPolicy {
    checkEndpointId(endpointId);
    const entry = this.entriesOf(endpointId)[0];
    const flags = entry ? entry.info.flags : (this.enforcement.get(endpointId) ?? 0);
    const entries = this.readPolicyMap()
      .filter((e) => e.key.endpointId === endpointId)
      .map((e) => policyRuleOf(e.key, e.deny));
    return {
      ingressEnforced: (flags & EndpointFlags.PolicyIngress) !== 0,
      egressEnforced: (flags & EndpointFlags.PolicyEgress) !== 0,
      entries: sortPolicyRules(entries),
    };
  }

  /** The most entries cilium_policy may hold, all endpoints together. */
  get policyLimit(): number {
    return this.config.policyMaxEntries ?? this.policy.maxEntries;
  }

  /** This endpoint's entries (normalized keys) and the number of entries of all endpoints, as the mirror holds them. */
  private readPolicy(endpointId: number): { current: PolicyMapEntry[]; total: number } {
    if (this.policyMirrorStale) this.loadPolicyMirror();
    return { current: [...(this.policyMirror.get(endpointId)?.values() ?? [])], total: this.policyEntryCount };
  }

  /** Walks cilium_policy: every entry, normalized, with its verdict. */
  private readPolicyMap(): PolicyMapEntry[] {
    const entries: PolicyMapEntry[] = [];
    for (const key of this.policy.keys()) {
      const value = this.policy.lookup(key);
      if (value) entries.push({ key: normalizePolicyKey(key), deny: (value.flags & PolicyEntryFlags.Deny) !== 0 });
    }
    return entries;
  }

  /** (Re)builds the mirror from the kernel: at start, and after a write failed half-way. */
  private loadPolicyMirror(): void {
    this.policyMirrorStale = true;
    const entries = this.readPolicyMap();
    this.policyMirror.clear();
    this.policyEntryCount = 0;
    for (const entry of entries) this.mirrorWrite(entry);
    this.policyMirrorStale = false;
  }

  private mirrorWrite(entry: PolicyMapEntry): void {
    let entries = this.policyMirror.get(entry.key.endpointId);
    if (!entries) this.policyMirror.set(entry.key.endpointId, (entries = new Map()));
    const id = policyKeyId(entry.key);
    if (!entries.has(id)) this.policyEntryCount++;
    entries.set(id, entry);
  }

  private mirrorDelete(key: PolicyKeyValue): void {
    const entries = this.policyMirror.get(key.endpointId);
    if (!entries?.delete(policyKeyId(key))) return;
    this.policyEntryCount--;
    if (entries.size === 0) this.policyMirror.delete(key.endpointId);
  }

  /** Deletes one entry from the map and the mirror; false when the kernel did not have it. */
  private deletePolicyEntry(key: PolicyKeyValue): boolean {
    const deleted = this.policy.delete(key);
    this.mirrorDelete(key);
    return deleted;
  }

  private runPolicySteps(steps: PolicyPlan["steps"]): void {
    for (const step of steps) {
      if (step.op === "write") {
        this.policy.update(step.entry.key, { flags: step.entry.deny ? PolicyEntryFlags.Deny : 0 });
        this.mirrorWrite(step.entry);
      } else {
        this.deletePolicyEntry(step.key);
      }
    }
  }

  /** After a failed write: reach the fail-closed state from whatever the map holds now. */
  private failClosed(endpointId: number, desired: PolicyMapEntry[]): string {
    try {
      this.loadPolicyMirror();
      const { current, total } = this.readPolicy(endpointId);
      const plan = planFailClosed({ current, desired, otherEntries: total - current.length, limit: this.policyLimit });
      this.runPolicySteps(plan.steps);
      return plan.failClosed === "denies-written"
        ? `its deny entries written and ${plan.allowsLeftOut} allow entries left out`
        : "every allow entry of the endpoint removed";
    } catch {
      // Last resort: no allow of this endpoint survives (deletes only).
      this.policyMirrorStale = true;
      let left = 0;
      for (const entry of this.readPolicyMap()) {
        if (entry.deny || entry.key.endpointId !== endpointId) continue;
        try {
          this.deletePolicyEntry(entry.key);
        } catch {
          left++;
        }
      }
      return left ? `and ${left} allow entries could not even be deleted` : "every allow entry of the endpoint removed";
    }
  }

  private overflowError(endpointId: number, plan: PolicyPlan, desired: PolicyMapEntry[], others: number, limit: number, flags: number): PolicyMapFullError {
    const denies = desired.filter((e) => e.deny).length;
    const outcome =
      plan.failClosed === "denies-written"
        ? `it holds its ${denies} deny entries and not the ${plan.allowsLeftOut} allow entries it did not have yet`
        : `every allow entry of the endpoint was removed (not even its ${denies} deny entries fit)`;
    return new PolicyMapFullError(
      `endpoint ${endpointId}: ${POLICY_MAP} cannot hold its policy: it needs ${desired.length} entries, ` +
        `other endpoints hold ${others}, the limit is ${limit} (${plan.needed} needed in all); ` +
        `failing closed: enforcement ${describeEnforcement(flags)}, ${outcome}`,
      endpointId,
      plan.needed,
      limit,
    );
  }

  /** Sets the enforcement bits of every cilium_lxc entry of the endpoint, keeping the rest. */
  private setEnforcement(endpointId: number, flags: number): void {
    this.enforcement.set(endpointId, flags);
    for (const { ip, info } of this.entriesOf(endpointId)) {
      const updated = (info.flags & ~ENDPOINT_POLICY_FLAGS) | flags;
      if (updated !== info.flags) this.endpoints.update({ ip4: ip }, { ...info, flags: updated });
    }
  }

  /** Deletes every policy entry of these endpoints; answers how many per endpoint. */
  private deletePolicyOf(endpointIds: ReadonlySet<number>): Map<number, number> {
    const counts = new Map<number, number>();
    if (endpointIds.size === 0) return counts;
    const doomed = [...endpointIds].flatMap((id) => [...(this.policyMirror.get(id)?.values() ?? [])].map((e) => e.key));
    for (const key of doomed) {
      if (this.deletePolicyEntry(key)) counts.set(key.endpointId, (counts.get(key.endpointId) ?? 0) + 1);
    }
    return counts;
  }

  status(): NodeDatapathStatus {
    const attachedTo = new Map<string, string[]>();
    for (const [key, { program }] of this.attachments) attachedTo.set(program, [...(attachedTo.get(program) ?? []), key]);
    const programs = [
      this.objects.lxc.program(LXC_PROGRAM),
      ...[HOST_PROGRAM, TO_NETDEV_PROGRAM, FROM_NETDEV_PROGRAM].map((n) => this.objects.host.program(n)),
      ...(this.objects.overlay ? [this.objects.overlay.program(OVERLAY_PROGRAM)] : []),
    ];
    return {
      attachMode: this.attachMode,
      endpointAttachMode: "clsact",
      bpfRoot: this.config.bpfRoot,
      gateway: this.gateway,
      nativeDevice: this.native?.link.name ?? null,
      nodeIp: this.native?.address ?? null,
      masquerade: this.native !== null && this.config.masquerade === true,
      routingMode: this.routingMode,
      tunnel: this.objects.overlay ? { device: VXLAN_DEVICE, port: this.config.tunnelPort ?? DEFAULT_TUNNEL_PORT } : null,
      programs: programs.map((p) => ({ name: p.name, id: programInfo(p.fd).id, attachedTo: attachedTo.get(p.name) ?? [] })),
    };
  }

  /**
   * Starts reading cilium_events: `handler` gets each record (bpf/lib/events.h layout) as a copy
   * it may keep. Close the reader to stop.
   */
  openEvents(handler: (record: Uint8Array) => void, options: { pollIntervalMs?: number; onError?: (error: unknown) => void } = {}): RingBufferReader {
    return new RingBufferReader(this.objects.lxc.map(EVENTS_MAP), handler, options);
  }

  /** Events the datapath could not write because cilium_events was full, since the maps were created. */
  eventsLost(): number {
    const metrics = new BpfMap(this.objects.lxc.map(METRICS_MAP), MetricsKey, metricsValuePerCpu());
    try {
      let lost = 0n;
      for (const [key, perCpuValues] of metrics.entries()) {
        if (key.reason !== METRIC_EVENTS_LOST) continue;
        for (const value of perCpuValues) lost += value.packets;
      }
      return Number(lost);
    } finally {
      metrics.close();
    }
  }

  /** cilium_metrics summed over the CPUs: packets and bytes by reason and direction. */
  readMetrics(): MetricsCounter[] {
    const metrics = new BpfMap(this.objects.lxc.map(METRICS_MAP), MetricsKey, metricsValuePerCpu());
    try {
      return metrics.batchLookup().map(([key, perCpuValues]) => {
        let packets = 0n;
        let byteCount = 0n;
        for (const value of perCpuValues) {
          packets += value.packets;
          byteCount += value.bytes;
        }
        return { reason: key.reason, direction: key.dir, packets: Number(packets), bytes: Number(byteCount) };
      });
    } finally {
      metrics.close();
    }
  }

  /** Entries and capacity of the maps that fill up as pods, identities and connections grow. */
  mapFill(): MapFill[] {
    // By our names: the kernel keeps only the first 15 bytes of a map's name.
    const fill = (name: string, map: BpfMap<unknown, unknown>, maxEntries = map.maxEntries): MapFill => ({ map: name, entries: map.count(), maxEntries });
    const result = [fill(ENDPOINTS_MAP, this.endpoints), fill(IPCACHE_MAP, this.ipcache), fill(POLICY_MAP, this.policy, this.policyLimit)];
    for (const name of PRESSURE_MAPS) {
      const handle = this.objects.lxc.map(name);
      const info = mapInfo(handle.fd);
      const map = new BpfMap(handle, bytes(info.keySize), bytes(info.valueSize));
      try {
        result.push(fill(name, map));
      } finally {
        map.close();
      }
    }
    return result;
  }

  /** Closes our handles. Pinned maps and links stay: the datapath keeps forwarding without us. */
  close(): void {
    for (const { attachment } of this.attachments.values()) attachment.close();
    this.attachments.clear();
    this.endpoints.close();
    this.ipcache.close();
    this.policy.close();
    this.objects.lxc.close();
    this.objects.host.close();
    this.objects.overlay?.close();
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

  /**
   * The node's own IPv4 addresses (the pods' gateway on cilium_host, the native device's, any
   * other) are HOST to policy; the datapath treats an address without an entry as WORLD.
   */
  private registerHostAddresses(): void {
    for (const address of this.netlink.addresses()) {
      if (address.family !== 4 || address.address.startsWith("127.")) continue;
      this.upsertIpcache(`${address.address}/32`, ReservedIdentity.host);
    }
  }

  private attachEndpoint(program: BpfProgram, veth: Link): void {
    const key = `${veth.name}/ingress`;
    this.attachments.get(key)?.attachment.close();
    const attachment = attachTc(program, veth.index, "ingress", { mode: "clsact", replace: true, ...ENDPOINT_FILTER });
    this.attachments.set(key, { attachment, program: program.name });
  }

  /** Removes an endpoint veth's filter; false when there was none (or no veth any more). */
  private detachEndpoint(ifname: string, ifindex: number): boolean {
    const key = `${ifname}/ingress`;
    const attachment = this.attachments.get(key)?.attachment ?? new ClsactAttachment({ ifindex, direction: "ingress", ...ENDPOINT_FILTER });
    this.attachments.delete(key);
    try {
      attachment.detach();
      return true;
    } catch {
      // The interface went first (CNI DEL removes the veth): its filters went with it.
      return false;
    }
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

/** A node switched from tunnel to native routing: its overlay program link and device go. */
function removeOverlay(netlink: Netlink, bpfRoot: string): void {
  const pin = linkPin(bpfRoot, VXLAN_DEVICE, "ingress");
  if (existsSync(pin)) {
    try {
      BpfLink.openPinned(pin).detach();
    } catch {
      // The device went already and took the link with it.
    }
    rmSync(pin, { force: true });
  }
  removeVxlanDevice(netlink);
}

function enforcementFlags(ingress: boolean, egress: boolean): number {
  return (ingress ? EndpointFlags.PolicyIngress : 0) | (egress ? EndpointFlags.PolicyEgress : 0);
}

function describeEnforcement(flags: number): string {
  const on = [flags & EndpointFlags.PolicyIngress ? "ingress" : "", flags & EndpointFlags.PolicyEgress ? "egress" : ""].filter(Boolean);
  return on.length ? `on for ${on.join(" and ")}` : "off";
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

/**
 * The native device: masquerading hides pods behind its address, and in tunnel mode the overlay's
 * BPF fast path (bpf/lib/overlay.h) sends from it and receives on it. Without masquerading, a node
 * with no usable device still runs the overlay, through cilium_vxlan alone.
 */
function nativeDeviceFor(netlink: Netlink, config: NodeDatapathConfig, routingMode: string): NativeDevice | null {
  if (config.masquerade || (routingMode === "tunnel" && config.devices?.length)) return findNativeDevice(netlink, config.devices);
  if (routingMode !== "tunnel") return null;
  try {
    return findNativeDevice(netlink, config.devices);
  } catch {
    return null;
  }
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
  if (!address) throw new Error(`native device ${link.name} has no IPv4 address (needed to masquerade behind and to send the overlay from)`);
  return { link, address };
}
