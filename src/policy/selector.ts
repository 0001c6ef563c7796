/**
 * Endpoint selectors: Kubernetes label selectors over security labels, as upstream's
 * EndpointSelector. matchLabels {k: v} is the requirement "k In (v)". A requirement's source
 * "any" matches the key from every source; any other source matches only labels of that source
 * ("k8s:app" does not match "container:app").
 *
 * Matching, for the labels of the requirement's key (and source):
 *   In            some such label has a value in the list
 *   NotIn         no such label has a value in the list (true when the key is absent, as k8s)
 *   Exists        some such label exists
 *   DoesNotExist  none exists
 * When one key comes from several sources under "any", In needs one of them to match and NotIn
 * needs all of them to differ. (Upstream looks at the first in sort order; we decide on all.)
 *
 * The selector without requirements ({}) selects everything, including reserved and CIDR
 * identities; resolution turns it into the "any identity" (0) map key.
 */
import { LabelSource, type Label, type LabelSet } from "../identity/labels.ts";

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export interface Requirement {
  source: string;
  key: string;
  operator: SelectorOperator;
  /** Sorted and without repeats; empty for Exists and DoesNotExist. */
  values: readonly string[];
}

const SEP = "\u0001";

function requirementKey(r: Requirement): string {
  return [r.source, r.key, r.operator, ...r.values].join(SEP);
}

function requirementMatches(r: Requirement, labels: LabelSet): boolean {
  // Hot path of resolution and the selector cache: no closures, no arrays.
  let exists = false;
  let inValues = false;
  for (const l of labels.withKey(r.key)) {
    if (r.source !== LabelSource.any && l.source !== r.source) continue;
    exists = true;
    if (r.values.includes(l.value)) {
      inValues = true;
      break;
    }
  }
  switch (r.operator) {
    case "Exists":
      return exists;
    case "DoesNotExist":
      return !exists;
    case "In":
      return inValues;
    case "NotIn":
      return !inValues;
  }
}

function describe(r: Requirement): string {
  const key = `${r.source}:${r.key}`;
  switch (r.operator) {
    case "Exists":
      return key;
    case "DoesNotExist":
      return `!${key}`;
    case "In":
      return r.values.length === 1 ? `${key}=${r.values[0]}` : `${key} in (${r.values.join(",")})`;
    case "NotIn":
      return `${key} notin (${r.values.join(",")})`;
  }
}

export class EndpointSelector {
  readonly requirements: readonly Requirement[];
  /** Canonical form: equal selectors have equal keys (the selector cache's index). */
  readonly key: string;

  private constructor(requirements: Requirement[]) {
    const byKey = new Map<string, Requirement>();
    for (const r of requirements) {
      const values = r.operator === "Exists" || r.operator === "DoesNotExist" ? [] : [...new Set(r.values)].sort();
      const normal = { source: r.source, key: r.key, operator: r.operator, values };
      byKey.set(requirementKey(normal), normal);
    }
    const sorted = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.requirements = sorted.map(([, r]) => r);
    this.key = sorted.map(([k]) => k).join("\u0000");
  }

  /** Selects every identity. */
  static readonly wildcard = new EndpointSelector([]);

  static of(requirements: readonly Requirement[]): EndpointSelector {
    return requirements.length === 0 ? EndpointSelector.wildcard : new EndpointSelector([...requirements]);
  }

  /** matchLabels: every label must be present with its value. */
  static fromLabels(labels: readonly Label[]): EndpointSelector {
    return EndpointSelector.of(labels.map((l) => ({ source: l.source, key: l.key, operator: "In", values: [l.value] })));
  }

  get isWildcard(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: LabelSet): boolean {
    for (const r of this.requirements) if (!requirementMatches(r, labels)) return false;
    return true;
  }

  /** Whether some requirement is on exactly this source and key. */
  hasKey(source: string, key: string): boolean {
    return this.requirements.some((r) => r.source === source && r.key === key);
  }

  hasSource(source: string): boolean {
    return this.requirements.some((r) => r.source === source);
  }

  /**
   * Adds "source:key=value" as upstream's AddMatch: it replaces an equality on the same source
   * and key (matchLabels holds one value per key); other requirements on the key stay.
   */
  withMatch(source: string, key: string, value: string): EndpointSelector {
    const kept = this.requirements.filter((r) => !(r.source === source && r.key === key && r.operator === "In" && r.values.length === 1));
    return EndpointSelector.of([...kept, { source, key, operator: "In", values: [value] }]);
  }

  with(requirement: Requirement): EndpointSelector {
    return EndpointSelector.of([...this.requirements, requirement]);
  }

  toString(): string {
    return this.isWildcard ? "{}" : `{${this.requirements.map(describe).join(", ")}}`;
  }
}

/** A selector for "reserved:<name>", as upstream's entity and reserved selectors. */
export function reservedSelector(name: string): EndpointSelector {
  return EndpointSelector.fromLabels([{ source: LabelSource.reserved, key: name, value: "" }]);
}
