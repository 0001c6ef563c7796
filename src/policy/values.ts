/**
 * Validators for the values CiliumNetworkPolicy and Kubernetes NetworkPolicy share: label
 * selectors, CIDRs, ports and protocols. Each reports problems with their JSON path and returns
 * undefined for a value it refused.
 */
import { LabelError, LabelSource, parseSelectorKey } from "../identity/labels.ts";
import { cidrContains, formatCidr, parseCidr, type Ipv4Cidr } from "../net/ipv4.ts";
import { asObject, at, checkFields, describeType, item, optionalList, type Issues } from "./fields.ts";
import type { L4Protocol } from "./rule.ts";
import { EndpointSelector, type Requirement, type SelectorOperator } from "./selector.ts";

/** Turns a selector key as written into source and key. */
export type KeyReader = (text: string) => { source: string; key: string };

/** CiliumNetworkPolicy keys: "k8s:app" is k8s only, "app" any source (upstream "any."). */
export const ciliumKey: KeyReader = parseSelectorKey;

/** Kubernetes NetworkPolicy keys are k8s labels; `prefix` maps namespace labels. */
export const k8sKey =
  (prefix = ""): KeyReader =>
  (text) => {
    if (text === "" || /[\s\p{Cc}=]/u.test(text)) throw new LabelError(`label key ${JSON.stringify(text)} must be non-empty, without '=', whitespace or control characters`);
    return { source: LabelSource.k8s, key: prefix + text };
  };

const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];
const VALUE = /^[^\s\p{Cc}=]*$/u;

function readValue(value: unknown, path: string, issues: Issues): string | undefined {
  if (typeof value !== "string") {
    issues.add(path, `must be a string, not ${describeType(value)} (quote it)`);
    return undefined;
  }
  if (!VALUE.test(value)) {
    issues.add(path, "must not contain '=', whitespace or control characters");
    return undefined;
  }
  return value;
}

function readKey(text: string, path: string, issues: Issues, keyOf: KeyReader): { source: string; key: string } | undefined {
  try {
    return keyOf(text);
  } catch (error) {
    issues.add(path, (error as Error).message);
    return undefined;
  }
}

/** A Kubernetes label selector ({matchLabels, matchExpressions}) as an EndpointSelector. */
export function readSelector(value: unknown, path: string, issues: Issues, keyOf: KeyReader = ciliumKey): EndpointSelector | undefined {
  const obj = asObject(value, path, issues);
  if (!obj) return undefined;
  const before = issues.list.length;
  checkFields(obj, path, issues, ["matchLabels", "matchExpressions"]);
  const requirements: Requirement[] = [];

  const labelsPath = at(path, "matchLabels");
  if (obj.matchLabels !== undefined && obj.matchLabels !== null) {
    const labels = asObject(obj.matchLabels, labelsPath, issues);
    for (const [text, raw] of Object.entries(labels ?? {})) {
      const key = readKey(text, at(labelsPath, text), issues, keyOf);
      const v = readValue(raw, at(labelsPath, text), issues);
      if (key && v !== undefined) requirements.push({ ...key, operator: "In", values: [v] });
    }
  }

  const expressionsPath = at(path, "matchExpressions");
  (optionalList(obj, "matchExpressions", path, issues) ?? []).forEach((raw, i) => {
    const p = item(expressionsPath, i);
    const expr = asObject(raw, p, issues);
    if (!expr) return;
    checkFields(expr, p, issues, ["key", "operator", "values"]);
    const key = typeof expr.key === "string" ? readKey(expr.key, at(p, "key"), issues, keyOf) : undefined;
    if (typeof expr.key !== "string") issues.add(at(p, "key"), "required: a label key");
    const operator = expr.operator as SelectorOperator;
    if (!OPERATORS.includes(operator)) issues.add(at(p, "operator"), `must be one of ${OPERATORS.join(", ")}, not ${describeType(expr.operator)}`);
    const values = (optionalList(expr, "values", p, issues) ?? []).map((v, j) => readValue(v, item(at(p, "values"), j), issues));
    if ((operator === "In" || operator === "NotIn") && values.length === 0) issues.add(at(p, "values"), `required: ${operator} needs at least one value`);
    if ((operator === "Exists" || operator === "DoesNotExist") && values.length > 0) issues.add(at(p, "values"), `must be empty for ${operator}`);
    if (key && OPERATORS.includes(operator) && values.every((v) => v !== undefined)) requirements.push({ ...key, operator, values: values as string[] });
  });
  return issues.list.length === before ? EndpointSelector.of(requirements) : undefined;
}

