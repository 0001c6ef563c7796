/**
 * The policy manager: security identities and L3/L4 policy of the agent's endpoints, from the
 * pure engine (src/identity, src/policy) to the datapath (setEndpointPolicy, the ipcache).
 *
 * It holds the repository and the selector cache, fed with every identity the node knows: the
 * reserved ones, those of its endpoints (IdentityAllocator over the state backend) and one CIDR
 * identity per prefix the rules name (CidrIdentityAllocator), each CIDR also in the ipcache. On
 * every change it re-resolves the endpoints concerned and writes each one's whole state with
 * setEndpointPolicy, which writes only the difference and converges against what the kernel holds.
 * A repository change re-resolves only endpoints whose selecting rules changed; the others only
 * take the identities that entered or left (new CIDR identities), and are written only if that
 * changed their state.
 *
 * Order of writes, so that the kernel never allows more than the old or the new state:
 * - a new identity enters the selector cache and every endpoint's policy BEFORE an address maps
 *   to it in the ipcache; one going away leaves the ipcache first, the policies after;
 * - an endpoint's policy is written BEFORE the endpoint is applied (its first packet is judged);
 * - repository changes: new CIDR identities into the cache, the endpoints concerned re-resolved
 *   and written, then their ipcache entries; CIDR identities no longer named leave the ipcache, then
 *   the cache and the policies.
 *
 * The policy (rules and revision) is persisted before the repository changes (store.ts). A write
 * the datapath refuses (the map is full, a kernel error) leaves the endpoint failing closed; the
 * endpoint's outcome carries the error (the endpoint manager marks it not-ready and the agent
 * Degraded) and every later change retries it.
 *
 * Mutating methods are not serialized here: the endpoint manager calls the endpoint ones inside
 * its serial queue, and the repository ones (importPolicy, deletePolicy) queue on the same Serial.
 */
import { IdentityAllocator, IdentityLabelError } from "../../identity/allocator.ts";
import type { IdentityBackend } from "../../identity/backend.ts";
import { CidrIdentityAllocator, cidrIdentityLabels } from "../../identity/cidr.ts";
import { identityScope, LOCAL_IDENTITY_FLAG } from "../../identity/identity.ts";
import { LabelError, LabelSet, LabelSource } from "../../identity/labels.ts";
import { RESERVED_IDENTITIES } from "../../identity/reserved.ts";
import { formatCidr, parseCidr, type Ipv4Cidr } from "../../net/ipv4.ts";
import { formatIssue, PolicyValidationError } from "../../policy/errors.ts";
import { parsePolicyText } from "../../policy/parse.ts";
import { Repository } from "../../policy/repository.ts";
import { resolvePolicy, selectingRules, type EndpointPolicy, type ResolveOptions } from "../../policy/resolve.ts";
import type { Rule } from "../../policy/rule.ts";
import { SelectorCache } from "../../policy/selector-cache.ts";
import { tracePolicy, type TraceResult } from "../../policy/trace.ts";
import type { Logger } from "../../logging/index.ts";
import type { EndpointPolicyStatus } from "../api/types.ts";
import type { EnforcementMode } from "../config.ts";
import type { DatapathPolicy, EndpointDatapath, IpcacheEntry } from "../endpoint/datapath.ts";
import type { Serial } from "../endpoint/serial.ts";
import { AgentError, errorMessage } from "../errors.ts";
import { datapathPolicy } from "./datapath-policy.ts";
import { ruleToJson, type RuleJson } from "./rule-json.ts";
import { PolicyStore, rulesFromJson, rulesToJson } from "./store.ts";

export interface PolicyManagerOptions {
  datapath: EndpointDatapath;
  stateDir: string;
  enforcement: EnforcementMode;
  allowLocalhost: boolean;
  identityBackend: IdentityBackend & { collectUnreferenced?(): number[] };
  serial: Serial;
  log: Logger;
  /** In kvstore mode: where the cluster's policy is written (each change, before it applies here). */
  clusterPolicy?: ClusterPolicySink;
}

/** The cluster-wide store of the policy; throws AgentError ("conflict", "unavailable") to refuse a change. */
export interface ClusterPolicySink {
  publish(policy: { revision: number; rules: RuleJson[] }): Promise<void>;
}

/** What writing one endpoint's policy gave: its status, and the error when it failed. */
export interface PolicyOutcome {
  status: EndpointPolicyStatus;
}

