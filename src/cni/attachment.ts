/**
 * An attachment is one (container, interface) pair: the spec's key for everything a plugin
 * keeps. Every name we give its resources derives from that key alone, so a DEL or GC after a
 * crash (with no state of ours left) finds the agent's endpoint and the host veth again.
 */

export interface Attachment {
  containerId: string;
  ifname: string;
}

/** "<container id>:<ifname>": how messages name an attachment, and the agent's IPAM owner. */
export function attachmentKey(attachment: Attachment): string {
  return `${attachment.containerId}:${attachment.ifname}`;
}

/** The agent's endpoint id for the attachment (PUT/GET/DELETE /v1/endpoint/{id}). */
export function endpointId(attachment: Attachment): string {
  return `cni-attachment-id:${attachmentKey(attachment)}`;
}

function digest(attachment: Attachment): string {
  return new Bun.CryptoHasher("sha256").update(attachmentKey(attachment)).digest("hex");
}

/** The host end of the veth: "lxc" + 11 hex digits of sha256(key) (14 bytes, under IFNAMSIZ). */
export function hostInterfaceName(attachment: Attachment): string {
  return `lxc${digest(attachment).slice(0, 11)}`;
}
