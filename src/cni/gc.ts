/**
 * GC: removes every attachment the agent knows that the runtime no longer lists in
 * cni.dev/valid-attachments, as DEL does (the agent removes its endpoint, IP and host veth).
 * Endpoints without a container (the agent's own, such as health) are never touched.
 *
 * Every endpoint of this agent is taken to belong to this network: the endpoint does not record
 * the network name, so one agent must not serve two CNI networks that are GC'd separately.
 */
import { agentClient } from "./agent.ts";
import type { Endpoint } from "../agent/api/types.ts";
import { attachmentKey, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError } from "./errors.ts";
import { CniError, CniErrorCode } from "./spec.ts";

export async function gc(_env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  if (!config.validAttachments) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, 'invalid network config: GC needs "cni.dev/valid-attachments"');
  }
  const valid = new Set(config.validAttachments.map((a) => attachmentKey({ containerId: a.containerID, ifname: a.ifname })));
  const agent = agentClient(config.socketPath);
  let endpoints: Endpoint[];
  try {
    endpoints = await agent.endpoints();
  } catch (error) {
    throw agentError(error, "GC: list endpoints");
  }
  const stale = endpoints.flatMap((endpoint) => {
    const attachment = attachmentOf(endpoint);
    return attachment && !valid.has(attachmentKey(attachment)) ? [attachment] : [];
  });
  if (stale.length === 0) return undefined;

  const failures: CniError[] = [];
  for (const attachment of stale) {
    const key = attachmentKey(attachment);
    try {
      await agent.cniDetach(key);
    } catch (error) {
      failures.push(agentError(error, `GC ${key}: remove the attachment`));
    }
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