export type PolicyOutcomeListener = (endpointId: number, outcome: PolicyOutcome) => void;

/** What an endpoint is to policy. */
export interface PolicyEndpoint {
  id: number;
  ipv4: string;
  labels: readonly string[];
  identity: number;
}

interface EndpointRecord {
  id: number;
  ipv4: string;
  labels: LabelSet;
  identity: number;
  policy: EndpointPolicy;
  /** Repository revision its policy is current for (moves on without a re-resolution when a change does not concern it). */
  revision: number;
  status: EndpointPolicyStatus;
  /** Canonical text of the policy last written successfully (a repository change that leaves it alone costs no write). */
  written?: string;
}

/** What the last repository change did to the endpoints (ids in ascending order). */
export interface RepositoryChangeEffect {
  revision: number;
  /** Endpoints whose selecting rules changed: resolved again. */
  resolved: number[];
  /** Endpoints whose policy was written to the datapath (resolved ones, and others that took new identities). */
  written: number[];
}

export interface ImportOptions {
  /** Replace the rules whose labels include those of an imported rule (upstream's --replace). */
  replace?: boolean;
  /** Replace the rules whose labels include all of these (upstream's --replace-with-labels). */
  replaceWithLabels?: string[];
}

export interface IdentityInfo {
  id: number;
  labels: string[];
}

export interface TraceRequest {
  from: LabelSet;
  to: LabelSet;
  protocol: number;
  port: number;
}

const ipcacheKey = (ipv4: string) => `${ipv4}/32`;

export class PolicyManager {
  private readonly cache = new SelectorCache();
  private readonly repository = new Repository(this.cache);
  private readonly allocator: IdentityAllocator;
  private readonly cidrAllocator = new CidrIdentityAllocator();
  private readonly store: PolicyStore;
  /** Every identity in the selector cache, with its labels. */
  private readonly known = new Map<number, LabelSet>();
  /** CIDR identities of the prefixes the rules name, by prefix. */
  private readonly cidrs = new Map<string, { cidr: Ipv4Cidr; id: number }>();
  /** CIDR identities a previous run left in the ipcache for prefixes no rule names any more. */
  private readonly leftoverCidrs = new Map<string, number>();
  private readonly records = new Map<number, EndpointRecord>();
  /** Identities each endpoint holds references to (two while its labels change). */
  private readonly held = new Map<number, number[]>();
  /** Identities of other nodes' endpoints (kvstore mode): references by number. */
  private readonly remote = new Map<number, number>();
  /** Agent revision = repository revision + base (the repository restarts at 1). */
  private base = 0;
  private listener: PolicyOutcomeListener = () => undefined;
  private effect: RepositoryChangeEffect = { revision: 0, resolved: [], written: [] };

  constructor(private readonly options: PolicyManagerOptions) {
    this.allocator = new IdentityAllocator(options.identityBackend);
    this.store = new PolicyStore(options.stateDir);
  }

  /** Where endpoint outcomes go (the endpoint manager). */
  onOutcome(listener: PolicyOutcomeListener): void {
    this.listener = listener;
  }

  get revision(): number {
    return this.repository.revision + this.base;
  }

  get enforcement(): EnforcementMode {
    return this.options.enforcement;
  }

  private get resolveOptions(): ResolveOptions {
    return { enforcement: this.options.enforcement, allowLocalhost: this.options.allowLocalhost };
  }

  /* ---- start and restore ------------------------------------------------------------- */

  /**
   * Before endpoints are restored: the reserved identities, the persisted rules (same revision),
   * and their CIDR identities with the numbers the kernel's ipcache still has for them.
   */
  async start(): Promise<void> {
    for (const identity of RESERVED_IDENTITIES) this.addToCache(identity.id, identity.labels);
    const persisted = this.store.load();
    if (persisted) {
      if (persisted.rules.length > 0) this.repository.add(persisted.rules);
      this.base = persisted.revision - this.repository.revision;
      this.options.log.info(`restored ${persisted.rules.length} policy rules at revision ${persisted.revision}`);
    }
    await this.restoreCidrIdentities();
  }

