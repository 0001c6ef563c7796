/**
 * The selector cache: every distinct peer selector of the policy repository, with the set of
 * identities it selects right now. Resolution reads selections from here instead of matching
 * selectors against every identity, and an identity that appears, changes or goes away is
 * matched only against the selectors that could select it, which is what makes a new pod cheap
 * (upstream's SelectorCache).
 *
 * Two indexes keep both directions cheap. Identities are indexed by their labels' "postings",
 * key=value and key, whatever the source (a requirement on "k8s:app" uses the postings of "app",
 * a superset; the full match decides). Each selector is anchored on one positive requirement
 * (In or Exists), the one with the fewest identities when it was added: every identity it
 * selects carries one of the anchor's postings. So a selector's first
 * selections are computed from the anchor's identities only, and a new identity is matched only
 * against the selectors anchored on its postings, plus the few selectors without a positive
 * requirement (only NotIn / DoesNotExist), which are always checked.
 */
import type { LabelSet } from "../identity/labels.ts";
import type { EndpointSelector, Requirement } from "./selector.ts";

/** One selector whose selections changed, with the identities that entered and left it. */
export interface SelectionChange {
  selector: EndpointSelector;
  added: number[];
  removed: number[];
}

interface CachedSelector {
  selector: EndpointSelector;
  selections: Set<number>;
  users: number;
  /** Postings one of which every selected identity carries; empty: none (checked always). */
  anchors: string[];
}

// Keys never contain "=", so "key=value" and "key" postings cannot collide.
const valuePosting = (key: string, value: string) => `${key}=${value}`;

function postingsOf(labels: LabelSet): string[] {
  const out: string[] = [];
  for (const l of labels.labels) out.push(valuePosting(l.key, l.value), l.key);
  return out;
}

function requirementPostings(r: Requirement): string[] | undefined {
  if (r.operator === "In") return r.values.map((v) => valuePosting(r.key, v));
  if (r.operator === "Exists") return [r.key];
  return undefined;
}

const NO_IDENTITIES: ReadonlySet<number> = new Set();

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

function deleteFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

export class SelectorCache {
  private readonly identities = new Map<number, LabelSet>();
  private readonly identitiesByPosting = new Map<string, Set<number>>();
  private readonly selectors = new Map<string, CachedSelector>();
  private readonly selectorsByAnchor = new Map<string, Set<CachedSelector>>();
  private readonly unanchored = new Set<CachedSelector>();

  get selectorCount(): number {
    return this.selectors.size;
  }

  identityLabels(id: number): LabelSet | undefined {
    return this.identities.get(id);
  }

  /** Adds an identity or changes its labels; returns the selectors whose selections changed. */
  upsertIdentity(id: number, labels: LabelSet): SelectionChange[] {
    const old = this.identities.get(id);
    if (old?.equals(labels)) return [];
    const oldPostings = old ? postingsOf(old) : [];
    for (const p of oldPostings) deleteFrom(this.identitiesByPosting, p, id);
    const postings = postingsOf(labels);
    for (const p of postings) addTo(this.identitiesByPosting, p, id);
    this.identities.set(id, labels);

    const changes: SelectionChange[] = [];
    for (const cached of this.candidates([...oldPostings, ...postings])) {
      const was = cached.selections.has(id);
      const now = cached.selector.matches(labels);
      if (was === now) continue;
      if (now) cached.selections.add(id);
      else cached.selections.delete(id);
      changes.push({ selector: cached.selector, added: now ? [id] : [], removed: now ? [] : [id] });
    }
    return changes;
  }

  removeIdentity(id: number): SelectionChange[] {
    const labels = this.identities.get(id);
    if (!labels) return [];
    const postings = postingsOf(labels);
    for (const p of postings) deleteFrom(this.identitiesByPosting, p, id);
    this.identities.delete(id);
    const changes: SelectionChange[] = [];
    for (const cached of this.candidates(postings)) {
      if (cached.selections.delete(id)) changes.push({ selector: cached.selector, added: [], removed: [id] });
    }
    return changes;
  }

  /** Registers one user of the selector; the first computes its selections. */
  addSelector(selector: EndpointSelector): ReadonlySet<number> {
    const existing = this.selectors.get(selector.key);
    if (existing) {
      existing.users++;
      return existing.selections;
    }
    const anchors = this.anchorOf(selector.requirements);
    const selections = new Set<number>();
    const candidates = anchors.length === 0 ? this.identities.keys() : anchors.flatMap((a) => [...(this.identitiesByPosting.get(a) ?? [])]);
    for (const id of candidates) if (selector.matches(this.identities.get(id)!)) selections.add(id);
    const cached = { selector, selections, users: 1, anchors };
    this.selectors.set(selector.key, cached);
    if (anchors.length === 0) this.unanchored.add(cached);
    for (const a of anchors) addTo(this.selectorsByAnchor, a, cached);
    return selections;
  }

  /** Drops one user; the selector leaves the cache with its last user. */
  releaseSelector(selector: EndpointSelector): void {
    const cached = this.selectors.get(selector.key);
    if (!cached || --cached.users > 0) return;
    this.selectors.delete(selector.key);
    this.unanchored.delete(cached);
    for (const a of cached.anchors) deleteFrom(this.selectorsByAnchor, a, cached);
  }

  /** The identities a cached selector selects (empty for one not in the cache). */
  selections(selector: EndpointSelector): ReadonlySet<number> {
    return this.selectors.get(selector.key)?.selections ?? NO_IDENTITIES;
  }

  has(selector: EndpointSelector): boolean {
    return this.selectors.has(selector.key);
  }

  /** The positive requirement with the fewest identities now, as postings; [] if there is none. */
  private anchorOf(requirements: readonly Requirement[]): string[] {
    let best: string[] = [];
    let bestSize = Infinity;
    for (const r of requirements) {
      const postings = requirementPostings(r);
      if (!postings) continue;
      const size = postings.reduce((n, p) => n + (this.identitiesByPosting.get(p)?.size ?? 0), 0);
      if (size < bestSize) {
        best = postings;
        bestSize = size;
      }
    }
    return best;
  }

  /** Selectors that may select an identity with one of these postings. */
  private candidates(postings: string[]): Set<CachedSelector> {
    const out = new Set(this.unanchored);
    for (const p of postings) for (const cached of this.selectorsByAnchor.get(p) ?? []) out.add(cached);
    return out;
  }
}
