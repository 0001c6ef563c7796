/**
 * Endpoint labels, upstream's "source:key=value" strings. Source defaults to "unspec"; the value
 * may be absent ("reserved:host"). The pod's namespace label is part of every pod's identity.
 */
import { AgentError } from "../errors.ts";

export interface Label {
  source: string;
  key: string;
  value?: string;
}

export const DEFAULT_LABEL_SOURCE = "unspec";
export const POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
/**
 * Keys Cilium derives from Kubernetes objects (namespace labels, service account, cluster, policy
 * names): upstream strips them from pod labels. A pod carrying one could pose as another
 * namespace or account in every selector, so an endpoint may not have them at all.
 */
const CILIUM_K8S_PREFIX = "io.cilium.k8s.";

const SOURCE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const NO_SPACE = /^[^\s\p{Cc}=]*$/u;

/** A label from text, or the problem with it in words. */
export function parseLabel(text: string): { label: Label } | { problem: string } {
  const colon = text.indexOf(":");
  const equals = text.indexOf("=");
  // A colon before any "=" ends the source; one after it belongs to the value.
  const hasSource = colon >= 0 && (equals < 0 || colon < equals);
  const source = hasSource ? text.slice(0, colon) : DEFAULT_LABEL_SOURCE;
  const rest = hasSource ? text.slice(colon + 1) : text;
  const split = rest.indexOf("=");
  const key = split < 0 ? rest : rest.slice(0, split);
  const value = split < 0 ? undefined : rest.slice(split + 1);
  if (!SOURCE.test(source)) return { problem: `source "${source}" must be letters, digits, '.', '_' or '-'` };
  if (key === "") return { problem: "the key is empty" };
  if (!NO_SPACE.test(key)) return { problem: "the key must not contain whitespace or control characters" };
  if (value !== undefined && !NO_SPACE.test(value)) return { problem: "the value must not contain '=', whitespace or control characters" };
  return { label: value === undefined ? { source, key } : { source, key, value } };
}

export function formatLabel(label: Label): string {
  return `${label.source}:${label.key}${label.value === undefined ? "" : `=${label.value}`}`;
}

/**
 * The endpoint's labels in canonical form, sorted and without repeats; with the pod namespace
 * label when the namespace is known. Errors name the offending entry (`labels[2]`).
 */
export function endpointLabels(texts: readonly string[], podNamespace?: string): string[] {
  const byKey = new Map<string, Label>();
  texts.forEach((text, index) => {
    const parsed = parseLabel(text);
    if ("problem" in parsed) throw new AgentError("invalid", `labels[${index}] ${JSON.stringify(text)}: ${parsed.problem}`);
    const { label } = parsed;
    const reserved = reservedKeyProblem(label);
    if (reserved) throw new AgentError("invalid", `labels[${index}] ${JSON.stringify(text)}: ${reserved}`);
    const id = `${label.source}:${label.key}`;
    const seen = byKey.get(id);
    if (seen && seen.value !== label.value) {
      throw new AgentError("invalid", `labels[${index}] ${JSON.stringify(text)}: ${id} is given twice with different values`);
    }
    byKey.set(id, label);
  });
  if (podNamespace !== undefined) {
    const id = `k8s:${POD_NAMESPACE_LABEL}`;
    const given = byKey.get(id);
    if (given && given.value !== podNamespace) {
      throw new AgentError("invalid", `labels: ${formatLabel(given)} contradicts k8s-namespace ${JSON.stringify(podNamespace)}`);
    }
    byKey.set(id, { source: "k8s", key: POD_NAMESPACE_LABEL, value: podNamespace });
  }
  return [...byKey.values()].map(formatLabel).sort();
}

/**
 * Why a label may not be an endpoint's: a key only Cilium sets. The namespace key is only ever
 * k8s-sourced (a selector key without source, which matches any source, would otherwise take an
 * unspec one for the namespace).
 */
function reservedKeyProblem(label: Label): string | undefined {
  if (label.key.startsWith(CILIUM_K8S_PREFIX)) return `keys under ${CILIUM_K8S_PREFIX} are derived by Cilium from Kubernetes objects, not given to an endpoint`;
  if (label.key === POD_NAMESPACE_LABEL && label.source !== "k8s") return `the pod namespace is only ever the k8s:${POD_NAMESPACE_LABEL} label (from k8s-namespace)`;
  return undefined;
}

/**
 * An endpoint's labels after PATCH /v1/endpoint/{id}/labels: `delete` first ("source:key", "key"
 * for every source, or "source:key=value" / "key=value" for that value only), then `add`
 * ("source:key=value", source unspec when absent; it replaces the label of the same source and
 * key). The namespace label follows k8s-namespace and cannot be changed. Errors name the entry.
 */
export function changeLabels(current: readonly string[], change: { add?: string[]; delete?: string[] }, podNamespace?: string): string[] {
  const labels = new Map<string, Label>();
  for (const text of current) {
    const parsed = parseLabel(text);
    if ("label" in parsed) labels.set(`${parsed.label.source}:${parsed.label.key}`, parsed.label);
  }
  const protectedId = podNamespace === undefined ? undefined : `k8s:${POD_NAMESPACE_LABEL}`;

  (change.delete ?? []).forEach((text, index) => {
    const where = `delete[${index}] ${JSON.stringify(text)}`;
    const colon = text.indexOf(":");
    const equals = text.indexOf("=");
    const hasSource = colon >= 0 && (equals < 0 || colon < equals);
    const parsed = parseLabel(hasSource ? text : `any:${text}`);
    if ("problem" in parsed) throw new AgentError("invalid", `${where}: ${parsed.problem}`);
    const wanted = parsed.label;
    const matching = [...labels].filter(
      ([, l]) => (wanted.source === "any" || l.source === wanted.source) && l.key === wanted.key && (wanted.value === undefined || l.value === wanted.value),
    );
    if (matching.length === 0) throw new AgentError("invalid", `${where}: the endpoint has no such label`);
    for (const [id] of matching) {
      if (id === protectedId) throw new AgentError("invalid", `${where}: ${id} comes from the endpoint's k8s-namespace and cannot be deleted`);
      labels.delete(id);
    }
  });

  (change.add ?? []).forEach((text, index) => {
    const parsed = parseLabel(text);
    if ("problem" in parsed) throw new AgentError("invalid", `add[${index}] ${JSON.stringify(text)}: ${parsed.problem}`);
    const reserved = reservedKeyProblem(parsed.label);
    if (reserved) throw new AgentError("invalid", `add[${index}] ${JSON.stringify(text)}: ${reserved}`);
    const id = `${parsed.label.source}:${parsed.label.key}`;
    if (id === protectedId && parsed.label.value !== podNamespace) {
      throw new AgentError("invalid", `add[${index}] ${JSON.stringify(text)}: ${id} comes from the endpoint's k8s-namespace (${podNamespace}) and cannot be changed`);
    }
    labels.set(id, parsed.label);
  });
  return endpointLabels([...labels.values()].map(formatLabel), podNamespace);
}
