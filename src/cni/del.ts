/**
 * DEL: idempotent removal of an attachment. Works from the attachment's key alone (prevResult
 * and the netns are not needed), so it also cleans up after a crashed ADD: the endpoint by its
 * cni-attachment-id (the agent releases the endpoint's IPs with it), and the veth by its
 * deterministic host name. Anything already gone is fine.
 *
 * The pod end is not deleted on its own: removing the host end removes the pair. An interface
 * named CNI_IFNAME that survives that is not our veth (say, the one a failed ADD refused to
 * overwrite), and is not ours to delete.
 */
import { AgentClient } from "../agent/api/client.ts";
import { attachmentKey, endpointId, hostInterfaceName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError, ignoreNotFound, interfaceError } from "./errors.ts";
import { openHostNetlink } from "./sandbox.ts";
import type { CniError } from "./spec.ts";
import { deleteLinkIfPresent } from "./veth.ts";

export async function del(env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  const attachment: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const operation = `DEL ${attachmentKey(attachment)}`;
  const id = endpointId(attachment);

  // The endpoint goes first (the reverse of ADD), so the datapath stops using the veth before it
  // disappears. An unreachable agent still lets the veth go; the error makes the runtime retry.
  let agentFailure: CniError | undefined;
  try {
    await ignoreNotFound(new AgentClient(config.socketPath).deleteEndpoint(id));
  } catch (error) {
    agentFailure = agentError(error, `${operation}: delete endpoint ${id}`);
  }

  const hostName = hostInterfaceName(attachment);
  const host = openHostNetlink(operation);
  try {
    deleteLinkIfPresent(host, hostName);
  } catch (error) {
    throw interfaceError(error, `${operation}: delete veth ${hostName}`);
  } finally {
    host.close();
  }

  if (agentFailure) throw agentFailure;
  return undefined;
}
