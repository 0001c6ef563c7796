/**
 * The agent's datapath on Linux: the endpoint manager's EndpointDatapath over the node datapath
 * (src/datapath/node.ts). The heavy modules (libbpf, netlink) load only when the agent starts.
 */
import { existsSync } from "node:fs";
import { release } from "node:os";
import { NodeDatapath, type EndpointAttachment } from "../datapath/node.ts";
import type { Endpoint } from "./api/types.ts";
import type { AgentConfig } from "./config.ts";
import { EndpointGoneError, type EndpointDatapath } from "./endpoint/datapath.ts";

function attachment(endpoint: Endpoint): EndpointAttachment {
  return {
    id: endpoint.id,
    ipv4: endpoint.addressing.ipv4,
    ifname: endpoint["interface-name"],
    ifindex: endpoint["interface-index"],
    mac: endpoint.mac,
    identity: endpoint.identity ?? 0,
  };
}

export class LinuxDatapath implements EndpointDatapath {
  private node: NodeDatapath | undefined;

  private get started(): NodeDatapath {
    if (!this.node) throw new Error("the datapath is not started");
    return this.node;
  }

  async start(config: AgentConfig): Promise<void> {
    this.node = NodeDatapath.start({
      bpfRoot: config.bpfRoot,
      podCidr: config.ipv4Range,
      mtu: config.mtu,
      masquerade: config.enableIpv4Masquerade,
      devices: config.devices,
    });
  }

  async applyEndpoint(endpoint: Endpoint): Promise<void> {
    const target = attachment(endpoint);
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
    return this.started.removeStale(live.map(attachment));
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
