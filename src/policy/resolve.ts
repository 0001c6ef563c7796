/**
 * Resolution: one endpoint's desired policy map state from the repository and the selector cache.
 *
 * Enforcement, per direction, as upstream's --enable-policy:
 *   default  enforced when some rule selecting the endpoint has default-deny in that direction
 *            (rule.defaultDeny: set by enableDefaultDeny, else on when the rule has sections in
 *            that direction; several rules: any one turns it on)
 *   always   enforced for every endpoint, even with no rule
 *   never    nothing enforced and deny rules ignored: the map allows everything
 * An unenforced direction gets an allow-all entry and keeps only its deny rules (allows would be
 * redundant). With `allowLocalhost` (upstream's --allow-localhost=always, what kubelet probes
 * need) an enforced ingress also allows the host identity on every port, unless denied.
 *
 * Entries come from the rules' sections: "all" peers give identity-0 entries; selector peers give
 * entries for each identity the selector cache says they select. See map-state.ts for how deny
 * and allow entries are settled. When identities appear or go away (selector cache updated),
 * `updateIdentities` recomputes only their entries, which is cheap: a new pod costs one pass over
 * the endpoint's sections, not a resolution.
 */
import type { LabelSet } from "../identity/labels.ts";
import { ReservedIdentity } from "../identity/reserved.ts";
import type { Contribution, KeyedPortPrefix } from "./compile.ts";
import { diffEntries, type MapOp } from "./diff.ts";
import {
  addPortVerdict,
  addToState,
  ANY_IDENTITY,
  policyKey,
  settleIdentity,
  settleWildcard,
  toEntries,
  type MapState,
  type PolicyEntry,
  type PortVerdicts,
} from "./map-state.ts";
import { ALL_PORTS, portPrefixKey } from "./ports.ts";
import type { Repository, StoredRule } from "./repository.ts";
import { DIRECTIONS, type Direction } from "./rule.ts";
import type { SelectorCache } from "./selector-cache.ts";

export type EnforcementMode = "default" | "always" | "never";
export const ENFORCEMENT_MODES: readonly EnforcementMode[] = ["default", "always", "never"];

export interface ResolveOptions {
  enforcement: EnforcementMode;
  /** Always allow ingress from the local host (identity 1) unless a deny rule matches. */
  allowLocalhost?: boolean;
}

export function directionEnforced(selecting: readonly StoredRule[], direction: Direction, mode: EnforcementMode): boolean {
  if (mode !== "default") return mode === "always";
  return selecting.some((s) => s.compiled.rule.defaultDeny[direction]);
}

/** The contributions that apply to an endpoint in one direction, after enforcement. */
export function directionContributions(selecting: readonly StoredRule[], direction: Direction, enforced: boolean): Contribution[] {
  return selecting.flatMap((s) => s.compiled.contributions.filter((c) => c.direction === direction && (enforced || c.deny)));
}

interface SelectedPorts {
  deny: boolean;
  selections: ReadonlySet<number>;
  ports: readonly KeyedPortPrefix[];
}

const ALL_PORTS_KEYED: KeyedPortPrefix = { ...ALL_PORTS, key: portPrefixKey(ALL_PORTS) };

class DirectionState {
  readonly wildcard: PortVerdicts;
  readonly byIdentity = new Map<number, PortVerdicts>();
  private readonly selected: SelectedPorts[] = [];

  constructor(
    readonly direction: Direction,
    readonly enforced: boolean,
    contributions: readonly Contribution[],
    cache: SelectorCache,
    allowLocalhost: boolean,
  ) {
    const raw: PortVerdicts = new Map();
    if (!enforced) addPortVerdict(raw, ALL_PORTS, false);
    for (const c of contributions) {
      if (c.peers === "all") for (const p of c.ports) addPortVerdict(raw, p, c.deny, p.key);
      else for (const selector of c.peers) this.selected.push({ deny: c.deny, selections: cache.selections(selector), ports: c.ports });
    }
    if (allowLocalhost && enforced && direction === "ingress") {
      this.selected.push({ deny: false, selections: new Set([ReservedIdentity.host]), ports: [ALL_PORTS_KEYED] });
    }
    this.wildcard = settleWildcard(raw);

    const rawById = new Map<number, PortVerdicts>();
    for (const s of this.selected) {
      for (const id of s.selections) {
        let verdicts = rawById.get(id);
        if (!verdicts) rawById.set(id, (verdicts = new Map()));
        for (const p of s.ports) addPortVerdict(verdicts, p, s.deny, p.key);
      }
    }
    for (const [id, verdicts] of rawById) this.store(id, settleIdentity(verdicts, this.wildcard));
  }

