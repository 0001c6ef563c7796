/**
 * DEL: idempotent removal of an attachment, by the agent in one request (DELETE
 * /v1/cni/attachment/...): its endpoint, its IP (also when a crashed ADD left no endpoint) and
 * its host veth, found by the name derived from the attachment (removing it removes the pod
 * end). Works from the attachment's key alone: prevResult and the netns are not needed.
 *
 * An unreachable agent still lets the veth go (deleted here) and answers "try again later", so
 * the runtime retries and the agent frees the IP and endpoint once it is back. An interface named
 * CNI_IFNAME that is not our veth's peer (one a failed ADD refused to overwrite) is never touched.
 */
import { AgentUnreachableError } from "../agent/api/client.ts";
import { agentClient } from "./agent.ts";
import { attachmentKey, hostInterfaceName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError } from "./errors.ts";
import { CniError } from "./spec.ts";

export async function del(env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  const attachment: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const key = attachmentKey(attachment);
  const operation = `DEL ${key}`;
  try {
    await agentClient(config.socketPath).cniDetach(key);
  } catch (error) {
    const mapped = agentError(error, operation);
    if (!(error instanceof AgentUnreachableError)) throw mapped;
    // Loaded only here: the plugin's usual path has no FFI or netlink at all.
    const { deleteHostVeth } = await import("./host-veth.ts");
    const leftover = deleteHostVeth(hostInterfaceName(attachment));
    if (leftover) throw new CniError(mapped.code, mapped.message, leftover);
    throw mapped;
  }
  return undefined;
}
