/**
 * This node's IPv4 address on the network between nodes, for the node registry and the tunnel
 * endpoint other nodes use: the datapath's node IP when it has one (with masquerading), else
 * the first address of the first --devices entry, else of the default route's device.
 */
import { isIpv4 } from "../../net/ipv4.ts";
import type { EndpointDatapath } from "../endpoint/datapath.ts";

export async function discoverNodeIp(datapath: EndpointDatapath, devices: readonly string[]): Promise<string | undefined> {
  const status = await datapath.status().catch(() => ({}) as Record<string, unknown>);
  const fromDatapath = status["node-ip"];
  if (typeof fromDatapath === "string" && isIpv4(fromDatapath)) return fromDatapath;
  const { Netlink } = await import("../../datapath/netlink/index.ts");
  let netlink;
  try {
    netlink = Netlink.open();
  } catch {
    return undefined;
  }
  try {
    const name = devices[0] ?? netlink.routes({ family: 4 }).find((r) => r.dst === "default" && r.dev !== undefined)?.dev;
    const link = name === undefined ? undefined : netlink.link(name);
    return link ? netlink.addresses({ link: link.index }).find((a) => a.family === 4)?.address : undefined;
  } finally {
    netlink.close();
  }
}
