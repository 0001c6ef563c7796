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