  /**
   * After endpoints are restored: frees identities nobody took again, drops leftover ipcache
   * entries (addresses and prefixes the agent no longer has an identity for) and CIDR identities
   * of a previous run that no rule names. `keepIpcache`: entries that belong to someone else
   * (other nodes' endpoints in kvstore mode).
   */
  async finishRestore(options: { keepIpcache?: (entry: IpcacheEntry) => boolean } = {}): Promise<void> {
    const freed = this.options.identityBackend.collectUnreferenced?.() ?? [];
    if (freed.length > 0) this.options.log.info(`freed ${freed.length} identities no endpoint uses any more: ${freed.join(", ")}`);
    const endpointAddresses = new Set([...this.records.values()].map((r) => ipcacheKey(r.ipv4)));
    for (const entry of await this.options.datapath.listIpcache()) {
      const scope = identityScope(entry.identity);
      if (scope !== "global" && scope !== "local") continue; // reserved: the datapath's own (host addresses)
      if (endpointAddresses.has(entry.cidr) || this.cidrs.get(entry.cidr)?.id === entry.identity) continue;
      if (this.leftoverCidrs.has(entry.cidr)) continue;
      if (options.keepIpcache?.(entry)) continue; // another node's endpoint (kvstore mode)
      await this.options.datapath.deleteIpcache(entry.cidr);
      this.options.log.info(`removed stale ipcache entry ${entry.cidr} (identity ${entry.identity})`);
    }
    if (this.leftoverCidrs.size > 0) {
      const ids = [...this.leftoverCidrs.values()];
      for (const prefix of this.leftoverCidrs.keys()) await this.options.datapath.deleteIpcache(prefix);
      this.leftoverCidrs.clear();
      for (const id of ids) this.removeFromCache(id);
      await this.refreshIdentities(ids);
    }
  }

  /**
   * CIDR identities are node-local and not persisted; the kernel's policy entries and ipcache
   * still carry the numbers of the previous run. Each prefix gets its old number back (the
   * allocator hands out numbers in order, so it is advanced to each), and new prefixes numbers
   * above every old one: no number ever means two prefixes. Old numbers of prefixes no rule
   * names stay known (same labels) until finishRestore has re-written every endpoint.
   */
  private async restoreCidrIdentities(): Promise<void> {
    const wanted = this.repository.cidrPrefixes();
    const wantedKeys = new Set(wanted.map(formatCidr));
    const old = new Map<string, number>();
    for (const entry of await this.options.datapath.listIpcache()) {
      if (identityScope(entry.identity) === "local") old.set(entry.cidr, entry.identity);
    }
    // A prefix no rule names, acquired and released to move the allocator on.
    const placeholder = ["0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2", "255.255.255.255/32"]
      .map((p) => parseCidr(p))
      .find((c) => !wantedKeys.has(formatCidr(c)))!;
    let next = 1;
    const advanceTo = (number: number) => {
      while (next < number) {
        next = (this.cidrAllocator.acquire(placeholder).identity.id & ~LOCAL_IDENTITY_FLAG) + 1;
        this.cidrAllocator.release(placeholder);
      }
    };
    const withOld = wanted.filter((c) => old.has(formatCidr(c))).sort((a, b) => old.get(formatCidr(a))! - old.get(formatCidr(b))!);
    for (const cidr of withOld) {
      advanceTo(old.get(formatCidr(cidr))! & ~LOCAL_IDENTITY_FLAG);
      const id = this.acquireCidr(cidr);
      next = (id & ~LOCAL_IDENTITY_FLAG) + 1;
      if (id !== old.get(formatCidr(cidr))) this.options.log.warn(`CIDR ${formatCidr(cidr)}: identity ${id}, the kernel had ${old.get(formatCidr(cidr))}`);
    }
    advanceTo(Math.max(0, ...[...old.values()].map((id) => id & ~LOCAL_IDENTITY_FLAG)) + 1);
    for (const cidr of wanted) if (!old.has(formatCidr(cidr))) this.acquireCidr(cidr);
    for (const [prefix, id] of old) {
      if (wantedKeys.has(prefix)) continue;
      this.leftoverCidrs.set(prefix, id);
      this.addToCache(id, cidrIdentityLabels(parseCidr(prefix)));
    }
    for (const { cidr, id } of this.cidrs.values()) await this.options.datapath.upsertIpcache(formatCidr(cidr), id);
  }

  /* ---- identities of endpoints ------------------------------------------------------- */

