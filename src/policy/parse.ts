/**
 * Policy documents to rules. Accepted, in JSON or YAML (several YAML documents separated by
 * "---"):
 *
 * - CiliumNetworkPolicy (cilium.io/v2): `spec` and/or `specs`; scoped to metadata.namespace
 *   ("default" when absent, as kubectl would apply it); its rules get upstream's derived labels
 *   (k8s:io.cilium.k8s.policy.derived-from/name/namespace/uid) before their own.
 * - CiliumClusterwideNetworkPolicy (cilium.io/v2): the same, cluster-wide.
 * - NetworkPolicy (networking.k8s.io/v1): translated (k8s-network-policy.ts).
 * - A List (`kind: List` or `<Kind>List`, as `kubectl get -o yaml` prints) of those.
 * - A bare rule, or a list of bare rules (what `cilium policy import` takes upstream): applied as
 *   written, without namespace scoping.
 *
 * All or nothing: any problem anywhere refuses the whole input, with every problem listed.
 */
import { parseAllDocuments } from "yaml";
import { LabelSet, LabelSource, PolicyLabelKey, type Label } from "../identity/labels.ts";
import { PolicyValidationError, type ValidationIssue } from "./errors.ts";
import { asObject, at, checkFields, describeType, Issues, item, optionalList, optionalString, type Fields } from "./fields.ts";
import { networkPolicyRule, type PolicyMetadata } from "./k8s-network-policy.ts";
import { scopeRule, type PolicyScope } from "./namespace.ts";
import type { Rule } from "./rule.ts";
import { validateRule } from "./validate.ts";

const CILIUM_API = "cilium.io/v2";
const NETWORKING_API = "networking.k8s.io/v1";
const DEFAULT_NAMESPACE = "default";

function readMetadata(obj: Fields, path: string, issues: Issues, namespaced: boolean): PolicyMetadata | undefined {
  const p = at(path, "metadata");
  // Other metadata (labels, annotations, managedFields, ...) is not policy: accepted and ignored.
  const meta = obj.metadata === undefined ? undefined : asObject(obj.metadata, p, issues);
  if (!meta) {
    if (obj.metadata === undefined) issues.add(p, "required: at least metadata.name");
    return undefined;
  }
  const name = optionalString(meta, "name", p, issues);
  const namespace = optionalString(meta, "namespace", p, issues);
  const uid = optionalString(meta, "uid", p, issues);
  if (!name) {
    issues.add(at(p, "name"), "required: the policy's name");
    return undefined;
  }
  const out: PolicyMetadata = { name, namespace: namespaced ? namespace || DEFAULT_NAMESPACE : "" };
  if (uid) out.uid = uid;
  return out;
}

function derivedLabels(kind: string, meta: PolicyMetadata): Label[] {
  const k8s = (key: string, value: string): Label => ({ source: LabelSource.k8s, key, value });
  const labels = [k8s(PolicyLabelKey.derivedFrom, kind), k8s(PolicyLabelKey.name, meta.name)];
  if (meta.namespace) labels.push(k8s(PolicyLabelKey.namespace, meta.namespace));
  if (meta.uid) labels.push(k8s(PolicyLabelKey.uid, meta.uid));
  return labels;
}

function ciliumPolicyRules(obj: Fields, kind: string, path: string, issues: Issues): Rule[] {
  const namespaced = kind === "CiliumNetworkPolicy";
  checkFields(obj, path, issues, ["apiVersion", "kind", "metadata", "spec", "specs", "status"]);
  const meta = readMetadata(obj, path, issues, namespaced);
  const specs: [unknown, string][] = [];
  if (obj.spec !== undefined && obj.spec !== null) specs.push([obj.spec, at(path, "spec")]);
  (optionalList(obj, "specs", path, issues) ?? []).forEach((s, i) => specs.push([s, item(at(path, "specs"), i)]));
  if (specs.length === 0) issues.add(path, "spec or specs is required (a policy without rules)");
  if (!meta) return [];
  const scope: PolicyScope = namespaced ? { kind: "namespaced", namespace: meta.namespace } : { kind: "clusterwide" };
  return specs.flatMap(([spec, p]) => {
    const rule = validateRule(spec, p, issues);
    if (!rule) return [];
    let labels: LabelSet;
    try {
      labels = LabelSet.of([...derivedLabels(kind, meta), ...rule.labels.labels]);
    } catch (error) {
      issues.add(at(p, "labels"), (error as Error).message);
      return [];
    }
    return [{ ...scopeRule(rule, scope), labels }];
  });
}

