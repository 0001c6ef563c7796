/**
 * Context options of Hubble metrics (upstream's sourceContext, destinationContext, their
 * ingress/egress variants, and labelsContext): extra labels naming who sent and who received a
 * flow. Pure.
 */
import type { FlowFacts } from "../flow/facts.ts";
import type { Endpoint } from "../flow/types.ts";
import { TrafficDirection } from "../flow/types.ts";

export const CONTEXT_IDENTIFIERS = ["identity", "namespace", "pod", "pod-short", "pod-name", "dns", "ip", "reserved-identity", "workload-name", "app"] as const;
export type ContextIdentifier = (typeof CONTEXT_IDENTIFIERS)[number];

/** labelsContext labels, in the order upstream adds them. */
export const CONTEXT_LABELS = [
  "source_ip",
  "source_pod",
  "source_namespace",
  "source_workload",
  "source_app",
  "destination_ip",
  "destination_pod",
  "destination_namespace",
  "destination_workload",
  "destination_app",
  "traffic_direction",
] as const;
export type ContextLabel = (typeof CONTEXT_LABELS)[number];

export interface ContextOptions {
  source: ContextIdentifier[];
  destination: ContextIdentifier[];
  sourceIngress?: ContextIdentifier[];
  sourceEgress?: ContextIdentifier[];
  destinationIngress?: ContextIdentifier[];
  destinationEgress?: ContextIdentifier[];
  labels: ContextLabel[];
}

/** Option names as written (matched case-insensitively, as upstream). */
export const CONTEXT_OPTION_NAMES = [
  "sourceContext",
  "destinationContext",
  "sourceIngressContext",
  "sourceEgressContext",
  "destinationIngressContext",
  "destinationEgressContext",
  "labelsContext",
] as const;

type OptionKey = Exclude<keyof ContextOptions, "labels">;
const IDENTIFIER_OPTIONS: Record<string, OptionKey> = {
  sourcecontext: "source",
  destinationcontext: "destination",
  sourceingresscontext: "sourceIngress",
  sourceegresscontext: "sourceEgress",
  destinationingresscontext: "destinationIngress",
  destinationegresscontext: "destinationEgress",
};

export function emptyContextOptions(): ContextOptions {
  return { source: [], destination: [], labels: [] };
}

/** Sets one option on `options`; answers a problem for an unknown option or value. */
export function applyContextOption(options: ContextOptions, name: string, value: string): string | undefined {
  const key = name.toLowerCase();
  if (key === "labelscontext") {
    const labels = value.split(",");
    const bad = labels.find((label) => !(CONTEXT_LABELS as readonly string[]).includes(label));
    if (bad !== undefined) return `labelsContext: unknown label "${bad}" (known: ${CONTEXT_LABELS.join(", ")})`;
    options.labels = CONTEXT_LABELS.filter((label) => labels.includes(label));
    return undefined;
  }
  const field = IDENTIFIER_OPTIONS[key];
  if (field === undefined) return `unknown option "${name}" (known: ${CONTEXT_OPTION_NAMES.join(", ")})`;
  const identifiers: ContextIdentifier[] = [];
  for (const part of value.split("|")) {
    const identifier = part.toLowerCase() as ContextIdentifier;
    if (!CONTEXT_IDENTIFIERS.includes(identifier)) return `${name}: unknown context "${part}" (known: ${CONTEXT_IDENTIFIERS.join(", ")})`;
    identifiers.push(identifier);
  }
  options[field] = identifiers;
  return undefined;
}

/** The label names the options add, in upstream's order: labelsContext ones, then source, destination. */
export function contextLabelNames(options: ContextOptions): string[] {
  return [...options.labels, ...(options.source.length ? ["source"] : []), ...(options.destination.length ? ["destination"] : [])];
}

/** The values of contextLabelNames(options) for a flow, in the same order. */
const NO_VALUES: string[] = [];