  /**
   * Takes an identity for an endpoint's labels. A new one enters the selector cache and the
   * policy of every endpoint before anything maps to it. Throws AgentError "invalid" for labels
   * that cannot form an identity.
   */
  async acquireIdentity(endpointId: number, labels: readonly string[]): Promise<number> {
    const set = parseEndpointLabels(labels);
    const reserved = set.labels.find((l) => l.source === LabelSource.reserved || l.source === LabelSource.cidr);
    if (reserved) throw new AgentError("invalid", `labels: ${reserved.source}:${reserved.key}: the ${reserved.source} source is for the agent's own identities, not an endpoint's`);
    let allocation;
    try {
      allocation = await this.allocator.allocate(set);
    } catch (error) {
      if (error instanceof IdentityLabelError) throw new AgentError("invalid", `labels: ${error.message}`);
      throw error;
    }
    const id = allocation.identity.id;
    this.held.set(endpointId, [...(this.held.get(endpointId) ?? []), id]);
    if (allocation.isNew) {
      this.addToCache(id, set);
      this.options.log.info(`identity ${id} allocated for ${set}`);
      await this.refreshIdentities([id]);
    }
    return id;
  }

  /** Drops the endpoint's identity references (but `keep`); an identity's last user takes it out of every policy. */
  async releaseIdentities(endpointId: number, keep?: number): Promise<void> {
    const held = this.held.get(endpointId) ?? [];
    const release = held.filter((id) => id !== keep);
    if (keep !== undefined && held.includes(keep)) this.held.set(endpointId, [keep]);
    else this.held.delete(endpointId);
    const gone: number[] = [];
    for (const id of release) {
      // Reserved identities (init, for an endpoint without labels) are not reference counted.
      if (identityScope(id) !== "global") continue;
      if (await this.allocator.release(id)) {
        this.options.log.info(`identity ${id} released`);
        if (this.remote.has(id)) continue; // still the identity of another node's endpoints
        this.removeFromCache(id);
        gone.push(id);
      }
    }
    if (gone.length > 0) await this.refreshIdentities(gone);
  }

  /**
   * An identity another node's endpoint has (kvstore mode), so rules select those addresses by
   * labels: it enters the selector cache and every policy before the caller maps an address to
   * it. Counted: one call per remote address.
   */
  addRemoteIdentity(id: number, labels: LabelSet): Promise<void> {
    return this.options.serial.run(async () => {
      this.remote.set(id, (this.remote.get(id) ?? 0) + 1);
      if (identityScope(id) !== "global" || this.known.has(id)) return;
      this.addToCache(id, labels);
      await this.refreshIdentities([id]);
    });
  }

  /** Drops one remote reference (after the address left the ipcache); the last takes the identity out unless local endpoints hold it. */
  releaseRemoteIdentity(id: number): Promise<void> {
    return this.options.serial.run(async () => {
      const references = (this.remote.get(id) ?? 0) - 1;
      if (references > 0) {
        this.remote.set(id, references);
        return;
      }
      this.remote.delete(id);
      if (identityScope(id) !== "global" || this.allocator.references(id) > 0 || !this.known.has(id)) return;
      this.removeFromCache(id);
      await this.refreshIdentities([id]);
    });
  }

  /* ---- endpoints ---------------------------------------------------------------------- */

  /**
   * Resolves and writes an endpoint's policy, then maps its address to its identity in the
   * ipcache. The outcome also goes to the listener. The endpoint's identity must be acquired.
   */
  async regenerateEndpoint(endpoint: PolicyEndpoint): Promise<PolicyOutcome> {
    const labels = parseEndpointLabels(endpoint.labels);
    const previous = this.records.get(endpoint.id);
    // A new record (creation, restore) always writes: the kernel may hold anything for the id.
    const record: EndpointRecord = {
      id: endpoint.id,
      ipv4: endpoint.ipv4,
      labels,
      identity: endpoint.identity,
      policy: resolvePolicy(this.repository, this.cache, labels, this.resolveOptions),
      revision: this.repository.revision,
      status: previous?.status ?? { "realized-revision": 0, "ingress-enforced": false, "egress-enforced": false },
    };
    this.records.set(endpoint.id, record);
    const { status } = await this.write(record);
    const outcome = { status };
    if (previous && previous.ipv4 !== endpoint.ipv4) await this.options.datapath.deleteIpcache(ipcacheKey(previous.ipv4));
    await this.options.datapath.upsertIpcache(ipcacheKey(endpoint.ipv4), endpoint.identity);
    return outcome;
  }

  /** Forgets an endpoint and unmaps its address (its policy entries go with the datapath's removeEndpoint). */
  async removeEndpoint(endpointId: number, ipv4: string): Promise<void> {
    this.records.delete(endpointId);
    await this.options.datapath.deleteIpcache(ipcacheKey(ipv4));
  }

