/**
 * Security labels, upstream's "source:key=value", and the canonical label set an identity is made
 * of. Pure.
 *
 * Two parsers, as upstream (pkg/labels): an endpoint's label without a source is "unspec:"; a
 * selector key without a source is "any:", which matches the key from every source, while a key
 * with a source ("k8s:app") matches only labels of that source. A label without "=" has the empty
 * value ("reserved:host").
 */

export interface Label {
  source: string;
  key: string;
  /** "" when the label has no value (reserved labels). */
  value: string;
}

export const LabelSource = {
  k8s: "k8s",
  reserved: "reserved",
  container: "container",
  cidr: "cidr",
  unspec: "unspec",
  /** Only in selectors: matches every source. */
  any: "any",
} as const;

/** The pod's namespace, on every pod (k8s source). */
export const POD_NAMESPACE_KEY = "io.kubernetes.pod.namespace";
/** Namespace labels are copied onto pods under this prefix, so selectors can match them. */
export const NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels.";
/** Labels upstream puts on rules derived from Kubernetes objects (used to delete/replace them). */
export const PolicyLabelKey = {
  derivedFrom: "io.cilium.k8s.policy.derived-from",
  name: "io.cilium.k8s.policy.name",
  namespace: "io.cilium.k8s.policy.namespace",
  uid: "io.cilium.k8s.policy.uid",
} as const;

const SOURCE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Labels end up in canonical strings joined by NUL and in log lines: no whitespace or controls.
const TEXT = /^[^\s\p{Cc}]*$/u;

export class LabelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LabelError";
  }
}

function split(text: string, defaultSource: string): Label {
  const colon = text.indexOf(":");
  const equals = text.indexOf("=");
  // A colon before any "=" ends the source; one after it belongs to the value.
  const hasSource = colon >= 0 && (equals < 0 || colon < equals);
  const source = hasSource ? text.slice(0, colon) : defaultSource;
  const rest = hasSource ? text.slice(colon + 1) : text;
  const eq = rest.indexOf("=");
  const key = eq < 0 ? rest : rest.slice(0, eq);
  const value = eq < 0 ? "" : rest.slice(eq + 1);
  return { source, key, value };
}

function check(label: Label, text: string): Label {
  if (!SOURCE.test(label.source)) throw new LabelError(`label ${JSON.stringify(text)}: source "${label.source}" must be letters, digits, '.', '_' or '-'`);
  if (label.key === "") throw new LabelError(`label ${JSON.stringify(text)}: the key is empty`);
  if (!TEXT.test(label.key)) throw new LabelError(`label ${JSON.stringify(text)}: the key must not contain whitespace or control characters`);
  if (!TEXT.test(label.value) || label.value.includes("=")) {
    throw new LabelError(`label ${JSON.stringify(text)}: the value must not contain '=', whitespace or control characters`);
  }
  return label;
}

/** An endpoint or rule label: "source:key=value", "key=value" (source "unspec"), "reserved:host". */
export function parseLabel(text: string, defaultSource: string = LabelSource.unspec): Label {
  return check(split(text, defaultSource), text);
}

/** A selector key ("k8s:app", "app" = any source, "reserved:host"): source and key, no value. */
export function parseSelectorKey(text: string): { source: string; key: string } {
  if (text.includes("=")) throw new LabelError(`selector key ${JSON.stringify(text)} must not contain '='`);
  const { source, key } = check(split(text, LabelSource.any), text);
  return { source, key };
}

export function formatLabel(label: Label): string {
  return `${label.source}:${label.key}${label.value === "" ? "" : `=${label.value}`}`;
}

/** "source:key" without the value: what a label set holds at most once. */
function labelId(label: Label): string {
  return `${label.source}:${label.key}`;
}

/**
 * An immutable, sorted label set without repeats: what an identity is allocated for. Two sets
 * with the same labels have the same `key`, whatever order they were given in.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  /** Canonical text: the formatted labels, sorted, joined by NUL. Equal sets, equal keys. */
  readonly key: string;
  private readonly byKey = new Map<string, Label[]>();

  private constructor(labels: Label[]) {
    this.labels = labels;
    this.key = labels.map(formatLabel).join("\0");
    for (const label of labels) {
      const list = this.byKey.get(label.key);
      if (list) list.push(label);
      else this.byKey.set(label.key, [label]);
    }
  }

  static readonly empty = new LabelSet([]);

  /** Throws when one source:key is given twice with different values. */
  static of(labels: Iterable<Label>): LabelSet {
    const byId = new Map<string, Label>();
    for (const label of labels) {
      const id = labelId(label);
      const seen = byId.get(id);
      if (seen && seen.value !== label.value) {
        throw new LabelError(`labels: ${id} is given twice, with values "${seen.value}" and "${label.value}"`);
      }
      byId.set(id, { source: label.source, key: label.key, value: label.value });
    }
    const sorted = [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, l]) => l);
    return new LabelSet(sorted);
  }

  /** From label texts; a text without a source gets `defaultSource` ("unspec"). */
  static parse(texts: Iterable<string>, defaultSource: string = LabelSource.unspec): LabelSet {
    return LabelSet.of([...texts].map((t) => parseLabel(t, defaultSource)));
  }

  get size(): number {
    return this.labels.length;
  }

  /** The labels with this key; from every source when `source` is "any". */
  withKey(key: string, source: string = LabelSource.any): readonly Label[] {
    const list = this.byKey.get(key);
    if (!list) return [];
    return source === LabelSource.any ? list : list.filter((l) => l.source === source);
  }

  has(label: Label): boolean {
    return this.withKey(label.key, label.source).some((l) => l.value === label.value);
  }

  /** Every label of `other` is in this set (upstream's LabelArray.Contains, for rule labels). */
  containsAll(other: LabelSet): boolean {
    return other.labels.every((l) => this.has(l));
  }

  equals(other: LabelSet): boolean {
    return this.key === other.key;
  }

  toStrings(): string[] {
    return this.labels.map(formatLabel);
  }

  toString(): string {
    return this.toStrings().join(",");
  }
}
