/**
 * CNI attachments carried out by the agent: ADD's IP, veth pair and endpoint in one request, and
 * DEL's removal of all three. The plugin only validates its invocation and forwards it here.
 *
 * Why the agent and not the plugin (DESIGN.md has the plugin do the plumbing): the plugin is a
 * fresh process per call, and in a fresh Bun process the FFI set-up, netlink code run cold and
 * three HTTP round trips cost ~20 ms of ADD's ~35 ms; the agent does the same netlink work warm
 * in ~1-2 ms. ADD then costs the plugin's start-up plus one round trip (see the cni-latency
 * benchmark). Crash safety is unchanged: every name derives from the attachment, the IP is
 * persisted before it is used, and the runtime's DEL removes whatever a crash left, agent up or not.
 */
import type { CniAttachment, CniAttachRequest, Endpoint, EndpointChangeRequest } from "../api/types.ts";
import { AgentError, errorMessage } from "../errors.ts";
import { SyscallError } from "../../datapath/errors.ts";
import { Netlink } from "../../datapath/netlink/index.ts";
import { attachmentKey, endpointId, hostInterfaceName, type Attachment } from "../../cni/attachment.ts";
import { Rollback } from "../../cni/rollback.ts";
import { openSandbox, type Sandbox } from "../../cni/sandbox.ts";
import { CniError, CniErrorCode, PluginErrorCode } from "../../cni/spec.ts";
import { bringUpHostInterface, configurePodInterface, createVethPair, deleteLinkIfPresent, type VethNames, type VethPair } from "../../cni/veth.ts";

/** What attachments need of the IPAM (src/agent/ipam). */
export interface AttachmentIpam {
  readonly gateway: string;
  /** Throws AgentError "exhausted" naming the pool when it has nothing left. */
  allocate(owner: string): string;
  releaseOwner(owner: string): string | undefined;
}

/** What attachments need of the endpoint manager (src/agent/endpoint/manager.ts). */
export interface AttachmentEndpoints {
  /** Throws AgentError "not-found". */
  get(reference: string): Endpoint;
  create(reference: string, request: EndpointChangeRequest): Promise<Endpoint>;
  /** Also releases the attachment's address; throws AgentError "not-found" when there was nothing. */
  delete(reference: string): Promise<unknown>;
}

export interface AttachmentDeps {
  ipam: AttachmentIpam;
  endpoints: AttachmentEndpoints;
  /** The host namespace's netlink handle; by default one of the agent's own, opened on first use and kept. */
  host?: () => Netlink;
  /** The MTU pods get when the request names none. */
  mtu: number;
}

export class CniAttachments {
  /** Attachments with an ADD or DEL under way: a second one for the same key must not interleave. */
  private readonly busy = new Set<string>();
  private netlink: Netlink | undefined;
  private readonly host: () => Netlink;

  constructor(private readonly deps: AttachmentDeps) {
    this.host = deps.host ?? (() => (this.netlink ??= Netlink.open()));
  }

  /** Closes the agent's own netlink handle, if it opened one. */
  close(): void {
    this.netlink?.close();
    this.netlink = undefined;
  }

  /** ADD: everything or nothing. Failures are CniErrors with the spec or plugin code to answer. */
  async add(attachment: Attachment, request: CniAttachRequest): Promise<CniAttachment> {
    return this.exclusive(attachment, async () => {
      const sandbox = openSandbox(request["netns-path"]);
      try {
        this.refuseExisting(attachment);
        const rollback = new Rollback();
        try {
          return await this.attach(attachment, request, sandbox, rollback);
        } catch (error) {
          throw withRollbackReport(error, await rollback.run());
        }
      } finally {
        sandbox.close();
      }
    });
  }

  /**
   * DEL: the endpoint (which releases the address), the address alone if there was no endpoint,
   * then the host veth (which takes the pod end with it). Anything already gone is fine.
   */
  async remove(attachment: Attachment): Promise<void> {
    return this.exclusive(attachment, async () => {
      const id = endpointId(attachment);
      try {
        await this.deps.endpoints.delete(id);
      } catch (error) {
        if (!(error instanceof AgentError && error.kind === "not-found")) {
          throw new CniError(PluginErrorCode.AgentRequestFailed, `delete endpoint ${id}: ${errorMessage(error)}`);
        }
      }
      const hostName = hostInterfaceName(attachment);
      try {
        deleteLinkIfPresent(this.host(), hostName);
      } catch (error) {
        throw new CniError(PluginErrorCode.InterfaceSetupFailed, `delete veth ${hostName}: ${errorMessage(error)}`);
      }
    });
  }

  private async exclusive<T>(attachment: Attachment, work: () => Promise<T>): Promise<T> {
    const key = attachmentKey(attachment);
    if (this.busy.has(key)) throw new CniError(CniErrorCode.TryAgainLater, `another ADD or DEL of ${key} is under way`);
    this.busy.add(key);
    try {
      return await work();
    } finally {
      this.busy.delete(key);
    }
  }