  /** The endpoint's policy status, if it was regenerated. */
  endpointStatus(endpointId: number): EndpointPolicyStatus | undefined {
    const record = this.records.get(endpointId);
    return record && { ...record.status };
  }

  /* ---- the repository ---------------------------------------------------------------- */

  /** The rules in force, as JSON, with the revision. */
  policy(): { revision: number; policy: RuleJson[] } {
    return { revision: this.revision, policy: this.currentRules().map(ruleToJson) };
  }

  /** Which endpoints the last import or delete re-resolved and wrote. */
  get lastChangeEffect(): RepositoryChangeEffect {
    return { ...this.effect, resolved: [...this.effect.resolved], written: [...this.effect.written] };
  }

  get ruleCount(): number {
    return this.repository.size;
  }

  /**
   * Imports policy text (JSON or YAML: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy,
   * NetworkPolicy, bare rules). All or nothing: invalid input changes nothing and throws an
   * "invalid" AgentError listing every problem with its field.
   */
  importPolicy(text: string, options: ImportOptions = {}): Promise<{ revision: number }> {
    return this.options.serial.run(async () => {
      let rules: Rule[];
      try {
        rules = parsePolicyText(text);
      } catch (error) {
        if (error instanceof PolicyValidationError) throw validationError(error);
        throw error;
      }
      let replaceWith: LabelSet[] = [];
      if (options.replaceWithLabels?.length) replaceWith = [parseRuleLabels(options.replaceWithLabels, "replace-with-labels")];
      if (options.replace) {
        const unlabelled = rules.findIndex((r) => r.labels.size === 0);
        if (unlabelled >= 0) throw new AgentError("invalid", `replace: rule ${unlabelled} has no labels, so it would replace every rule; give the rules labels`);
        replaceWith = [...replaceWith, ...rules.map((r) => r.labels)];
      }
      const current = this.currentRules();
      const kept = current.filter((r) => !replaceWith.some((l) => r.labels.containsAll(l)));
      await this.change([...kept, ...rules]);
      this.options.log.info(
        `imported ${rules.length} policy rules${kept.length < current.length ? `, replacing ${current.length - kept.length}` : ""}: revision ${this.revision}, ${describeEffect(this.effect)}`,
      );
      return { revision: this.revision };
    });
  }

  /** Deletes the rules whose labels include all of `labels`, or every rule. */
  deletePolicy(target: { labels: string[] } | { all: true }): Promise<{ revision: number; deleted: number }> {
    return this.options.serial.run(async () => {
      const current = this.currentRules();
      let next: Rule[];
      if ("all" in target) {
        next = [];
      } else {
        if (target.labels.length === 0) throw new AgentError("invalid", "labels: give at least one label, or delete every rule with ?all=true");
        const labels = parseRuleLabels(target.labels, "labels");
        next = current.filter((r) => !r.labels.containsAll(labels));
        if (next.length === current.length) throw new AgentError("not-found", `no policy rule has the labels ${labels}`);
      }
      const deleted = current.length - next.length;
      if (deleted > 0) await this.change(next);
      this.options.log.info(`deleted ${deleted} policy rules: revision ${this.revision}${deleted > 0 ? `, ${describeEffect(this.effect)}` : ""}`);
      return { revision: this.revision, deleted };
    });
  }

  /**
   * A revision of the cluster's policy (kvstore mode), written on this or another node: replaces
   * every rule. Persisted first, as any change. A revision this agent has already applied is a no-op.
   */
  applyClusterPolicy(policy: { revision: number; rules: RuleJson[] }): Promise<void> {
    return this.options.serial.run(async () => {
      if (policy.revision === this.revision && JSON.stringify(rulesToJson(this.currentRules())) === JSON.stringify(policy.rules)) return;
      let rules: Rule[];
      try {
        rules = rulesFromJson(policy.rules);
      } catch (error) {
        const problem = error instanceof PolicyValidationError ? error.issues.map(formatIssue).join("; ") : errorMessage(error);
        this.options.log.error(`the cluster's policy revision ${policy.revision} is invalid, keeping revision ${this.revision}: ${problem}`);
        return;
      }
      this.store.save(policy.revision, policy.rules);
      this.repository.add(rules, { replaceWithLabels: LabelSet.empty });
      this.base = policy.revision - this.repository.revision;
      await this.afterRepositoryChange();
      this.options.log.info(`applied the cluster's policy: ${rules.length} rules, revision ${policy.revision}`);
    });
  }

