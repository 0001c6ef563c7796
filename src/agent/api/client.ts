/**
 * Client for the agent's REST API over its unix socket, used by the CNI plugin and the debug
 * CLI. Kept dependency-free: it sits on the CNI plugin's start-up path.
 */
import type {
  AgentConfiguration,
  CniAttachment,
  CniAttachRequest,
  ApiError,
  Endpoint,
  EndpointChangeRequest,
  EndpointLabelsChange,
  IdentityModel,
  IpamResponse,
  PolicyResponse,
  PolicyRevision,
  PolicyTraceRequest,
  PolicyTraceResponse,
  StatusResponse,
} from "./types.ts";

export const DEFAULT_SOCKET_PATH = "/var/run/cilium/cilium.sock";

/** The agent answered with an error status; `status` is the HTTP status. */
export class AgentApiError extends Error {
  readonly status: number;
  readonly body: ApiError | undefined;

  constructor(status: number, message: string, body?: ApiError) {
    super(message);
    this.name = "AgentApiError";
    this.status = status;
    this.body = body;
  }
}

/** The agent could not be reached at all (no socket, refused, timed out). */
export class AgentUnreachableError extends Error {
  readonly socketPath: string;
  /** The system's error code (ENOENT, ECONNREFUSED, EACCES, ...) or message. */
  readonly reason: string;

  constructor(socketPath: string, cause: string) {
    super(`cannot reach the cilium agent at ${socketPath}: ${cause}`);
    this.name = "AgentUnreachableError";
    this.socketPath = socketPath;
    this.reason = cause;
  }
}

/** Accepts a socket path or upstream's `-H unix:///path` form. */
export function socketPathFromHost(host: string | undefined): string {
  if (!host) return process.env.CILIUM_SOCK ?? DEFAULT_SOCKET_PATH;
  if (host.startsWith("unix://")) return host.slice("unix://".length);
  if (host.startsWith("/")) return host;
  throw new Error(`unsupported agent address ${JSON.stringify(host)}: use unix:///path/to/cilium.sock`);
}

/** One request to the agent, as a transport carries it. */
export interface AgentHttpRequest {
  socketPath: string;
  method: string;
  /** From the root: "/v1/healthz". */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface AgentHttpResponse {
  status: number;
  text: string;
}

/** Carries a request; a failure to get an answer throws, with the system's code when there is one. */
export type AgentTransport = (request: AgentHttpRequest) => Promise<AgentHttpResponse>;

/** fetch over the unix socket: the default, for processes with an event loop (see unix-http.ts for the other). */
export async function fetchTransport(request: AgentHttpRequest): Promise<AgentHttpResponse> {
  const response = await fetch(`http://localhost${request.path}`, {
    method: request.method,
    unix: request.socketPath,
    headers: request.headers,
    body: request.body,
    signal: AbortSignal.timeout(request.timeoutMs),
  } as RequestInit);
  return { status: response.status, text: await response.text() };
}

export interface AgentClientOptions {
  timeoutMs?: number;
  transport?: AgentTransport;
}

export class AgentClient {
  readonly socketPath: string;
  readonly timeoutMs: number;
  private readonly transport: AgentTransport;

  constructor(socketPath: string = DEFAULT_SOCKET_PATH, options: AgentClientOptions = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.transport = options.transport ?? fetchTransport;
  }

