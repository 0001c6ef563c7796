/**
 * Label selectors as the hubble CLI sends them (--label, --from-label, --to-label): Kubernetes
 * selector syntax over Cilium labels. A key may carry a source ("k8s:app"); without one (or with
 * "any:") it matches labels of every source. Flow labels are "source:key=value" strings.
 *
 *   app=web, k8s:tier!=db, env in (prod,stage), track notin (canary), release, !experimental
 */

type Operator = "=" | "!=" | "in" | "notin" | "exists" | "!exists";

interface Requirement {
  /** undefined: any source */
  source: string | undefined;
  key: string;
  op: Operator;
  values: string[];
}

export type LabelSelector = (labels: readonly string[]) => boolean;

export class LabelSelectorError extends Error {
  override name = "LabelSelectorError";
}

const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./:]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

interface ParsedLabel {
  source: string;
  key: string;
  value: string;
}

function parseFlowLabel(text: string): ParsedLabel {
  const eq = text.indexOf("=");
  const kv = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? "" : text.slice(eq + 1);
  const colon = kv.indexOf(":");
  return colon < 0 ? { source: "unspec", key: kv, value } : { source: kv.slice(0, colon), key: kv.slice(colon + 1), value };
}

function parseKey(text: string, selector: string): { source: string | undefined; key: string } {
  if (!KEY.test(text)) throw new LabelSelectorError(`invalid label key "${text}" in selector "${selector}"`);
  const colon = text.indexOf(":");
  if (colon < 0) return { source: undefined, key: text };
  const source = text.slice(0, colon);
  return { source: source === "any" ? undefined : source, key: text.slice(colon + 1) };
}

function parseValue(text: string, selector: string): string {
  if (!VALUE.test(text)) throw new LabelSelectorError(`invalid label value "${text}" in selector "${selector}"`);
  return text;
}

/** Splits on commas that are not inside parentheses. */
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(text: string, selector: string): Requirement {
  if (text === "") throw new LabelSelectorError(`empty requirement in selector "${selector}"`);
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(text);
  if (set) {
    const values = set[3]!.split(",").map((v) => parseValue(v.trim(), selector));
    return { ...parseKey(set[1]!, selector), op: set[2] as Operator, values };
  }
  const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(text);
  if (cmp) {
    return { ...parseKey(cmp[1]!, selector), op: cmp[2] === "!=" ? "!=" : "=", values: [parseValue(cmp[3]!.trim(), selector)] };
  }
  if (text.startsWith("!")) return { ...parseKey(text.slice(1).trim(), selector), op: "!exists", values: [] };
  return { ...parseKey(text, selector), op: "exists", values: [] };
}

function matches(r: Requirement, labels: readonly ParsedLabel[]): boolean {
  const candidates = labels.filter((l) => l.key === r.key && (r.source === undefined || l.source === r.source));
  switch (r.op) {
    case "exists":
      return candidates.length > 0;
    case "!exists":
      return candidates.length === 0;
    case "=":
    case "in":
      return candidates.some((l) => r.values.includes(l.value));
    case "!=":
    case "notin":
      // As Kubernetes: true when the key is absent.
      return candidates.every((l) => !r.values.includes(l.value));
  }
}

export function parseLabelSelector(selector: string): LabelSelector {
  const requirements = splitRequirements(selector).map((r) => parseRequirement(r, selector));
  return (labels) => {
    const parsed = labels.map(parseFlowLabel);
    return requirements.every((r) => matches(r, parsed));
  };
}