  /** The rules in force in their JSON form, with the revision (to seed an empty cluster store). */
  policyJson(): { revision: number; rules: RuleJson[] } {
    return { revision: this.revision, rules: rulesToJson(this.currentRules()) };
  }

  trace(request: TraceRequest): TraceResult {
    return tracePolicy(this.repository, request, this.resolveOptions);
  }

  /* ---- identities -------------------------------------------------------------------- */

  identities(): IdentityInfo[] {
    return [...this.known].sort(([a], [b]) => a - b).map(([id, labels]) => ({ id, labels: labels.toStrings() }));
  }

  identity(id: number): IdentityInfo | undefined {
    const labels = this.known.get(id);
    return labels && { id, labels: labels.toStrings() };
  }

  /* ---- internals ----------------------------------------------------------------------- */

  private currentRules(): Rule[] {
    return this.repository.rules().map((s) => s.compiled.rule);
  }

  /** Persists `rules` as the next revision, swaps them in, and brings the datapath along. */
  private async change(rules: Rule[]): Promise<void> {
    const json = rulesToJson(rules);
    await this.options.clusterPolicy?.publish({ revision: this.revision + 1, rules: json });
    this.store.save(this.revision + 1, json);
    // One revision; rules kept from the current list stay the same stored rules, which is how
    // afterRepositoryChange tells the endpoints concerned from the others.
    this.repository.replaceAll(rules);
    await this.afterRepositoryChange();
  }

  private async afterRepositoryChange(): Promise<void> {
    const wanted = new Map(this.repository.cidrPrefixes().map((c) => [formatCidr(c), c]));
    const added: number[] = [];
    for (const [prefix, cidr] of wanted) if (!this.cidrs.has(prefix)) added.push(this.acquireCidr(cidr));
    const effect: RepositoryChangeEffect = { revision: this.revision, resolved: [], written: [] };
    for (const record of this.records.values()) {
      const selecting = selectingRules(this.repository, record.labels, this.resolveOptions);
      record.revision = this.repository.revision;
      if (!record.policy.resolvedFrom(selecting)) {
        record.policy = resolvePolicy(this.repository, this.cache, record.labels, this.resolveOptions);
        effect.resolved.push(record.id);
        if ((await this.write(record)).wrote) effect.written.push(record.id);
      } else if (record.policy.updateIdentities(added).length > 0 || record.status.error !== undefined) {
        if ((await this.write(record)).wrote) effect.written.push(record.id);
      } else {
        this.realized(record);
      }
    }
    effect.resolved.sort((a, b) => a - b);
    effect.written.sort((a, b) => a - b);
    this.effect = effect;
    for (const id of added) {
      const entry = [...this.cidrs.values()].find((c) => c.id === id)!;
      await this.options.datapath.upsertIpcache(formatCidr(entry.cidr), id);
    }
    const gone: number[] = [];
    for (const [prefix, entry] of this.cidrs) {
      if (wanted.has(prefix)) continue;
      await this.options.datapath.deleteIpcache(prefix);
      this.cidrs.delete(prefix);
      if (this.cidrAllocator.release(entry.cidr)) {
        this.removeFromCache(entry.id);
        gone.push(entry.id);
      }
    }
    if (gone.length > 0) await this.refreshIdentities(gone);
  }

  /** One reference to a prefix's CIDR identity, into the selector cache (not yet the ipcache). */
  private acquireCidr(cidr: Ipv4Cidr): number {
    const { identity, isNew } = this.cidrAllocator.acquire(cidr);
    this.cidrs.set(formatCidr(cidr), { cidr, id: identity.id });
    if (isNew) this.addToCache(identity.id, identity.labels);
    return identity.id;
  }

  private addToCache(id: number, labels: LabelSet): void {
    this.cache.upsertIdentity(id, labels);
    this.known.set(id, labels);
  }

  private removeFromCache(id: number): void {
    this.cache.removeIdentity(id);
    this.known.delete(id);
  }

  /** After identities entered or left the cache: their entries in every endpoint's policy. */
  private async refreshIdentities(ids: number[]): Promise<void> {
    for (const record of this.records.values()) {
      const ops = record.policy.updateIdentities(ids);
      if (ops.length > 0 || record.status.error !== undefined) await this.write(record);
    }
  }