  /** `body` is sent as JSON; `text` as it is (a policy document). */
  async request<T>(method: string, path: string, body?: unknown, raw?: { body: string; contentType: string }): Promise<T> {
    const request: AgentHttpRequest = { socketPath: this.socketPath, method, path: `/v1${path}`, timeoutMs: this.timeoutMs };
    if (raw) {
      request.headers = { "content-type": raw.contentType };
      request.body = raw.body;
    } else if (body !== undefined) {
      request.headers = { "content-type": "application/json" };
      request.body = JSON.stringify(body);
    }
    let response: AgentHttpResponse;
    try {
      response = await this.transport(request);
    } catch (error) {
      const e = error as Error & { code?: string };
      throw new AgentUnreachableError(this.socketPath, e.code ?? e.message);
    }
    let parsed: unknown;
    try {
      parsed = response.text ? JSON.parse(response.text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.status < 200 || response.status > 299) {
      const err = parsed as ApiError | undefined;
      throw new AgentApiError(response.status, err?.message ?? `${method} ${path}: HTTP ${response.status}`, err);
    }
    return parsed as T;
  }

  /** Throws AgentApiError 503 (its body a StatusResponse too) when the agent is in Failure. */
  healthz() {
    return this.request<StatusResponse>("GET", "/healthz");
  }
  config() {
    return this.request<AgentConfiguration>("GET", "/config");
  }
  allocateIp(owner: string) {
    return this.request<IpamResponse>("POST", `/ipam?family=ipv4&owner=${encodeURIComponent(owner)}`);
  }
  releaseIp(ip: string) {
    return this.request<void>("DELETE", `/ipam/${encodeURIComponent(ip)}`);
  }
  /** Releases whatever address the owner holds; 404 when it holds none. */
  releaseIpOf(owner: string) {
    return this.request<void>("DELETE", `/ipam?owner=${encodeURIComponent(owner)}`);
  }
  endpoints() {
    return this.request<Endpoint[]>("GET", "/endpoint");
  }
  endpoint(id: string | number) {
    return this.request<Endpoint>("GET", `/endpoint/${encodeURIComponent(String(id))}`);
  }
  putEndpoint(id: string | number, change: EndpointChangeRequest) {
    return this.request<Endpoint>("PUT", `/endpoint/${encodeURIComponent(String(id))}`, change);
  }
  deleteEndpoint(id: string | number) {
    return this.request<void>("DELETE", `/endpoint/${encodeURIComponent(String(id))}`);
  }
  /** The CNI plugin's ADD, done by the agent; `attachment` is "<container id>:<ifname>". */
  cniAttach(attachment: string, request: CniAttachRequest) {
    return this.request<CniAttachment>("PUT", `/cni/attachment/${encodeURIComponent(attachment)}`, request);
  }
  /** The CNI plugin's DEL: idempotent. */
  cniDetach(attachment: string) {
    return this.request<void>("DELETE", `/cni/attachment/${encodeURIComponent(attachment)}`);
  }
  patchEndpointLabels(id: string | number, change: EndpointLabelsChange) {
    return this.request<Endpoint>("PATCH", `/endpoint/${encodeURIComponent(String(id))}/labels`, change);
  }
  /** Imports policy text (JSON or YAML). */
  putPolicy(text: string, options: { replace?: boolean; replaceWithLabels?: string[] } = {}) {
    const query = new URLSearchParams();
    if (options.replace) query.set("replace", "true");
    if (options.replaceWithLabels?.length) query.set("replace-with-labels", options.replaceWithLabels.join(","));
    const suffix = query.size > 0 ? `?${query}` : "";
    const contentType = /^\s*[[{]/.test(text) ? "application/json" : "application/yaml";
    return this.request<PolicyRevision>("PUT", `/policy${suffix}`, undefined, { body: text, contentType });
  }
  policy() {
    return this.request<PolicyResponse>("GET", "/policy");
  }
  deletePolicy(target: { labels: string[] } | { all: true }) {
    return "all" in target ? this.request<PolicyRevision>("DELETE", "/policy?all=true") : this.request<PolicyRevision>("DELETE", "/policy", target.labels);
  }
  tracePolicy(request: PolicyTraceRequest) {
    return this.request<PolicyTraceResponse>("POST", "/policy/resolve", request);
  }
  identities() {
    return this.request<IdentityModel[]>("GET", "/identity");
  }
  identity(id: string | number) {
    return this.request<IdentityModel>("GET", `/identity/${encodeURIComponent(String(id))}`);
  }
}
