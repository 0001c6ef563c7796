/** POST /v1/ipam?family=ipv4&owner=..., DELETE /v1/ipam/{ip}, DELETE /v1/ipam?owner=... */
import { podMtu, type AgentConfig } from "../../config.ts";
import type { EndpointManager } from "../../endpoint/manager.ts";
import { AgentError } from "../../errors.ts";
import type { Ipam } from "../../ipam/index.ts";
import { json } from "../responses.ts";
import type { Router } from "../router.ts";
import type { IpamResponse } from "../types.ts";

export function addIpamRoutes(router: Router, deps: { config: AgentConfig; ipam: Ipam; endpoints: EndpointManager }): void {
  const { config, ipam, endpoints } = deps;

  router.add("POST", "/v1/ipam", (_request, _params, url) => {
    const family = url.searchParams.get("family") ?? "ipv4";
    if (family !== "ipv4") throw new AgentError("invalid", `family: ${JSON.stringify(family)} is not supported; this agent allocates ipv4 only`);
    const ip = ipam.allocate(requiredOwner(url));
    const answer: IpamResponse = {
      address: { ipv4: ip },
      ipv4: { ip, cidrs: [ipam.cidr], gateway: ipam.gateway, mtu: podMtu(config) },
      "host-addressing": { ipv4: { ip: ipam.gateway, enabled: true } },
    };
    return json(201, answer);
  });

  router.add("DELETE", "/v1/ipam/{ip}", (_request, params) => {
    const ip = params.ip!;
    // An endpoint's address goes with the endpoint: releasing it alone would let another pod take it.
    const user = endpoints.usingAddress(ip);
    if (user) throw new AgentError("conflict", `${ip} is in use by endpoint ${user.id}; delete the endpoint to release it`);
    ipam.release(ip);
    return new Response(null, { status: 200 });
  });

  router.add("DELETE", "/v1/ipam", (_request, _params, url) => {
    const owner = requiredOwner(url);
    const address = ipam.addressOf(owner);
    const user = address === undefined ? undefined : endpoints.usingAddress(address);
    if (user) throw new AgentError("conflict", `${address} of ${owner} is in use by endpoint ${user.id}; delete the endpoint to release it`);
    if (ipam.releaseOwner(owner) === undefined) throw new AgentError("not-found", `owner ${JSON.stringify(owner)} holds no address`);
    return new Response(null, { status: 200 });
  });
}

function requiredOwner(url: URL): string {
  const owner = url.searchParams.get("owner");
  if (!owner) throw new AgentError("invalid", 'owner: is required (e.g. ?owner=<container id>:<ifname>)');
  return owner;
}