  /** A record whose written state is already its policy at its revision: the status says so. */
  private realized(record: EndpointRecord): void {
    const revision = record.revision + this.base;
    if (record.status["realized-revision"] === revision) return;
    record.status = { ...record.status, "realized-revision": revision };
    this.listener(record.id, { status: { ...record.status } });
  }

  /**
   * Writes a record's whole state (the datapath writes the difference against the kernel); a
   * state equal to the one last written needs no call. The outcome goes to the listener.
   */
  private async write(record: EndpointRecord): Promise<PolicyOutcome & { wrote: boolean }> {
    const desired = datapathPolicy(record.policy.state);
    const text = canonicalPolicy(desired);
    const status: EndpointPolicyStatus = {
      "realized-revision": record.status["realized-revision"],
      "ingress-enforced": desired.ingressEnforced,
      "egress-enforced": desired.egressEnforced,
    };
    let wrote = false;
    try {
      if (record.written !== text || record.status.error !== undefined) {
        wrote = true;
        record.written = undefined;
        await this.options.datapath.setEndpointPolicy(record.id, desired);
        record.written = text;
      }
      status["realized-revision"] = record.revision + this.base;
    } catch (error) {
      status.error = `its policy (${desired.entries.length} entries) could not be written, so it fails closed: ${errorMessage(error)}`;
      this.options.log.warn(`endpoint ${record.id}: ${status.error}`);
    }
    record.status = status;
    this.listener(record.id, { status: { ...status } });
    return { status: { ...status }, wrote };
  }
}

function describeEffect(effect: RepositoryChangeEffect): string {
  return `${effect.resolved.length} endpoints resolved again, ${effect.written.length} written`;
}

function canonicalPolicy(policy: DatapathPolicy): string {
  const entries = policy.entries.map((e) => `${e.direction}:${e.identity}:${e.protocol}:${e.port}/${e.prefixLength}:${e.deny ? "deny" : "allow"}`).sort();
  return `${policy.ingressEnforced}:${policy.egressEnforced}:${entries.join(",")}`;
}

/** An endpoint's labels ("source:key=value", as the endpoint manager keeps them). */
function parseEndpointLabels(labels: readonly string[]): LabelSet {
  try {
    return LabelSet.parse(labels);
  } catch (error) {
    if (error instanceof LabelError) throw new AgentError("invalid", `labels: ${error.message}`);
    throw error;
  }
}

/** Rule labels given to delete or replace rules; a label without source is "unspec", as in rules. */
function parseRuleLabels(labels: readonly string[], field: string): LabelSet {
  const parsed = [];
  for (const [i, text] of labels.entries()) {
    try {
      parsed.push(LabelSet.parse([text]).labels[0]!);
    } catch (error) {
      throw new AgentError("invalid", `${field}[${i}]: ${(error as Error).message}`);
    }
  }
  try {
    return LabelSet.of(parsed);
  } catch (error) {
    throw new AgentError("invalid", `${field}: ${(error as Error).message}`);
  }
}

/** An import refused: every problem, each naming its field ("spec.ingress[0].toPorts[0].ports[0].port: ..."). */
export class PolicyImportError extends AgentError {
  constructor(readonly issues: string[]) {
    super("invalid", `invalid policy: ${issues.length === 1 ? issues[0] : `${issues.length} problems: ${issues.join("; ")}`}`);
    this.name = "PolicyImportError";
  }
}

function validationError(error: PolicyValidationError): PolicyImportError {
  return new PolicyImportError(error.issues.map(formatIssue));
}

/** Trace labels: "source:key=value"; "cidr:<prefix>" stands for that prefix's CIDR identity. */
export function traceLabels(texts: readonly string[], field: string): LabelSet {
  let set: LabelSet;
  try {
    set = LabelSet.parse(texts);
  } catch (error) {
    throw new AgentError("invalid", `${field}: ${(error as Error).message}`);
  }
  const cidr = set.labels.find((l) => l.source === LabelSource.cidr);
  if (!cidr) return set;
  if (set.size > 1) throw new AgentError("invalid", `${field}: a cidr: label stands for a CIDR identity and cannot be combined with other labels`);
  try {
    return cidrIdentityLabels(parseCidr(cidr.key.includes("/") ? cidr.key : `${cidr.key}/32`));
  } catch (error) {
    throw new AgentError("invalid", `${field}: ${(error as Error).message}`);
  }
}
