/**
 * A stand-in for the agent's REST API on a unix socket, for driving the real CNI plugin in tests:
 * IPAM from a tiny pool, an endpoint map, health, and switches that make a chosen call fail.
 * Deleting an endpoint releases the IPs of its owner, as the agent does. The CNI routes
 * (/v1/cni/attachment/...) run the agent's real attachment code (veth plumbing in the kernel,
 * rollback) over this fake IPAM and endpoint map.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Router } from "../../src/agent/api/router.ts";
import { addCniRoutes } from "../../src/agent/api/routes/cni.ts";
import type { Endpoint, EndpointChangeRequest, EndpointState, IpamResponse } from "../../src/agent/api/types.ts";
import { CniAttachments } from "../../src/agent/cni/attachments.ts";
import { AgentError } from "../../src/agent/errors.ts";

/** API calls a test can make fail. */
export type FakeAgentCall = "healthz" | "allocateIp" | "releaseIp" | "listEndpoints" | "getEndpoint" | "putEndpoint" | "deleteEndpoint";

export interface FakeAgentOptions {
  /** Pod CIDR: its first address is the gateway, the rest form the pool. */
  cidr?: string;
  mtu?: number;
}

export class FakeAgent {
  readonly dir: string;
  readonly socketPath: string;
  readonly cidr: string;
  readonly gateway: string;
  mtu: number;
  /** ip -> owner ("<container id>:<ifname>"). */
  readonly allocations = new Map<string, string>();
  /** "cni-attachment-id:<container id>:<ifname>" -> endpoint. */
  readonly endpoints = new Map<string, Endpoint>();
  readonly requests: { method: string; path: string; body?: unknown }[] = [];
  /** A call listed here answers this status and message instead of working. */
  readonly failures = new Map<FakeAgentCall, { status: number; message: string }>();
  /** The state new endpoints report. */
  endpointState: EndpointState = "ready";
  private readonly pool: string[];
  private readonly server: ReturnType<typeof Bun.serve>;
  private nextEndpointId = 1;
  private readonly attachments: CniAttachments;
  private readonly cniRoutes = new Router();

  constructor(options: FakeAgentOptions = {}) {
    this.cidr = options.cidr ?? "10.244.7.0/29";
    this.mtu = options.mtu ?? 1420;
    const [base] = this.cidr.split("/");
    const octets = base!.split(".").map(Number);
    const size = 2 ** (32 - Number(this.cidr.split("/")[1]));
    const address = (offset: number) => [...octets.slice(0, 3), octets[3]! + offset].join(".");
    this.gateway = address(1);
    // Network, gateway and broadcast excluded: a /29 gives five pod addresses.
    this.pool = Array.from({ length: size - 3 }, (_, i) => address(i + 2));
    this.dir = mkdtempSync(join(tmpdir(), "fake-agent-"));
    this.socketPath = join(this.dir, "cilium.sock");
    const agent = this;
    this.attachments = new CniAttachments({
      ipam: {
        gateway: this.gateway,
        allocate: (owner) => this.allocateAddress(owner),
        releaseOwner: (owner) => this.releaseOwner(owner),
      },
      endpoints: {
        get: (reference) => {
          const endpoint = this.find(reference);
          if (!endpoint) throw new AgentError("not-found", `endpoint ${reference} not found`);
          return endpoint;
        },
        create: async (reference, change) => this.createEndpoint(reference, change),
        delete: async (reference) => this.deleteEndpoint(reference),
      },
      get mtu() {
        return agent.mtu;
      },
    });
    addCniRoutes(this.cniRoutes, this.attachments);
    this.server = Bun.serve({ unix: this.socketPath, fetch: (request) => this.handle(request) });
  }

  stop(): void {
    this.attachments.close();
    this.server.stop(true);
    rmSync(this.dir, { recursive: true, force: true });
  }

  fail(call: FakeAgentCall, status: number, message: string): void {
    this.failures.set(call, { status, message });
  }

  /** Makes every address of the pool taken. */
  exhaust(): void {
    for (const ip of this.pool) if (!this.allocations.has(ip)) this.allocations.set(ip, "test:exhausted");
  }