function networkPolicyRules(obj: Fields, path: string, issues: Issues): Rule[] {
  checkFields(obj, path, issues, ["apiVersion", "kind", "metadata", "spec", "status"]);
  const meta = readMetadata(obj, path, issues, true);
  if (obj.spec === undefined || obj.spec === null) {
    issues.add(at(path, "spec"), "required: the policy");
    return [];
  }
  const rule = meta ? networkPolicyRule(obj.spec, at(path, "spec"), issues, meta) : undefined;
  return rule ? [rule] : [];
}

function documentRules(value: unknown, path: string, issues: Issues): Rule[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => documentRules(v, item(path, i), issues));
  const obj = asObject(value, path, issues);
  if (!obj) return [];
  if (obj.kind === undefined && obj.apiVersion === undefined) {
    const rule = validateRule(obj, path, issues);
    return rule ? [rule] : [];
  }
  const kind = obj.kind;
  const api = obj.apiVersion;
  if (typeof kind === "string" && (kind === "List" || kind.endsWith("List"))) {
    checkFields(obj, path, issues, ["apiVersion", "kind", "metadata", "items"]);
    return (optionalList(obj, "items", path, issues) ?? []).flatMap((v, i) => documentRules(v, item(at(path, "items"), i), issues));
  }
  if (api === CILIUM_API && (kind === "CiliumNetworkPolicy" || kind === "CiliumClusterwideNetworkPolicy")) return ciliumPolicyRules(obj, kind, path, issues);
  if (api === NETWORKING_API && kind === "NetworkPolicy") return networkPolicyRules(obj, path, issues);
  issues.add(
    path,
    `unsupported kind ${describeType(kind)} of apiVersion ${describeType(api)}: expected CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (${CILIUM_API}), NetworkPolicy (${NETWORKING_API}), or bare rules`,
  );
  return [];
}

function fail(issues: readonly ValidationIssue[]): never {
  throw new PolicyValidationError(issues);
}

/** Rules from already-decoded documents (the REST API's JSON body, a CRD object from a watch). */
export function parsePolicyDocuments(documents: readonly unknown[]): Rule[] {
  const rules: Rule[] = [];
  const all: ValidationIssue[] = [];
  documents.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    const issues = new Issues();
    rules.push(...documentRules(doc, "", issues));
    all.push(...issues.list.map((issue) => (documents.length > 1 ? { ...issue, document: i + 1 } : issue)));
  });
  if (all.length > 0) fail(all);
  if (rules.length === 0) fail([{ path: "", message: "no rules in the input" }]);
  return rules;
}

/** Rules from JSON or YAML text; throws PolicyValidationError listing every problem. */
export function parsePolicyText(text: string): Rule[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      fail([{ path: "", message: `invalid JSON: ${(error as Error).message}` }]);
    }
    return parsePolicyDocuments([value]);
  }
  const documents = parseAllDocuments(text, { uniqueKeys: true });
  const docs = Array.isArray(documents) ? documents : [];
  const problems = docs.flatMap((doc, i) =>
    doc.errors.map((e): ValidationIssue => {
      const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : "";
      const text = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      const issue: ValidationIssue = { path: "", message: `invalid YAML: ${text}${where}` };
      return docs.length > 1 ? { ...issue, document: i + 1 } : issue;
    }),
  );
  if (problems.length > 0) fail(problems);
  return parsePolicyDocuments(docs.map((d) => d.toJS()));
}