/**
 * An IPv4 prefix "a.b.c.d/n"; with `bareAddress` a plain address is its /32 (upstream's fromCIDR
 * takes both, fromCIDRSet only prefixes). Host bits must be zero: "10.0.0.1/8" is refused rather
 * than guessed.
 */
export function readCidr(value: unknown, path: string, issues: Issues, options: { bareAddress?: boolean } = {}): Ipv4Cidr | undefined {
  if (typeof value !== "string") {
    issues.add(path, `must be a CIDR string, not ${describeType(value)}`);
    return undefined;
  }
  if (value.includes(":")) {
    issues.add(path, `${JSON.stringify(value)}: IPv6 is not supported yet`);
    return undefined;
  }
  try {
    return parseCidr(options.bareAddress && !value.includes("/") ? `${value}/32` : value);
  } catch (error) {
    issues.add(path, (error as Error).message);
    return undefined;
  }
}

/** The except list of a CIDR rule or ipBlock: each prefix must lie inside `cidr`. */
export function readExcept(list: unknown[], cidr: Ipv4Cidr | undefined, path: string, issues: Issues): Ipv4Cidr[] {
  const out: Ipv4Cidr[] = [];
  list.forEach((raw, i) => {
    const p = item(path, i);
    const except = readCidr(raw, p, issues);
    if (!except || !cidr) return;
    if (except.prefixLength < cidr.prefixLength || !cidrContains(cidr, except.network)) {
      issues.add(p, `${formatCidr(except)} is not inside ${formatCidr(cidr)}`);
      return;
    }
    out.push(except);
  });
  return out;
}

const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i;

/** A port number 0-65535, written as a number or a decimal string; names are refused. */
export function readPort(value: unknown, path: string, issues: Issues): number | undefined {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : undefined;
  if (text !== undefined && /^\d{1,5}$/.test(text) && Number(text) <= 65535) return Number(text);
  if (typeof value === "string" && SERVICE_NAME.test(value) && /[a-z]/i.test(value)) {
    issues.add(path, `port name ${JSON.stringify(value)} is not supported yet: give the port number`);
  } else {
    issues.add(path, `must be 0-65535, not ${describeType(value)}`);
  }
  return undefined;
}

/** endPort: the last port of a range starting at `port` (1-65535, not below `port`). */
export function readEndPort(value: unknown, port: number | undefined, path: string, issues: Issues): number | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    issues.add(path, `must be 1-65535, not ${describeType(value)}`);
    return undefined;
  }
  if (port === undefined) return undefined;
  if (port === 0) {
    issues.add(path, "needs a port: port 0 already means every port");
    return undefined;
  }
  if (value < port) {
    issues.add(path, `must not be less than port (${port})`);
    return undefined;
  }
  return value;
}

/** A protocol name, case-insensitive as upstream's ParseL4Proto; absent or "" is `absent`. */
export function readProtocol(value: unknown, path: string, issues: Issues, allowed: readonly L4Protocol[], absent: L4Protocol): L4Protocol | undefined {
  if (value === undefined || value === null || value === "") return absent;
  const upper = typeof value === "string" ? value.toUpperCase() : undefined;
  if (allowed.includes(upper as L4Protocol)) return upper as L4Protocol;
  const hint = upper === "ICMP" || upper === "ICMPV6" ? " (use icmps for ICMP)" : "";
  issues.add(path, `must be one of ${allowed.join(", ")}, not ${describeType(value)}${hint}`);
  return undefined;
}

/** Fails a list longer than upstream's limit (40 ports, 40 ICMP fields). */
export function checkMaxItems(list: unknown[], max: number, what: string, path: string, issues: Issues): void {
  if (list.length > max) issues.add(path, `too many ${what}: ${list.length}, the maximum is ${max}`);
}