  private async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = request.method === "PUT" || request.method === "POST" ? await request.text() : "";
    this.requests.push({ method: request.method, path: url.pathname + url.search, body: body ? JSON.parse(body) : undefined });
    const cni = this.cniRoutes.match(request.method, url.pathname);
    if (cni.found) return cni.handler(new Request(request.url, { method: request.method, body: body || undefined }), cni.params, url);
    const [, version, resource, rawId] = url.pathname.split("/");
    const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
    if (version !== "v1") return error(404, "not found");
    const route = `${request.method} ${resource}${id === undefined ? "" : "/:id"}`;
    const call = ROUTES[route];
    if (!call) return error(404, `no route ${route}`);
    const failure = this.failures.get(call);
    if (failure) return error(failure.status, failure.message);
    switch (call) {
      case "healthz":
        return Response.json({ state: "Ok" });
      case "allocateIp":
        return this.allocate(url.searchParams.get("owner") ?? "");
      case "releaseIp":
        if (!this.allocations.delete(id!)) return error(404, `IP ${id} is not allocated`);
        return new Response(null, { status: 200 });
      case "listEndpoints":
        return Response.json([...this.endpoints.values()]);
      case "getEndpoint": {
        const endpoint = this.find(id!);
        return endpoint ? Response.json(endpoint) : error(404, `endpoint ${id} not found`);
      }
      case "putEndpoint":
        return this.put(id!, JSON.parse(body) as EndpointChangeRequest);
      case "deleteEndpoint":
        return this.delete(id!);
    }
  }

  private allocate(owner: string): Response {
    const ip = this.pool.find((candidate) => !this.allocations.has(candidate));
    if (!ip) return error(507, `IPAM pool ${this.cidr} exhausted: no free address for ${owner}`);
    this.allocations.set(ip, owner);
    const answer: IpamResponse = {
      address: { ipv4: ip },
      ipv4: { ip, cidrs: [this.cidr], gateway: this.gateway, mtu: this.mtu },
      "host-addressing": { ipv4: { ip: this.gateway, enabled: true } },
    };
    return Response.json(answer, { status: 201 });
  }

  private allocateAddress(owner: string): string {
    const failure = this.failures.get("allocateIp");
    if (failure) throw new AgentError(failure.status === 507 ? "exhausted" : "datapath", failure.message);
    const ip = this.pool.find((candidate) => !this.allocations.has(candidate));
    if (!ip) throw new AgentError("exhausted", `IPAM pool ${this.cidr} exhausted: no free address for ${owner}`);
    this.allocations.set(ip, owner);
    return ip;
  }

  private releaseOwner(owner: string): string | undefined {
    const failure = this.failures.get("releaseIp");
    for (const [ip, holder] of this.allocations) {
      if (holder !== owner) continue;
      if (failure) throw new Error(failure.message);
      this.allocations.delete(ip);
      return ip;
    }
    return undefined;
  }

  private createEndpoint(reference: string, change: EndpointChangeRequest): Endpoint {
    const failure = this.failures.get("putEndpoint");
    if (failure) throw new AgentError(failure.status === 409 ? "conflict" : "datapath", failure.message);
    const response = this.put(reference, change);
    if (response.status !== 201) throw new AgentError("conflict", `endpoint ${reference} already exists`);
    return this.endpoints.get(reference)!;
  }

  private deleteEndpoint(reference: string): void {
    const failure = this.failures.get("deleteEndpoint");
    if (failure) throw new AgentError("datapath", failure.message);
    const endpoint = this.find(reference);
    if (endpoint) {
      this.delete(reference);
      return;
    }
    const owner = reference.replace(/^cni-attachment-id:/, "");
    if (this.releaseOwner(owner) === undefined) throw new AgentError("not-found", `endpoint ${reference} not found`);
  }

  private find(id: string): Endpoint | undefined {
    return this.endpoints.get(id) ?? [...this.endpoints.values()].find((endpoint) => String(endpoint.id) === id);
  }

  private put(id: string, change: EndpointChangeRequest): Response {
    if (this.find(id)) return error(409, `endpoint ${id} already exists`);
    const endpoint: Endpoint = {
      ...change,
      id: this.nextEndpointId++,
      state: this.endpointState,
      labels: change.labels ?? [],
      "created-at": new Date().toISOString(),
    };
    this.endpoints.set(id, endpoint);
    return Response.json(endpoint, { status: 201 });
  }

  private delete(id: string): Response {
    const endpoint = this.find(id);
    if (!endpoint) return error(404, `endpoint ${id} not found`);
    for (const [key, value] of this.endpoints) if (value === endpoint) this.endpoints.delete(key);
    const owner = `${endpoint["container-id"]}:${endpoint["container-interface-name"]}`;
    for (const [ip, holder] of this.allocations) if (holder === owner) this.allocations.delete(ip);
    return new Response(null, { status: 200 });
  }
}

const ROUTES: Record<string, FakeAgentCall> = {
  "GET healthz": "healthz",
  "POST ipam": "allocateIp",
  "DELETE ipam/:id": "releaseIp",
  "GET endpoint": "listEndpoints",
  "GET endpoint/:id": "getEndpoint",
  "PUT endpoint/:id": "putEndpoint",
  "DELETE endpoint/:id": "deleteEndpoint",
};

function error(status: number, message: string): Response {
  return Response.json({ code: status, message }, { status });
}
