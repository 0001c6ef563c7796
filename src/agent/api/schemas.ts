/**
 * Schemas for every body that enters the agent: API requests, and the endpoint records the agent
 * reads back from its state dir. Failures become one message naming each bad field.
 */
import { z } from "zod";
import { isInterfaceName } from "../config.ts";
import { AgentError } from "../errors.ts";
import { isIpv4 } from "../../net/ipv4.ts";
import type { CniAttachRequest, Endpoint, EndpointChangeRequest, EndpointLabelsChange, EndpointState, PolicyTraceRequest } from "./types.ts";

/** The CNI spec's container id: alphanumerics, '_', '.', '-', starting alphanumeric. */
const containerId = z
  .string()
  .max(256, { error: "must be at most 256 characters" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: "must be letters, digits, '_', '.' or '-', starting with a letter or digit" });

const interfaceName = z.string().refine(isInterfaceName, { error: "must be an interface name: 1-15 bytes, no '/', ':' or whitespace" });

const mac = z
  .string()
  .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, { error: "must be a MAC address such as 0a:58:0a:c8:00:05" })
  .transform((value) => value.toLowerCase());

const ipv4 = z.string().refine(isIpv4, { error: "must be an IPv4 address such as 10.200.0.5" });

const absolutePath = z.string().startsWith("/", { error: "must be an absolute path" });

const kubernetesName = z.string().min(1, { error: "must not be empty" }).max(253, { error: "must be at most 253 characters" });

export const endpointChangeRequestSchema = z.object({
  "container-id": containerId,
  "container-interface-name": interfaceName,
  "interface-name": interfaceName,
  "interface-index": z.number().int().min(1, { error: "must be a positive ifindex" }),
  mac,
  "host-mac": mac,
  addressing: z.object({ ipv4 }),
  "netns-path": absolutePath.optional(),
  "k8s-namespace": kubernetesName.optional(),
  "k8s-pod-name": kubernetesName.optional(),
  labels: z.array(z.string()).max(256, { error: "at most 256 labels" }).optional(),
}) satisfies z.ZodType<EndpointChangeRequest>;

export const cniAttachRequestSchema = z.object({
  "netns-path": absolutePath,
  mtu: z.number().int().min(68, { error: "must be at least 68" }).optional(),
  "k8s-namespace": kubernetesName.optional(),
  "k8s-pod-name": kubernetesName.optional(),
  labels: z.array(z.string()).max(256, { error: "at most 256 labels" }).optional(),
}) satisfies z.ZodType<CniAttachRequest>;

const endpointStates = ["waiting-for-identity", "not-ready", "regenerating", "ready", "disconnecting", "disconnected"] as const satisfies readonly EndpointState[];

export const endpointSchema = endpointChangeRequestSchema.extend({
  id: z.number().int().min(1).max(65535),
  state: z.enum(endpointStates),
  labels: z.array(z.string()),
  identity: z.number().int().min(0).optional(),
  policy: z
    .object({
      "realized-revision": z.number().int().min(0),
      "ingress-enforced": z.boolean(),
      "egress-enforced": z.boolean(),
      error: z.string().optional(),
    })
    .optional(),
  "created-at": z.string(),
}) satisfies z.ZodType<Endpoint>;

const labelList = (what: string) => z.array(z.string({ error: `must be a string such as ${what}` })).max(256, { error: "at most 256 labels" });

export const endpointLabelsChangeSchema = z
  .strictObject(
    {
      add: labelList('"k8s:app=web"').optional(),
      delete: labelList('"k8s:app"').optional(),
    },
    { error: (issue) => (issue.code === "unrecognized_keys" ? `unknown field(s) ${issue.keys.join(", ")}: expected add and delete` : undefined) },
  )
  .refine((change) => (change.add?.length ?? 0) + (change.delete?.length ?? 0) > 0, { error: "give labels to add or delete" }) satisfies z.ZodType<EndpointLabelsChange>;

export const policyDeleteSchema = z.array(z.string({ error: 'must be a label such as "k8s:io.cilium.k8s.policy.name=web"' })).max(256, { error: "at most 256 labels" });

const traceEndpointSchema = z.union(
  [
    z.strictObject({ labels: z.array(z.string()).max(256) }),
    z.strictObject({ endpoint: z.union([z.string().min(1), z.number().int().min(1)]) }),
  ],
  { error: 'must be {"labels": ["k8s:app=web", ...]} or {"endpoint": <endpoint ID>}' },
);

export const policyTraceRequestSchema = z.strictObject({
  from: traceEndpointSchema,
  to: traceEndpointSchema,
  dport: z.union([z.number().int().min(0).max(65535), z.string()]).optional(),
  protocol: z.string().optional(),
}) satisfies z.ZodType<PolicyTraceRequest>;

/** The value as the schema's type, or an "invalid" AgentError naming every bad field of `what`. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new AgentError("invalid", `invalid ${what}: ${describeIssues(result.error.issues)}`);
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => `${fieldName(issue.path)}: ${issueText(issue)}`).join("; ");
}

/** "addressing.ipv4", "labels[2]"; the whole body when the path is empty. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("");
}

function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) return "is required";
  return issue.message.replace(/^Invalid input: /, "");
}
