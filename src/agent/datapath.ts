/**
 * The agent's datapath on Linux: the endpoint manager's EndpointDatapath over the node datapath
 * (src/datapath/node.ts). The heavy modules (libbpf, netlink) load only when the agent starts.
 */
import { existsSync } from "node:fs";
import { release } from "node:os";
import { MissingInterfaceError, NodeDatapath, type EndpointAttachment } from "../datapath/node.ts";
import type { Endpoint } from "./api/types.ts";
import { podMtu, type AgentConfig } from "./config.ts";
import { EndpointGoneError, type ApplyOptions, type DatapathEvents, type DatapathPolicy, type EndpointDatapath, type IpcacheEntry, type RemoteNode } from "./endpoint/datapath.ts";
import type { MapFill, MetricsCounter } from "./endpoint/datapath.ts";

function attachment(endpoint: Endpoint, options: ApplyOptions = {}): EndpointAttachment {
  const target: EndpointAttachment = {
    id: endpoint.id,
    ipv4: endpoint.addressing.ipv4,
    ifname: endpoint["interface-name"],
    ifindex: endpoint["interface-index"],
    mac: endpoint.mac,
    identity: endpoint.identity ?? 0,
  };
  if (options.policyEnforcement) target.policyEnforcement = { ...options.policyEnforcement };
  return target;
}

export class LinuxDatapath implements EndpointDatapath {
  private node: NodeDatapath | undefined;

  private get started(): NodeDatapath {
    if (!this.node) throw new Error("the datapath is not started");
    return this.node;
  }

  async start(config: AgentConfig): Promise<void> {
    try {
      this.node = this.startNode(config);
    } catch (error) {
      // The datapath names its own option; the operator set --bpf-policy-map-max.
      const message = (error as Error).message;
      if (config.policyMapMax !== undefined && message.startsWith("policyMaxEntries")) throw new Error(`--bpf-policy-map-max ${config.policyMapMax}: ${message}`);
      throw error;
    }
  }

  private startNode(config: AgentConfig): NodeDatapath {
    return NodeDatapath.start({
      bpfRoot: config.bpfRoot,
      podCidr: config.ipv4Range,
      mtu: podMtu(config),
      masquerade: config.enableIpv4Masquerade,
      devices: config.devices,
      monitorAggregation: config.monitorAggregation,
      routingMode: config.routingMode,
      tunnelPort: config.tunnelPort,
      autoDirectNodeRoutes: config.autoDirectNodeRoutes,
      ...(config.ipv4NativeRoutingCidr === undefined ? {} : { clusterCidr: config.ipv4NativeRoutingCidr }),
      ...(config.policyMapMax === undefined ? {} : { policyMaxEntries: config.policyMapMax }),
    });
  }

  async applyEndpoint(endpoint: Endpoint, options: ApplyOptions = {}): Promise<void> {
    const target = attachment(endpoint, options);
    const netnsPath = endpoint["netns-path"];
    if (netnsPath && !existsSync(netnsPath)) {
      throw new EndpointGoneError(`endpoint ${endpoint.id}: network namespace ${netnsPath} no longer exists`);
    }
    try {
      this.started.applyEndpoint(target);
    } catch (error) {
      if (!(error instanceof MissingInterfaceError)) throw error;
      throw new EndpointGoneError(`endpoint ${endpoint.id}: host interface ${target.ifname} (ifindex ${target.ifindex}) no longer exists`);
    }
  }

  async removeEndpoint(endpoint: Endpoint): Promise<void> {
    this.started.removeEndpoint(attachment(endpoint));
  }

  async removeStaleEndpoints(live: readonly Endpoint[]): Promise<string[]> {
    return this.started.removeStale(live.map((endpoint) => attachment(endpoint)));
  }

  async setEndpointPolicy(endpointId: number, policy: DatapathPolicy): Promise<void> {
    this.started.setEndpointPolicy(endpointId, policy);
  }

  async upsertIpcache(cidr: string, identity: number, options: { tunnelEndpoint?: string } = {}): Promise<void> {
    this.started.upsertIpcache(cidr, identity, options);
  }

  async upsertRemoteNode(node: RemoteNode): Promise<void> {
    this.started.upsertRemoteNode(node);
  }

  async deleteRemoteNode(name: string): Promise<void> {
    this.started.deleteRemoteNode(name);
  }

  async deleteIpcache(cidr: string): Promise<void> {
    this.started.deleteIpcache(cidr);
  }

  async listIpcache(): Promise<IpcacheEntry[]> {
    return this.started.listIpcache();
  }

  openEvents(onRecord: (record: Uint8Array) => void): DatapathEvents {
    const node = this.started;
    const reader = node.openEvents(onRecord, { pollIntervalMs: 10 });
    return { lost: () => node.eventsLost(), close: () => reader.close() };
  }

  async readMetrics(): Promise<MetricsCounter[]> {
    return this.started.readMetrics();
  }

  async mapFill(): Promise<MapFill[]> {
    return this.started.mapFill();
  }

  async status(): Promise<Record<string, unknown>> {
    const status = this.started.status();
    return {
      kernel: release(),
      "attach-mode": `${status.attachMode} (node devices), ${status.endpointAttachMode} (endpoints)`,
      programs: status.programs.map((p) => `${p.name} (id ${p.id}) on ${p.attachedTo.length ? p.attachedTo.join(", ") : "nothing yet"}`),
      gateway: status.gateway,
      "native-device": status.nativeDevice ?? "none",
      "node-ip": status.nodeIp ?? "none",
      masquerade: status.masquerade ? "enabled" : "disabled",
      "routing-mode": status.tunnel ? `tunnel (vxlan, ${status.tunnel.device}, port ${status.tunnel.port})` : status.routingMode,
      "bpf-root": status.bpfRoot,
    };
  }

  async stop(): Promise<void> {
    this.node?.close();
    this.node = undefined;
  }
}