export function contextLabelValues(options: ContextOptions, flow: FlowFacts): string[] {
  // Without context options (the common case) there is nothing to compute per flow.
  if (options.labels.length === 0 && options.source.length === 0 && options.destination.length === 0) return NO_VALUES;
  const values = options.labels.map((label) => labelValue(label, flow));
  const direction = flow.traffic_direction;
  if (options.source.length) {
    const ids = (direction === TrafficDirection.INGRESS && options.sourceIngress) || (direction === TrafficDirection.EGRESS && options.sourceEgress) || options.source;
    values.push(firstNonEmpty(ids, flow, true));
  }
  if (options.destination.length) {
    const ids =
      (direction === TrafficDirection.INGRESS && options.destinationIngress) || (direction === TrafficDirection.EGRESS && options.destinationEgress) || options.destination;
    values.push(firstNonEmpty(ids, flow, false));
  }
  return values;
}

function firstNonEmpty(identifiers: ContextIdentifier[], flow: FlowFacts, source: boolean): string {
  for (const identifier of identifiers) {
    const value = identifierValue(identifier, flow, source);
    if (value !== "") return value;
  }
  return "";
}

const SHORT_POD = /^(.+?)(-[a-z0-9]+){1,2}$/;
const KUBE_APISERVER = "reserved:kube-apiserver";
const APP_LABELS = ["k8s:app.kubernetes.io/name", "k8s:k8s-app", "k8s:app"];

function identifierValue(identifier: ContextIdentifier, flow: FlowFacts, source: boolean): string {
  const endpoint: Endpoint = (source ? flow.source : flow.destination) ?? {};
  const namespaced = (name: string) => (endpoint.namespace ? `${endpoint.namespace}/${name}` : name);
  switch (identifier) {
    case "namespace":
      return endpoint.namespace ?? "";
    case "identity":
      return (endpoint.labels ?? []).join(",");
    case "pod":
      return namespaced(endpoint.pod_name ?? "");
    case "pod-short":
      return namespaced((endpoint.pod_name ?? "").replace(SHORT_POD, "$1"));
    case "pod-name":
      return endpoint.pod_name ?? "";
    case "dns":
      return ((source ? flow.source_names : flow.destination_names) ?? []).join(",");
    case "ip":
      return (source ? flow.IP?.source : flow.IP?.destination) ?? "";
    case "reserved-identity": {
      const labels = endpoint.labels ?? [];
      if (labels.includes(KUBE_APISERVER)) return KUBE_APISERVER;
      return labels.find((label) => label.startsWith("reserved:")) ?? "";
    }
    case "workload-name":
      return endpoint.workloads?.[0]?.name ?? "";
    case "app":
      return appOf(endpoint.labels ?? []);
  }
}

function appOf(labels: string[]): string {
  for (const label of labels) {
    for (const app of APP_LABELS) {
      if (label.startsWith(`${app}=`) && label.length > app.length + 1) return label.slice(app.length + 1);
    }
  }
  return "";
}

function labelValue(label: ContextLabel, flow: FlowFacts): string {
  switch (label) {
    case "source_ip":
      return flow.IP?.source ?? "";
    case "source_pod":
      return flow.source?.pod_name ?? "";
    case "source_namespace":
      return flow.source?.namespace ?? "";
    case "source_workload":
      return flow.source?.workloads?.[0]?.name ?? "";
    case "source_app":
      return appOf(flow.source?.labels ?? []);
    case "destination_ip":
      return flow.IP?.destination ?? "";
    case "destination_pod":
      return flow.destination?.pod_name ?? "";
    case "destination_namespace":
      return flow.destination?.namespace ?? "";
    case "destination_workload":
      return flow.destination?.workloads?.[0]?.name ?? "";
    case "destination_app":
      return appOf(flow.destination?.labels ?? []);
    case "traffic_direction":
      return flow.traffic_direction === TrafficDirection.INGRESS ? "ingress" : flow.traffic_direction === TrafficDirection.EGRESS ? "egress" : "unknown";
  }
}
