/**
 * Policy and identities, upstream's paths:
 *   PUT    /v1/policy            body: policy text (JSON or YAML); ?replace=true, ?replace-with-labels=a,b
 *   GET    /v1/policy            {revision, policy: rules as JSON}
 *   DELETE /v1/policy            body: labels (JSON list) of the rules to delete, or ?all=true
 *   POST   /v1/policy/resolve    (GET with a body too, as upstream) the verdict of a trace
 *   GET    /v1/identity, GET /v1/identity/{id}
 */
import { LabelSet } from "../../../identity/labels.ts";
import { IpProtocol, protocolName } from "../../../policy/ports.ts";
import type { DirectionTrace } from "../../../policy/trace.ts";
import type { EndpointManager } from "../../endpoint/manager.ts";
import { AgentError } from "../../errors.ts";
import { PolicyImportError, traceLabels, type PolicyManager } from "../../policy/manager.ts";
import { readBody } from "../body.ts";
import { json } from "../responses.ts";
import type { Router } from "../router.ts";
import { policyDeleteSchema, policyTraceRequestSchema } from "../schemas.ts";
import type { IdentityModel, PolicyDirectionTrace, PolicyResponse, PolicyRevision, PolicyTraceRequest, PolicyTraceResponse, TraceEndpoint } from "../types.ts";

export function addPolicyRoutes(router: Router, deps: { policy: PolicyManager; endpoints: EndpointManager }): void {
  const { policy, endpoints } = deps;

  router.add("GET", "/v1/policy", () => json(200, policy.policy() satisfies PolicyResponse));

  router.add("PUT", "/v1/policy", async (request, _params, url) => {
    const text = await request.text();
    if (text.trim() === "") throw new AgentError("invalid", "the request body is empty: expected the policy (JSON or YAML)");
    const replaceWithLabels = (url.searchParams.get("replace-with-labels") ?? "")
      .split(",")
      .map((l) => l.trim())
      .filter(Boolean);
    const replace = booleanParam(url, "replace");
    try {
      return json(200, (await policy.importPolicy(text, { replace, replaceWithLabels })) satisfies PolicyRevision);
    } catch (error) {
      // Besides the message, every problem on its own: the CLI lists them one per line.
      if (error instanceof PolicyImportError) return json(400, { code: 400, message: error.message, issues: error.issues });
      throw error;
    }
  });

  router.add("DELETE", "/v1/policy", async (request, _params, url) => {
    if (booleanParam(url, "all")) return json(200, (await policy.deletePolicy({ all: true })) satisfies PolicyRevision);
    const labels = await readBody(request, policyDeleteSchema, "list of rule labels", '(["k8s:io.cilium.k8s.policy.name=web"]), or ?all=true to delete every rule');
    return json(200, (await policy.deletePolicy({ labels })) satisfies PolicyRevision);
  });

  const resolve = async (request: Request) => {
    const body = await readBody(request, policyTraceRequestSchema, "policy trace request");
    return json(200, trace(policy, endpoints, body));
  };
  router.add("POST", "/v1/policy/resolve", resolve);
  router.add("GET", "/v1/policy/resolve", resolve);

  router.add("GET", "/v1/identity", () => json(200, policy.identities() satisfies IdentityModel[]));
  router.add("GET", "/v1/identity/{id}", (_request, params) => {
    const text = params.id!;
    if (!/^\d+$/.test(text)) throw new AgentError("invalid", `identity ${JSON.stringify(text)}: must be a number`);
    const identity = policy.identity(Number(text));
    if (!identity) throw new AgentError("not-found", `identity ${text} not found`);
    return json(200, identity satisfies IdentityModel);
  });
}

function booleanParam(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  if (value === null || value === "false") return false;
  if (value === "" || value === "true") return true;
  throw new AgentError("invalid", `${name}: must be true or false, not ${JSON.stringify(value)}`);
}

const PROTOCOLS: Record<string, number> = { TCP: IpProtocol.tcp, UDP: IpProtocol.udp, SCTP: IpProtocol.sctp, ICMP: IpProtocol.icmp, ICMPV6: IpProtocol.icmpv6 };

/** dport (80, "80", "80/TCP") and protocol (name or number) -> protocol number and port. */
export function parseTracePort(dport: number | string | undefined, protocol: string | undefined): { protocol: number; port: number } {
  let port = 0;
  let fromPort: string | undefined;
  if (typeof dport === "number") port = dport;
  else if (typeof dport === "string") {
    const match = /^(\d{1,5})(?:\/([A-Za-z0-9]+))?$/.exec(dport.trim());
    if (!match || Number(match[1]) > 65535) throw new AgentError("invalid", `dport: ${JSON.stringify(dport)} must be a port 0-65535, optionally with /TCP, /UDP, /SCTP or /ICMP`);
    port = Number(match[1]);
    fromPort = match[2];
  }
  const name = (protocol ?? fromPort ?? "TCP").toUpperCase();
  if (protocol && fromPort && fromPort.toUpperCase() !== name) throw new AgentError("invalid", `protocol: ${protocol} contradicts dport ${JSON.stringify(dport)}`);
  const number = /^\d{1,3}$/.test(name) && Number(name) <= 255 ? Number(name) : PROTOCOLS[name];
  if (number === undefined) throw new AgentError("invalid", `protocol: ${JSON.stringify(protocol ?? fromPort)} must be TCP, UDP, SCTP, ICMP or a protocol number`);
  return { protocol: number, port };
}

function sideLabels(side: TraceEndpoint, field: string, endpoints: EndpointManager): LabelSet {
  if ("labels" in side) return traceLabels(side.labels, `${field}.labels`);
  try {
    return LabelSet.parse(endpoints.get(String(side.endpoint)).labels);
  } catch (error) {
    if (error instanceof AgentError) throw new AgentError(error.kind, `${field}.endpoint: ${error.message}`);
    throw error;
  }
}

function directionJson(trace: DirectionTrace): PolicyDirectionTrace {
  return {
    direction: trace.direction,
    verdict: trace.verdict,
    reason: trace.reason,
    enforced: trace.enforced,
    "selecting-rules": trace.selectingRules,
    "deciding-rules": trace.decidingRules,
  };
}

export function trace(policy: PolicyManager, endpoints: EndpointManager, request: PolicyTraceRequest): PolicyTraceResponse {
  const from = sideLabels(request.from, "from", endpoints);
  const to = sideLabels(request.to, "to", endpoints);
  const { protocol, port } = parseTracePort(request.dport, request.protocol);
  const result = policy.trace({ from, to, protocol, port });
  return {
    verdict: result.verdict,
    from: from.toStrings(),
    to: to.toStrings(),
    protocol: protocolName(protocol),
    dport: port,
    egress: directionJson(result.egress),
    ingress: directionJson(result.ingress),
  };
}
