/**
 * An "outside" for a test node: a namespace joined to the node by a veth, the node's default
 * route pointing at it. The outside has no route to any pod CIDR, so only masqueraded pod
 * traffic can come back from it.
 */
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";

export function connectOutside(options: { nodeNetns: string; outsideNetns: string; prefix: string; nodeIp: string; outsideIp: string }): void {
  const node = Netns.open(options.nodeNetns);
  const outside = Netns.open(options.outsideNetns);
  const nodeLink = Netlink.open({ netns: node });
  const outsideLink = Netlink.open({ netns: outside });
  try {
    nodeLink.setLinkUp("lo");
    outsideLink.setLinkUp("lo");
    nodeLink.createVeth({ name: `${options.prefix}ext`, peerName: `${options.prefix}wan`, peerNetns: outside });
    nodeLink.addAddress(`${options.prefix}ext`, `${options.nodeIp}/24`);
    nodeLink.setLinkUp(`${options.prefix}ext`);
    outsideLink.addAddress(`${options.prefix}wan`, `${options.outsideIp}/24`);
    outsideLink.setLinkUp(`${options.prefix}wan`);
    nodeLink.addRoute({ dst: "default", via: options.outsideIp });
  } finally {
    for (const handle of [nodeLink, outsideLink, node, outside]) handle.close();
  }
}
