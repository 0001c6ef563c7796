/**
 * How API paths name an endpoint, upstream's forms: a numeric id, or prefix:value
 * ("container-id:<id>", "cni-attachment-id:<container id>:<ifname>", "pod-name:<ns>/<pod>",
 * "ipv4:<address>").
 */
import { AgentError } from "../errors.ts";
import { isIpv4 } from "../../net/ipv4.ts";

export type EndpointReference =
  | { kind: "id"; id: number }
  | { kind: "container-id"; containerId: string }
  | { kind: "cni-attachment-id"; containerId: string; ifname: string }
  | { kind: "pod-name"; namespace: string; pod: string }
  | { kind: "ipv4"; address: string };

export const MAX_ENDPOINT_ID = 65535;

export function parseEndpointReference(text: string): EndpointReference {
  if (/^\d+$/.test(text)) {
    const id = Number(text);
    if (id > MAX_ENDPOINT_ID) throw invalid(text, `a numeric endpoint ID must be 0-${MAX_ENDPOINT_ID}`);
    return { kind: "id", id };
  }
  const colon = text.indexOf(":");
  const prefix = colon < 0 ? "" : text.slice(0, colon);
  const value = text.slice(colon + 1);
  switch (prefix) {
    case "container-id":
      if (!value) throw invalid(text, "the container ID is empty");
      return { kind: "container-id", containerId: value };
    case "cni-attachment-id": {
      const [containerId, ifname, ...extra] = value.split(":");
      if (!containerId || !ifname || extra.length > 0) throw invalid(text, "expected cni-attachment-id:<container id>:<interface name>");
      return { kind: "cni-attachment-id", containerId, ifname };
    }
    case "pod-name": {
      const [namespace, pod, ...extra] = value.split("/");
      if (!namespace || !pod || extra.length > 0) throw invalid(text, "expected pod-name:<namespace>/<pod name>");
      return { kind: "pod-name", namespace, pod };
    }
    case "ipv4":
      if (!isIpv4(value)) throw invalid(text, `"${value}" is not an IPv4 address`);
      return { kind: "ipv4", address: value };
    default:
      throw invalid(text, "expected a numeric ID or one of the prefixes container-id:, cni-attachment-id:, pod-name:, ipv4:");
  }
}

export function formatEndpointReference(reference: EndpointReference): string {
  switch (reference.kind) {
    case "id":
      return String(reference.id);
    case "container-id":
      return `container-id:${reference.containerId}`;
    case "cni-attachment-id":
      return `cni-attachment-id:${reference.containerId}:${reference.ifname}`;
    case "pod-name":
      return `pod-name:${reference.namespace}/${reference.pod}`;
    case "ipv4":
      return `ipv4:${reference.address}`;
  }
}

/** The IPAM owner of an attachment, as the CNI plugin names it when it allocates. */
export function attachmentOwner(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}

function invalid(text: string, problem: string): AgentError {
  return new AgentError("invalid", `invalid endpoint ID ${JSON.stringify(text)}: ${problem}`);
}