  /** Recomputes one identity from the current selections; returns its old and new entries. */
  refresh(id: number): { before: PolicyEntry[]; after: PolicyEntry[] } {
    const before = toEntries(id, this.direction, this.byIdentity.get(id) ?? new Map());
    const raw: PortVerdicts = new Map();
    for (const s of this.selected) if (s.selections.has(id)) for (const p of s.ports) addPortVerdict(raw, p, s.deny, p.key);
    const settled = settleIdentity(raw, this.wildcard);
    this.byIdentity.delete(id);
    this.store(id, settled);
    return { before, after: toEntries(id, this.direction, settled) };
  }

  addTo(state: Map<string, PolicyEntry>): void {
    addToState(state, ANY_IDENTITY, this.direction, this.wildcard);
    for (const [id, verdicts] of this.byIdentity) addToState(state, id, this.direction, verdicts);
  }

  private store(id: number, verdicts: PortVerdicts): void {
    if (verdicts.size > 0) this.byIdentity.set(id, verdicts);
  }
}

/** An endpoint's resolved policy: its map state, kept current as identities change. */
export class EndpointPolicy {
  /** Repository revision this was resolved at: resolve again when the repository moves on. */
  readonly revision: number;
  /**
   * The rules it was resolved from (those selecting the endpoint). While the repository's
   * selecting rules are the same objects, only identity changes can alter the state.
   */
  readonly rules: ReadonlySet<StoredRule>;
  private readonly directions: Record<Direction, DirectionState>;
  private readonly current = new Map<string, PolicyEntry>();

  constructor(revision: number, rules: readonly StoredRule[], directions: Record<Direction, DirectionState>) {
    this.revision = revision;
    this.rules = new Set(rules);
    this.directions = directions;
    for (const d of DIRECTIONS) directions[d].addTo(this.current);
  }

  /** Whether `selecting` (the repository's rules selecting the endpoint now) are the rules this was resolved from. */
  resolvedFrom(selecting: readonly StoredRule[]): boolean {
    if (selecting.length !== this.rules.size) return false;
    for (const rule of selecting) if (!this.rules.has(rule)) return false;
    return true;
  }

  enforced(direction: Direction): boolean {
    return this.directions[direction].enforced;
  }

  get state(): MapState {
    return this.current;
  }

  /**
   * After the selector cache took identity changes (upsertIdentity/removeIdentity), recomputes
   * those identities' entries. Returns the map operations, in the safe order of diff.ts.
   */
  updateIdentities(ids: Iterable<number>): MapOp[] {
    const before: PolicyEntry[] = [];
    const after: PolicyEntry[] = [];
    for (const id of new Set(ids)) {
      if (id === ANY_IDENTITY) continue;
      for (const d of DIRECTIONS) {
        const change = this.directions[d].refresh(id);
        before.push(...change.before);
        after.push(...change.after);
      }
    }
    const ops = diffEntries(before, after);
    for (const op of ops) {
      if (op.op === "delete") this.current.delete(policyKey(op.entry));
      else this.current.set(policyKey(op.entry), op.entry);
    }
    return ops;
  }
}

/** The rules that apply to an endpoint: those selecting it ("never": none, not even deny rules). */
export function selectingRules(repository: Repository, endpointLabels: LabelSet, options: ResolveOptions): StoredRule[] {
  return options.enforcement === "never" ? [] : repository.selecting(endpointLabels);
}

export function resolvePolicy(repository: Repository, cache: SelectorCache, endpointLabels: LabelSet, options: ResolveOptions): EndpointPolicy {
  // "never": both directions get allow-all.
  const selecting = selectingRules(repository, endpointLabels, options);
  const state = (direction: Direction) => {
    const enforced = directionEnforced(selecting, direction, options.enforcement);
    return new DirectionState(direction, enforced, directionContributions(selecting, direction, enforced), cache, options.allowLocalhost ?? false);
  };
  return new EndpointPolicy(repository.revision, selecting, { ingress: state("ingress"), egress: state("egress") });
}
