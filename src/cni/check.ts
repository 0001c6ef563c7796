/**
 * CHECK: the attachment is as ADD left it. The agent has the endpoint and it becomes ready; the
 * pod has CNI_IFNAME, up, with the endpoint's address, a default route through the gateway and
 * the gateway's link route; it is the peer of our host veth, which is up and is the interface the
 * endpoint is attached to; and, with prevResult, the MACs and addresses it recorded still hold.
 * Routes are checked for presence only: a later chained plugin may add its own.
 */
import type { AgentClient } from "../agent/api/client.ts";
import { agentClient } from "./agent.ts";
import type { Endpoint } from "../agent/api/types.ts";
import type { Link, Netlink } from "../datapath/netlink/index.ts";
import { attachmentKey, endpointId, hostInterfaceName, type Attachment } from "./attachment.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { agentError, interfaceError, isNotFound } from "./errors.ts";
import type { CniResult } from "./result.ts";
import { openHostNetlink, openSandbox, type Sandbox } from "./sandbox.ts";
import { CniError, CniErrorCode, PluginErrorCode } from "./spec.ts";

/** CHECK may run right after ADD: give a regenerating endpoint this long to become ready. */
const READY_TIMEOUT_MS = 5000;
const READY_POLL_MS = 100;

export async function check(env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  const attachment: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const operation = `CHECK ${attachmentKey(attachment)}`;
  const endpoint = await readyEndpoint(agentClient(config.socketPath), attachment, operation);
  const sandbox = openSandbox(env.netns);
  try {
    const host = openHostNetlink(operation);
    try {
      checkInterfaces(attachment, operation, endpoint, host, sandbox, config.prevResult);
    } catch (error) {
      throw interfaceError(error, `${operation}: inspect interfaces`);
    } finally {
      host.close();
    }
  } finally {
    sandbox.close();
  }
  return undefined;
}

function failed(operation: string, problem: string): CniError {
  return new CniError(PluginErrorCode.AttachmentCheckFailed, `${operation}: ${problem}`);
}

async function readyEndpoint(agent: AgentClient, attachment: Attachment, operation: string): Promise<Endpoint> {
  const id = endpointId(attachment);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    let endpoint: Endpoint;
    try {
      endpoint = await agent.endpoint(id);
    } catch (error) {
      if (isNotFound(error)) throw failed(operation, `the cilium agent has no endpoint ${id}`);
      throw agentError(error, `${operation}: look up endpoint ${id}`);
    }
    if (endpoint.state === "ready") return endpoint;
    if (endpoint.state === "disconnecting" || endpoint.state === "disconnected") {
      throw failed(operation, `endpoint ${endpoint.id} (${id}) is ${endpoint.state}`);
    }
    if (Date.now() >= deadline) {
      throw new CniError(CniErrorCode.TryAgainLater, `${operation}: endpoint ${endpoint.id} (${id}) is still ${endpoint.state}, not ready`);
    }
    await Bun.sleep(READY_POLL_MS);
  }
}

function checkInterfaces(
  attachment: Attachment,
  operation: string,
  endpoint: Endpoint,
  host: Netlink,
  sandbox: Sandbox,
  prevResult: CniResult | undefined,
): void {
  const ifname = attachment.ifname;
  const where = `in netns ${sandbox.path}`;
  const pod = sandbox.netlink.link(ifname);
  if (!pod) throw failed(operation, `interface ${ifname} not found ${where}`);
  if (!pod.up) throw failed(operation, `interface ${ifname} ${where} is down`);

  const hostName = hostInterfaceName(attachment);
  const hostLink = host.link(hostName);
  if (!hostLink) throw failed(operation, `host interface ${hostName} not found`);
  if (!hostLink.up) throw failed(operation, `host interface ${hostName} is down`);
  if (pod.kind !== "veth" || pod.parentIndex !== hostLink.index) {
    throw failed(operation, `interface ${ifname} ${where} is not the veth peer of host interface ${hostName}`);
  }
  if (endpoint["interface-name"] !== hostName || endpoint["interface-index"] !== hostLink.index) {
    throw failed(
      operation,
      `endpoint ${endpoint.id} is attached to ${endpoint["interface-name"]} (ifindex ${endpoint["interface-index"]}), ` +
        `not to ${hostName} (ifindex ${hostLink.index})`,
    );
  }

  const ip = endpoint.addressing.ipv4;
  const addresses = new Set(sandbox.netlink.addresses({ link: pod.index }).map((a) => a.cidr));
  if (!addresses.has(`${ip}/32`)) throw failed(operation, `interface ${ifname} ${where} lacks the endpoint's address ${ip}/32`);

  const gateways = prevResult ? checkPrevResult(operation, prevResult, { pod, hostLink, addresses, ip, sandboxPath: sandbox.path }) : [];
  checkRoutes(operation, sandbox.netlink, pod, gateways, where);
}

/** Compares what prevResult recorded for our two interfaces and the pod's IPs; returns their gateways. */
function checkPrevResult(
  operation: string,
  prevResult: CniResult,
  actual: { pod: Link; hostLink: Link; addresses: Set<string>; ip: string; sandboxPath: string },
): string[] {
  const { pod, hostLink } = actual;
  const podIndex = prevResult.interfaces.findIndex((entry) => entry.name === pod.name && !!entry.sandbox);
  if (podIndex < 0) throw failed(operation, `prevResult lists no interface ${pod.name} inside a sandbox`);
  const recordedPod = prevResult.interfaces[podIndex]!;
  if (recordedPod.mac && recordedPod.mac.toLowerCase() !== pod.mac?.toLowerCase()) {
    throw failed(operation, `interface ${pod.name} has MAC ${pod.mac}, prevResult recorded ${recordedPod.mac}`);
  }
  const recordedHost = prevResult.interfaces.find((entry) => entry.name === hostLink.name && !entry.sandbox);
  if (recordedHost?.mac && recordedHost.mac.toLowerCase() !== hostLink.mac?.toLowerCase()) {
    throw failed(operation, `host interface ${hostLink.name} has MAC ${hostLink.mac}, prevResult recorded ${recordedHost.mac}`);
  }
  const ips = prevResult.ips.filter((entry) => entry.interface === podIndex);
  if (ips.length === 0) throw failed(operation, `prevResult lists no IP for interface ${pod.name}`);
  for (const entry of ips) {
    if (!actual.addresses.has(entry.address)) throw failed(operation, `interface ${pod.name} lacks address ${entry.address} recorded in prevResult`);
    if (entry.address !== `${actual.ip}/32`) {
      throw failed(operation, `prevResult records address ${entry.address} for ${pod.name}, the agent's endpoint has ${actual.ip}`);
    }
  }
  return ips.flatMap((entry) => (entry.gateway ? [entry.gateway] : []));
}

/** Without prevResult any gateway will do; with it, the recorded one. */
function checkRoutes(operation: string, pod: Netlink, link: Link, gateways: string[], where: string): void {
  const routes = pod.routes({ link: link.index, family: 4 });
  const defaults = routes.filter((route) => route.dst === "default" && route.via && (gateways.length === 0 || gateways.includes(route.via)));
  if (defaults.length === 0) {
    const through = gateways.length ? ` via ${gateways.join(" or ")}` : "";
    throw failed(operation, `no default route${through} on ${link.name} ${where}`);
  }
  const reachable = defaults.some((route) => routes.some((r) => r.dst === `${route.via}/32` && r.scope === "link"));
  if (!reachable) throw failed(operation, `no link-scoped route to gateway ${defaults[0]!.via} on ${link.name} ${where}`);
}
