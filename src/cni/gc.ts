/**
 * GC: removes every attachment the agent knows that the runtime no longer lists in
 * cni.dev/valid-attachments: its endpoint (the agent releases its IPs) and its host veth.
 * Endpoints without a container (the agent's own, such as health) are never touched.
 *
 * Every endpoint of this agent is taken to belong to this network: the endpoint does not record
 * the network name, so one agent must not serve two CNI networks that are GC'd separately.
 */
import { AgentClient } from "../agent/api/client.ts";
import type { Endpoint } from "../agent/api/types.ts";
import { attachmentKey, hostInterfaceName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError, ignoreNotFound, interfaceError } from "./errors.ts";
import { openHostNetlink } from "./sandbox.ts";
import { CniError, CniErrorCode } from "./spec.ts";
import { deleteLinkIfPresent } from "./veth.ts";

export async function gc(_env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  if (!config.validAttachments) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, 'invalid network config: GC needs "cni.dev/valid-attachments"');
  }
  const valid = new Set(config.validAttachments.map((a) => attachmentKey({ containerId: a.containerID, ifname: a.ifname })));
  const agent = new AgentClient(config.socketPath);
  let endpoints: Endpoint[];
  try {
    endpoints = await agent.endpoints();
  } catch (error) {
    throw agentError(error, "GC: list endpoints");
  }
  const stale = endpoints.flatMap((endpoint) => {
    const attachment = attachmentOf(endpoint);
    return attachment && !valid.has(attachmentKey(attachment)) ? [{ endpoint, attachment }] : [];
  });
  if (stale.length === 0) return undefined;

  const failures: CniError[] = [];
  const host = openHostNetlink("GC");
  try {
    for (const { endpoint, attachment } of stale) {
      const operation = `GC ${attachmentKey(attachment)}`;
      try {
        await ignoreNotFound(agent.deleteEndpoint(endpoint.id));
      } catch (error) {
        failures.push(agentError(error, `${operation}: delete endpoint ${endpoint.id}`));
      }
      const hostName = hostInterfaceName(attachment);
      try {
        deleteLinkIfPresent(host, hostName);
      } catch (error) {
        failures.push(interfaceError(error, `${operation}: delete veth ${hostName}`));
      }
    }
  } finally {
    host.close();
  }
  const [first, ...more] = failures;
  if (first && more.length === 0) throw first;
  if (first) {
    throw new CniError(first.code, `${first.message} (and ${more.length} more failures)`, more.map((e) => e.message).join("; "));
  }
  return undefined;
}

function attachmentOf(endpoint: Endpoint): Attachment | undefined {
  const containerId = endpoint["container-id"];
  const ifname = endpoint["container-interface-name"];
  return containerId && ifname ? { containerId, ifname } : undefined;
}
