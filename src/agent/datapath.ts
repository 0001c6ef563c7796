/**
 * The agent's datapath on Linux: the endpoint manager's EndpointDatapath over the node datapath
 * (src/datapath/node.ts). The heavy modules (libbpf, netlink) load only when the agent starts.
 */
import { existsSync } from "node:fs";
import { release } from "node:os";
import { NodeDatapath, type EndpointAttachment } from "../datapath/node.ts";
import type { Endpoint } from "./api/types.ts";
import type { AgentConfig } from "./config.ts";
import { EndpointGoneError, type ApplyOptions, type DatapathEvents, type DatapathPolicy, type EndpointDatapath, type IpcacheEntry } from "./endpoint/datapath.ts";

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
      mtu: config.mtu,
      masquerade: config.enableIpv4Masquerade,
      devices: config.devices,
      ...(config.policyMapMax === undefined ? {} : { policyMaxEntries: config.policyMapMax }),
    });
  }

  async applyEndpoint(endpoint: Endpoint, options: ApplyOptions = {}): Promise<void> {
    const target = attachment(endpoint, options);
    const netnsPath = endpoint["netns-path"];
    if (netnsPath && !existsSync(netnsPath)) {
      throw new EndpointGoneError(`endpoint ${endpoint.id}: network namespace ${netnsPath} no longer exists`);
    }
    if (!this.started.hasInterface(target.ifindex, target.ifname)) {
      throw new EndpointGoneError(`endpoint ${endpoint.id}: host interface ${target.ifname} (ifindex ${target.ifindex}) no longer exists`);
    }
    this.started.applyEndpoint(target);
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

  async upsertIpcache(cidr: string, identity: number, tunnelEndpoint?: string): Promise<void> {
    this.started.upsertIpcache(cidr, identity, tunnelEndpoint ? { tunnelEndpoint } : {});
  }

  async deleteIpcache(cidr: string): Promise<void> {
    this.started.deleteIpcache(cidr);
  }

  async listIpcache(): Promise<IpcacheEntry[]> {
    return this.started.listIpcache();
  }

  openEvents(onRecord: (record: Uint8Array) => void): DatapathEvents {
    const node = this.started;
    const reader = node.openEvents(onRecord);
    return { lost: () => node.eventsLost(), close: () => reader.close() };
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
      "bpf-root": status.bpfRoot,
    };
  }

  async stop(): Promise<void> {
    this.node?.close();
    this.node = undefined;
  }
}