  /**
   * Per the spec the runtime DELs before it ADDs an attachment again. If it did not, the error
   * names what exists; nothing is rolled back, because none of it is ours to undo. An endpoint
   * is refused here; interfaces by the veth creation's EEXIST (see existingInterface), which
   * comes before IPAM: the IPAM hands an owner its existing address, which a rollback would free.
   */
  private refuseExisting(attachment: Attachment): void {
    const id = endpointId(attachment);
    let existing: Endpoint;
    try {
      existing = this.deps.endpoints.get(id);
    } catch (error) {
      if (error instanceof AgentError && error.kind === "not-found") return;
      throw error;
    }
    throw alreadyExists(`the cilium agent has endpoint ${existing.id}, ${id}, on host interface ${existing["interface-name"]}`);
  }

  /** The veth could not be made because a name is taken: the host end's (the attachment exists) or the pod's. */
  private existingInterface(names: VethNames, sandbox: Sandbox): CniError {
    let hostLink;
    try {
      hostLink = this.host().link(names.host);
    } catch (error) {
      return new CniError(PluginErrorCode.InterfaceSetupFailed, `look up existing interfaces: ${errorMessage(error)}`);
    }
    if (hostLink) return alreadyExists(`host interface ${names.host}, ifindex ${hostLink.index}`);
    return interfaceSetupFailed(names, sandbox, `interface ${names.pod} already exists in netns ${sandbox.path}`);
  }

  private async attach(attachment: Attachment, request: CniAttachRequest, sandbox: Sandbox, rollback: Rollback): Promise<CniAttachment> {
    const { ipam, endpoints } = this.deps;
    const mtu = request.mtu ?? this.deps.mtu;
    const host = this.host();
    const names = { host: hostInterfaceName(attachment), pod: attachment.ifname };
    let veth: VethPair;
    try {
      veth = createVethPair(host, sandbox, names, mtu);
    } catch (error) {
      if (error instanceof SyscallError && error.code === "EEXIST") throw this.existingInterface(names, sandbox);
      throw interfaceSetupFailed(names, sandbox, errorMessage(error));
    }
    rollback.add(`delete veth ${names.host}`, () => deleteLinkIfPresent(host, names.host));

    const owner = attachmentKey(attachment);
    let ip: string;
    try {
      ip = ipam.allocate(owner);
    } catch (error) {
      throw new CniError(PluginErrorCode.IpAllocationFailed, `allocate an IP: ${errorMessage(error)}`);
    }
    rollback.add(`release IP ${ip}`, () => ipam.releaseOwner(owner));

    const gateway = ipam.gateway;
    try {
      bringUpHostInterface(host, names.host);
      configurePodInterface(sandbox, names.pod, ip, gateway);
    } catch (error) {
      throw interfaceSetupFailed(names, sandbox, errorMessage(error));
    }

    const id = endpointId(attachment);
    const change: EndpointChangeRequest = {
      "container-id": attachment.containerId,
      "container-interface-name": attachment.ifname,
      "interface-name": veth.host.name,
      "interface-index": veth.host.index,
      mac: veth.podMac,
      "host-mac": veth.host.mac ?? "",
      addressing: { ipv4: ip },
      "netns-path": sandbox.path,
    };
    if (request["k8s-namespace"]) change["k8s-namespace"] = request["k8s-namespace"];
    if (request["k8s-pod-name"]) change["k8s-pod-name"] = request["k8s-pod-name"];
    if (request.labels?.length) change.labels = request.labels;
    let endpoint: Endpoint;
    try {
      // The manager undoes its own half-made endpoint; the IP and veth are ours to undo.
      endpoint = await endpoints.create(id, change);
    } catch (error) {
      if (error instanceof AgentError && error.kind === "conflict") throw alreadyExists(`the cilium agent already has endpoint ${id}`);
      throw new CniError(PluginErrorCode.AgentRequestFailed, `create endpoint ${id}: ${errorMessage(error)}`);
    }
    return { endpoint, gateway, mtu };
  }
}

function interfaceSetupFailed(names: VethNames, sandbox: Sandbox, problem: string): CniError {
  return new CniError(PluginErrorCode.InterfaceSetupFailed, `set up veth ${names.host} and ${names.pod} in netns ${sandbox.path}: ${problem}`);
}

function alreadyExists(evidence: string): CniError {
  return new CniError(PluginErrorCode.AttachmentExists, `attachment already exists (${evidence}); DEL it before adding it again`);
}

/** The original error, with what the rollback could not undo in its details. */
function withRollbackReport(error: unknown, failures: string[]): CniError {
  const cniError = error instanceof CniError ? error : new CniError(CniErrorCode.IoFailure, `internal error: ${errorMessage(error)}`);
  if (failures.length === 0) return cniError;
  const report = `rollback incomplete: ${failures.join("; ")}`;
  return new CniError(cniError.code, cniError.message, cniError.details ? `${cniError.details}; ${report}` : report);
}
