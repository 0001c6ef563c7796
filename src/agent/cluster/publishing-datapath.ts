/**
 * The datapath as the policy manager sees it in kvstore mode: every ipcache write for one of
 * this node's endpoints (an address of the node's pod CIDR with a cluster-wide or reserved
 * identity) also goes to the cluster's ipcache, so other nodes learn the address's identity. The
 * kernel write comes first: the local datapath never waits on etcd.
 */
import { identityScope } from "../../identity/identity.ts";
import { cidrContains, isIpv4, parseCidr, parseIpv4 } from "../../net/ipv4.ts";
import type { EndpointDatapath } from "../endpoint/datapath.ts";

export interface EndpointPublisher {
  upsert(ip: string, identity: number): Promise<void>;
  delete(ip: string): Promise<void>;
}

export function publishingDatapath(datapath: EndpointDatapath, podCidr: string, publisher: EndpointPublisher): EndpointDatapath {
  const pool = parseCidr(podCidr);
  const localAddress = (cidr: string): string | undefined => {
    const [address, length] = cidr.split("/");
    return length === "32" && address !== undefined && isIpv4(address) && cidrContains(pool, parseIpv4(address)) ? address : undefined;
  };
  return new Proxy(datapath, {
    get(target, property, receiver) {
      if (property === "upsertIpcache") {
        return async (cidr: string, identity: number, options?: { tunnelEndpoint?: string }) => {
          await target.upsertIpcache(cidr, identity, options);
          const address = localAddress(cidr);
          const scope = identityScope(identity);
          if (address && (scope === "global" || scope === "reserved")) await publisher.upsert(address, identity);
        };
      }
      if (property === "deleteIpcache") {
        return async (cidr: string) => {
          await target.deleteIpcache(cidr);
          const address = localAddress(cidr);
          if (address) await publisher.delete(address);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
