/**
 * The policy repository: the rules in force, with a revision that moves on every change (as
 * upstream's Repository). Rules arrive validated (parse.ts), so a change is all or nothing: the
 * new rule list is built aside and swapped in. Each rule's peer selectors are registered in the
 * selector cache while the rule is present.
 *
 * Rules are identified by their labels, as upstream: deleting by labels removes every rule whose
 * labels include all the given ones; adding with `replaceWithLabels` swaps out such rules in the
 * same revision (how a changed CiliumNetworkPolicy replaces its previous rules).
 */
import type { LabelSet } from "../identity/labels.ts";
import type { Ipv4Cidr } from "../net/ipv4.ts";
import { compileRule, type CompiledRule } from "./compile.ts";
import type { Rule } from "./rule.ts";
import type { SelectorCache } from "./selector-cache.ts";

export interface StoredRule {
  compiled: CompiledRule;
  /** The revision that added it. */
  revision: number;
}

export interface RepositoryChange {
  revision: number;
  added: number;
  removed: number;
}

export class Repository {
  private stored: readonly StoredRule[] = [];
  private current = 1;

  constructor(private readonly cache: SelectorCache) {}

  get revision(): number {
    return this.current;
  }

  get size(): number {
    return this.stored.length;
  }

  rules(): readonly StoredRule[] {
    return this.stored;
  }

  /** Rules whose endpointSelector selects an endpoint with these labels. */
  selecting(labels: LabelSet): StoredRule[] {
    return this.stored.filter((s) => s.compiled.rule.endpointSelector.matches(labels));
  }

  add(rules: readonly Rule[], options: { replaceWithLabels?: LabelSet } = {}): RepositoryChange {
    const replace = options.replaceWithLabels;
    const kept = replace ? this.stored.filter((s) => !s.compiled.rule.labels.containsAll(replace)) : this.stored;
    const revision = this.current + 1;
    const added = rules.map((rule) => ({ compiled: compileRule(rule), revision }));
    return this.swap([...kept, ...added], added.length);
  }

  /**
   * The rule list becomes `rules`, in one revision. A rule already in the repository (the very
   * object, as rules() hands them out) keeps its stored form, so resolvers can tell which rules
   * an endpoint selects really changed (compare StoredRule objects).
   */
  replaceAll(rules: readonly Rule[]): RepositoryChange {
    const present = new Map(this.stored.map((s) => [s.compiled.rule, s]));
    const revision = this.current + 1;
    let added = 0;
    const next = rules.map((rule) => {
      const kept = present.get(rule);
      if (kept) {
        present.delete(rule);
        return kept;
      }
      added++;
      return { compiled: compileRule(rule), revision };
    });
    return this.swap(next, added);
  }

  /** Removes the rules whose labels include all of `labels` (which must not be empty). */
  deleteByLabels(labels: LabelSet): RepositoryChange {
    if (labels.size === 0) throw new Error("deleting by labels needs at least one label; use deleteAll to remove every rule");
    return this.swap(
      this.stored.filter((s) => !s.compiled.rule.labels.containsAll(labels)),
      0,
    );
  }

  deleteAll(): RepositoryChange {
    return this.swap([], 0);
  }

  /** Distinct prefixes the rules name: each needs a CIDR identity in the ipcache. */
  cidrPrefixes(): Ipv4Cidr[] {
    const out = new Map<string, Ipv4Cidr>();
    for (const s of this.stored) for (const c of s.compiled.cidrs) out.set(`${c.network}/${c.prefixLength}`, c);
    return [...out.values()];
  }

  private swap(next: StoredRule[], added: number): RepositoryChange {
    const removed = this.stored.length + added - next.length;
    if (added === 0 && removed === 0) return { revision: this.current, added, removed };
    const previous = new Set(this.stored);
    const keep = new Set(next);
    // Register before releasing, so selectors shared by old and new rules stay cached.
    for (const s of next) if (!previous.has(s)) for (const sel of s.compiled.selectors) this.cache.addSelector(sel);
    for (const s of previous) if (!keep.has(s)) for (const sel of s.compiled.selectors) this.cache.releaseSelector(sel);
    this.stored = next;
    this.current++;
    return { revision: this.current, added, removed };
  }
}
