/**
 * ADD: validated here, carried out by the agent in one request (PUT /v1/cni/attachment/...: IP,
 * veth pair into the pod, address and routes, endpoint; src/agent/cni/attachments.ts says why
 * the agent does the plumbing). The agent rolls back whatever it did when a step fails and says
 * which CNI code to answer. If the agent cannot be reached or dies mid-request, the host veth it
 * may have made is deleted here; the runtime's DEL frees the rest once the agent is back.
 */
import { AgentUnreachableError } from "../agent/api/client.ts";
import { agentClient } from "./agent.ts";
import type { CniAttachRequest } from "../agent/api/types.ts";
import { attachmentKey, hostInterfaceName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import { endpointLabels } from "./endpoint-request.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError } from "./errors.ts";
import { attachmentResult } from "./result.ts";
import { checkSandboxPath } from "./sandbox-path.ts";
import { CniError } from "./spec.ts";
import { mark } from "./timing.ts";

export async function add(env: CniEnvironment, config: NetworkConfig): Promise<Record<string, unknown>> {
  const attachment: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const key = attachmentKey(attachment);
  const operation = `ADD ${key}`;
  checkSandboxPath(env.netns);
  const request: CniAttachRequest = { "netns-path": env.netns, ...endpointLabels(env.args, config.labels) };
  if (config.mtu !== undefined) request.mtu = config.mtu;
  mark("add: request ready");

  let attached;
  try {
    attached = await agentClient(config.socketPath).cniAttach(key, request);
  } catch (error) {
    throw await failed(error, operation, attachment);
  } finally {
    mark("add: agent answered");
  }
  const { endpoint, gateway, mtu } = attached;
  return attachmentResult(
    {
      hostInterface: { name: endpoint["interface-name"], mac: endpoint["host-mac"] },
      podInterface: { name: attachment.ifname, mac: endpoint.mac, sandbox: env.netns },
      mtu,
      ip: endpoint.addressing.ipv4,
      gateway,
    },
    config.cniVersion,
    { previous: config.prevResult, dns: config.dns },
  );
}

/** The agent's CNI error as it is; an unreachable agent also gets the veth it may have left removed. */
async function failed(error: unknown, operation: string, attachment: Attachment): Promise<CniError> {
  const mapped = agentError(error, operation);
  if (!(error instanceof AgentUnreachableError)) return mapped;
  // Loaded only here: the plugin's usual path has no FFI or netlink at all.
  const { deleteHostVeth } = await import("./host-veth.ts");
  const leftover = deleteHostVeth(hostInterfaceName(attachment));
  return leftover ? new CniError(mapped.code, mapped.message, `rollback incomplete: ${leftover}`) : mapped;
}
