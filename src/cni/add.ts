/**
 * ADD: an IP from the agent, a veth pair into the pod, the pod's address and routes, and the
 * endpoint registered with the agent. Any failure undoes every step already done, newest first
 * (endpoint, veth, IP), and answers a CNI error; an attachment that already exists is refused
 * without touching it.
 */
import { AgentClient } from "../agent/api/client.ts";
import type { IpamResponse } from "../agent/api/types.ts";
import type { Link, Netlink } from "../datapath/netlink/index.ts";
import { attachmentKey, endpointId, hostInterfaceName, temporaryPeerName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import { endpointRequest } from "./endpoint-request.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError, ignoreNotFound, interfaceError, isConflict, isNotFound } from "./errors.ts";
import { attachmentResult } from "./result.ts";
import { Rollback } from "./rollback.ts";
import { openHostNetlink, openSandbox, type Sandbox } from "./sandbox.ts";
import { CniError, CniErrorCode, PluginErrorCode } from "./spec.ts";
import { bringUpHostInterface, configurePodInterface, createVethPair, deleteLinkIfPresent, requireLink } from "./veth.ts";

export async function add(env: CniEnvironment, config: NetworkConfig): Promise<Record<string, unknown>> {
  const attachment: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const operation = `ADD ${attachmentKey(attachment)}`;
  const sandbox = openSandbox(env.netns);
  try {
    const host = openHostNetlink(operation);
    try {
      const agent = new AgentClient(config.socketPath);
      const adding: Adding = { attachment, operation, env, config, host, sandbox, agent, rollback: new Rollback() };
      await refuseExistingAttachment(adding);
      try {
        return await attach(adding);
      } catch (error) {
        throw withRollbackReport(error, await adding.rollback.run());
      }
    } finally {
      host.close();
    }
  } finally {
    sandbox.close();
  }
}

/** One ADD in progress. */
interface Adding {
  attachment: Attachment;
  /** "ADD <container id>:<ifname>", the start of every message. */
  operation: string;
  env: CniEnvironment;
  config: NetworkConfig;
  host: Netlink;
  sandbox: Sandbox;
  agent: AgentClient;
  rollback: Rollback;
}

async function attach(adding: Adding): Promise<Record<string, unknown>> {
  const { env, config, agent, rollback } = adding;
  const ipam = await allocateIp(adding);
  const { ip, gateway } = ipam.ipv4;
  rollback.add(`release IP ${ip}`, () => ignoreNotFound(agent.releaseIp(ip)));

  const mtu = config.mtu ?? (ipam.ipv4.mtu > 0 ? ipam.ipv4.mtu : undefined);
  const { hostLink, podLink } = setUpInterfaces(adding, ip, gateway, mtu);
  await registerEndpoint(adding, ip, hostLink, podLink);

  return attachmentResult(
    {
      hostInterface: { name: hostLink.name, mac: hostLink.mac ?? "" },
      podInterface: { name: podLink.name, mac: podLink.mac ?? "", sandbox: env.netns },
      mtu: podLink.mtu,
      ip,
      gateway,
    },
    config.cniVersion,
    { previous: config.prevResult, dns: config.dns },
  );
}

/**
 * Per the spec the runtime DELs before it ADDs an attachment again. If it did not, answer an
 * error naming what exists; nothing is rolled back, because none of it is ours to undo. Checked
 * before IPAM: the agent may hand the same owner its existing IP, which a rollback would free.
 */
async function refuseExistingAttachment({ attachment, operation, host, sandbox, agent }: Adding): Promise<void> {
  const hostName = hostInterfaceName(attachment);
  let hostLink;
  let podLink;
  try {
    hostLink = host.link(hostName);
    podLink = sandbox.netlink.link(attachment.ifname);
  } catch (error) {
    throw interfaceError(error, `${operation}: look up existing interfaces`);
  }
  if (hostLink) {
    throw alreadyExists(operation, `host interface ${hostName}, ifindex ${hostLink.index}`);
  }
  if (podLink) {
    throw new CniError(PluginErrorCode.InterfaceSetupFailed, `${operation}: interface ${attachment.ifname} already exists in netns ${sandbox.path}`);
  }
  const id = endpointId(attachment);
  let existing;
  try {
    existing = await agent.endpoint(id);
  } catch (error) {
    if (isNotFound(error)) return;
    throw agentError(error, `${operation}: look up endpoint ${id}`);
  }
  throw alreadyExists(operation, `the cilium agent has endpoint ${existing.id}, ${id}`);
}

async function allocateIp({ attachment, operation, agent }: Adding): Promise<IpamResponse> {
  let ipam: IpamResponse;
  try {
    ipam = await agent.allocateIp(attachmentKey(attachment));
  } catch (error) {
    const mapped = agentError(error, `${operation}: allocate an IP`);
    if (mapped.code !== PluginErrorCode.AgentRequestFailed) throw mapped;
    // Carry the agent's own words: they name the pool and why it could not give an address.
    throw new CniError(PluginErrorCode.IpAllocationFailed, `${operation}: allocate an IP: ${(error as Error).message}`);
  }
  const v4 = ipam?.ipv4;
  if (!v4 || !isIpv4(v4.ip) || !isIpv4(v4.gateway)) {
    // Hand back whatever was allocated, if the answer names it at all.
    if (v4 && isIpv4(v4.ip)) await ignoreNotFound(agent.releaseIp(v4.ip)).catch(() => {});
    throw new CniError(
      PluginErrorCode.AgentRequestFailed,
      `${operation}: allocate an IP: the cilium agent's answer has no valid ipv4.ip and ipv4.gateway: ${JSON.stringify(ipam)}`,
    );
  }
  return ipam;
}

function setUpInterfaces(
  { attachment, operation, host, sandbox, rollback }: Adding,
  ip: string,
  gateway: string,
  mtu: number | undefined,
): { hostLink: Link; podLink: Link } {
  const names = { host: hostInterfaceName(attachment), temporary: temporaryPeerName(attachment), pod: attachment.ifname };
  try {
    // Registered first: creation may fail after the kernel made the pair (at the rename, say).
    rollback.add(`delete veth ${names.host}`, () => deleteLinkIfPresent(host, names.host));
    createVethPair(host, sandbox, names, mtu);
    configurePodInterface(sandbox, names.pod, ip, gateway);
    bringUpHostInterface(host, names.host);
    return {
      hostLink: requireLink(host, names.host, "the host namespace"),
      podLink: requireLink(sandbox.netlink, names.pod, `netns ${sandbox.path}`),
    };
  } catch (error) {
    throw interfaceError(error, `${operation}: set up veth ${names.host} and ${names.pod} in netns ${sandbox.path}`);
  }
}

async function registerEndpoint(adding: Adding, ip: string, hostLink: Link, podLink: Link): Promise<void> {
  const { attachment, operation, env, config, agent, rollback } = adding;
  const id = endpointId(attachment);
  const interfaces = { host: { name: hostLink.name, index: hostLink.index, mac: hostLink.mac ?? "" }, pod: { mac: podLink.mac ?? "" } };
  const request = endpointRequest(attachment, { netnsPath: env.netns, ip, interfaces, cniArgs: env.args, labels: config.labels });
  try {
    await agent.putEndpoint(id, request);
  } catch (error) {
    if (isConflict(error)) {
      throw alreadyExists(operation, `the cilium agent already has endpoint ${id}`);
    }
    // The agent may have created the endpoint even though the request failed (e.g. timed out).
    rollback.add(`delete endpoint ${id}`, () => ignoreNotFound(agent.deleteEndpoint(id)));
    throw agentError(error, `${operation}: create endpoint ${id}`);
  }
}

function alreadyExists(operation: string, evidence: string): CniError {
  return new CniError(PluginErrorCode.AttachmentExists, `${operation}: attachment already exists (${evidence}); DEL it before adding it again`);
}

function isIpv4(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const parts = value.split(".");
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

/** The original error, with what the rollback could not undo in its details. */
function withRollbackReport(error: unknown, failures: string[]): CniError {
  const message = (error as Error)?.message ?? String(error);
  const cniError = error instanceof CniError ? error : new CniError(CniErrorCode.IoFailure, `internal error: ${message}`);
  if (failures.length === 0) return cniError;
  const report = `rollback incomplete: ${failures.join("; ")}`;
  return new CniError(cniError.code, cniError.message, cniError.details ? `${cniError.details}; ${report}` : report);
}
