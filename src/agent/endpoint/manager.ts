/**
 * The endpoint manager: the agent's endpoints, their ids, states and persistence, and the
 * datapath calls that make them real. An endpoint goes waiting-for-identity -> regenerating ->
 * ready: its labels get a security identity, its policy is resolved and written (before the
 * endpoint is applied, so a pod that policy selects fails closed from its first packet), its
 * address is mapped to its identity, and the datapath applies it. It is not-ready while its
 * policy cannot be written (the datapath keeps it failing closed), and disconnecting while it is
 * being removed; it is persisted from its creation's end on (a creation a crash interrupted
 * failed its request, and restore drops its datapath state), so a restarted agent re-applies it
 * (with the same identity: the identity backend is persisted) or finishes removing it.
 */
import type { Endpoint, EndpointChangeRequest, EndpointLabelsChange, EndpointState } from "../api/types.ts";
import { AgentError, errorMessage } from "../errors.ts";
import type { HealthProblems } from "../health.ts";
import type { Ipam } from "../ipam/index.ts";
import type { Logger } from "../../logging/index.ts";
import type { PolicyManager, PolicyOutcome } from "../policy/manager.ts";
import { EndpointGoneError, type ApplyOptions, type EndpointDatapath } from "./datapath.ts";
import { EndpointIds } from "./ids.ts";
import { changeLabels, endpointLabels } from "./labels.ts";
import { attachmentOwner, formatEndpointReference, parseEndpointReference, type EndpointReference } from "./reference.ts";
import { Serial } from "./serial.ts";
import type { EndpointStore } from "./store.ts";

export interface EndpointManagerDeps {
  ipam: Ipam;
  datapath: EndpointDatapath;
  store: EndpointStore;
  health: HealthProblems;
  log: Logger;
  /** Identities and policy; without it endpoints get neither (tests of the bare lifecycle). */
  policy?: PolicyManager;
  /** The queue endpoint and policy changes share (default: the manager's own). */
  serial?: Serial;
}

/** What a deletion did: the endpoint removed (if there was one) and the addresses released. */
export interface Deletion {
  endpoint?: Endpoint;
  released: string[];
}

/** An endpoint was created, relabelled, restored (removed: false) or deleted (removed: true). */
export type EndpointChangeListener = (endpoint: Endpoint, removed: boolean) => void;

export class EndpointManager {
  private readonly endpoints = new Map<number, Endpoint>();
  private readonly changeListeners = new Set<EndpointChangeListener>();
  /** Restored endpoints that got no identity (the kvstore was unreachable): retryIdentities takes them up. */
  private readonly withoutIdentity = new Set<number>();
  private readonly ids = new EndpointIds();
  private readonly serial: Serial;
  private readonly deps: EndpointManagerDeps;

  constructor(deps: EndpointManagerDeps) {
    this.deps = deps;
    this.serial = deps.serial ?? new Serial();
    deps.policy?.onOutcome((id, outcome) => this.recordPolicyOutcome(id, outcome));
  }

  /** Tells `listener` about endpoint changes (Hubble's address cache follows them); returns the unsubscribe. */
  onChange(listener: EndpointChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Every endpoint, by id. */
  list(): Endpoint[] {
    return [...this.endpoints.values()].sort((a, b) => a.id - b.id).map(copy);
  }

  /** The endpoint a path names (numeric id or prefix form); throws not-found. */
  get(reference: string): Endpoint {
    const endpoint = this.find(parseEndpointReference(reference));
    if (!endpoint) throw new AgentError("not-found", `endpoint ${reference} not found`);
    return copy(endpoint);
  }

  /** The endpoint using an address, if any. */
  usingAddress(address: string): Endpoint | undefined {
    const endpoint = this.find({ kind: "ipv4", address });
    return endpoint && copy(endpoint);
  }

  /** Ids by state, for status. */
  idsByState(): Partial<Record<EndpointState, number[]>> {
    const byState: Partial<Record<EndpointState, number[]>> = {};
    for (const endpoint of this.list()) (byState[endpoint.state] ??= []).push(endpoint.id);
    return byState;
  }

  /**
   * Creates an endpoint for PUT /v1/endpoint/{reference}: a numeric id the client chose (0: the
   * agent chooses) or cni-attachment-id:<container id>:<ifname>. The address must be allocated
   * to this very attachment. If the datapath cannot apply it, nothing of it remains.
   */
  create(reference: string, request: EndpointChangeRequest): Promise<Endpoint> {
    return this.serial.run(async () => {
      const wanted = this.requestedId(parseEndpointReference(reference), request);
      const owner = attachmentOwner(request["container-id"], request["container-interface-name"]);
      const attachment = `cni-attachment-id:${owner}`;
      const existing = this.find({ kind: "cni-attachment-id", containerId: request["container-id"], ifname: request["container-interface-name"] });
      if (existing) throw new AgentError("conflict", `endpoint ${existing.id} already exists for ${attachment}`);
      if (wanted !== undefined && this.endpoints.has(wanted)) throw new AgentError("conflict", `endpoint ID ${wanted} is already in use`);
      this.checkAddressOwner(request.addressing.ipv4, owner);
      const labels = endpointLabels(request.labels ?? [], request["k8s-namespace"]);

      const id = wanted ?? this.ids.next();
      this.ids.take(id);
      const { policy } = this.deps;
      const endpoint: Endpoint = {
        ...structuredClone(request),
        id,
        state: policy ? "waiting-for-identity" : "regenerating",
        labels,
        "created-at": new Date().toISOString(),
      };
      // Persisted once, when applied and before the answer: a crash before that fails the request,
      // and restore removes the datapath state of endpoints it has no file for.
      this.endpoints.set(id, endpoint);
      let step = "the datapath could not apply it";
      try {
        let options: ApplyOptions = {};
        if (policy) {
          step = "no identity for its labels";
          endpoint.identity = await policy.acquireIdentity(id, labels);
          endpoint.state = "regenerating";
          step = "its policy could not be resolved";
          options = enforcementOf(await policy.regenerateEndpoint(policyEndpoint(endpoint)));
          step = "the datapath could not apply it";
        }
        await this.deps.datapath.applyEndpoint(copy(endpoint), options);
        endpoint.state = endpoint.policy?.error ? "not-ready" : "ready";
        this.deps.store.save(endpoint);
      } catch (error) {
        await this.rollBackCreation(endpoint);
        const kind = error instanceof AgentError && error.kind === "invalid" ? "invalid" : "datapath";
        throw new AgentError(kind, `endpoint ${id} (${attachment}): ${step}: ${errorMessage(error)}`, { cause: error });
      }
      this.deps.log.info(`endpoint ${id} created for ${attachment}`, { endpointID: id, ipv4: endpoint.addressing.ipv4, identity: endpoint.identity });
      this.changed(endpoint, false);
      return copy(endpoint);
    });
  }

  /**
   * Deletes an endpoint: its datapath state, every address of its attachment, its state file.
   * By cni-attachment-id the attachment's addresses are released even when there is no
   * endpoint: that is how the CNI plugin's DEL cleans up after an agent crash in the middle of
   * ADD. Throws not-found only when there was nothing at all to remove.
   */
  delete(reference: string): Promise<Deletion> {
    return this.serial.run(async () => {
      const parsed = parseEndpointReference(reference);
      const endpoint = this.find(parsed);
      if (endpoint) return { endpoint: copy(endpoint), released: await this.remove(endpoint) };
      if (parsed.kind === "cni-attachment-id") {
        const address = this.deps.ipam.releaseOwner(attachmentOwner(parsed.containerId, parsed.ifname));
        if (address !== undefined) {
          this.deps.log.info(`released ${address} of ${reference}, which had no endpoint`);
          return { released: [address] };
        }
      }
      throw new AgentError("not-found", `endpoint ${reference} not found`);
    });
  }

  /**
   * PATCH /v1/endpoint/{id}/labels: the endpoint's labels change, and with them its identity and
   * policy. The new identity is in every policy before the endpoint's address maps to it; the
   * old one is released once the endpoint carries the new one.
   */
  updateLabels(reference: string, change: EndpointLabelsChange): Promise<Endpoint> {
    return this.serial.run(async () => {
      const endpoint = this.find(parseEndpointReference(reference));
      if (!endpoint) throw new AgentError("not-found", `endpoint ${reference} not found`);
      if (endpoint.state === "disconnecting") throw new AgentError("conflict", `${subjectOf(endpoint)} is being deleted`);
      const labels = changeLabels(endpoint.labels, change, endpoint["k8s-namespace"]);
      if (labels.join("\0") === endpoint.labels.join("\0")) return copy(endpoint);
      const { policy, log } = this.deps;
      if (!policy) {
        endpoint.labels = labels;
        this.deps.store.save(endpoint);
        return copy(endpoint);
      }
      const previous = endpoint.identity;
      const identity = await policy.acquireIdentity(endpoint.id, labels);
      endpoint.labels = labels;
      endpoint.identity = identity;
      endpoint.state = "regenerating";
      this.deps.store.save(endpoint);
      try {
        const options = enforcementOf(await policy.regenerateEndpoint(policyEndpoint(endpoint)));
        await this.deps.datapath.applyEndpoint(copy(endpoint), options);
        endpoint.state = endpoint.policy?.error ? "not-ready" : "ready";
        this.deps.health.clear(subjectOf(endpoint));
      } catch (error) {
        endpoint.state = "not-ready";
        this.deps.health.set(subjectOf(endpoint), `its new labels could not be applied: ${errorMessage(error)}`);
        log.warn(`${subjectOf(endpoint)}: its new labels could not be applied: ${errorMessage(error)}`);
      }
      this.deps.store.save(endpoint);
      await policy.releaseIdentities(endpoint.id, identity);
      log.info(`${subjectOf(endpoint)}: labels changed, identity ${previous ?? "none"} -> ${identity}`, { endpointID: endpoint.id });
      this.changed(endpoint, false);
      return copy(endpoint);
    });
  }

  /**
   * An endpoint's policy was (re)written: its status, and not-ready (Degraded) while its policy
   * cannot be written. States in the middle of a change are the change's to settle.
   */
  private recordPolicyOutcome(id: number, outcome: PolicyOutcome): void {
    const endpoint = this.endpoints.get(id);
    if (!endpoint) return;
    endpoint.policy = outcome.status;
    const subject = `${subjectOf(endpoint)} policy`;
    if (outcome.status.error) this.deps.health.set(subject, outcome.status.error);
    else this.deps.health.clear(subject);
    if (endpoint.state !== "ready" && endpoint.state !== "not-ready") return;
    const state: EndpointState = outcome.status.error ? "not-ready" : this.deps.health.has(subjectOf(endpoint)) ? "not-ready" : "ready";
    if (state === endpoint.state) return;
    endpoint.state = state;
    try {
      this.deps.store.save(endpoint);
    } catch (error) {
      this.deps.log.warn(`${subjectOf(endpoint)}: cannot persist its state ${state}: ${errorMessage(error)}`);
    }
  }

  /**
   * Re-adopts the persisted endpoints after a restart: re-applies each one, drops those whose
   * pod is gone (releasing their addresses), finishes deletions a crash interrupted, then lets
   * the datapath drop whatever it still has for endpoints nobody knows.
   */
  restore(): Promise<void> {
    return this.serial.run(async () => {
      const { health, log, store } = this.deps;
      const { endpoints, unreadable } = store.load();
      for (const { path, problem } of unreadable) {
        health.set(path, `cannot restore this endpoint: ${problem}`);
        log.warn(`cannot restore the endpoint in ${path}: ${problem}`);
      }
      for (const endpoint of endpoints) {
        this.ids.take(endpoint.id);
        this.endpoints.set(endpoint.id, endpoint);
      }
      // Every identity first, so each endpoint's policy is resolved once, with all of them.
      const adopted: Endpoint[] = [];
      for (const endpoint of endpoints) if (await this.adopt(endpoint)) adopted.push(endpoint);
      for (const endpoint of adopted) await this.restoreOne(endpoint);
      const live = this.list();
      for (const removed of await this.deps.datapath.removeStaleEndpoints(live)) log.info(`removed stale datapath state: ${removed}`);
      log.info(`restored ${live.length} endpoints`);
      for (const endpoint of live) this.changed(endpoint, false);
    });
  }

  /**
   * Restore, first step: finishes an interrupted deletion, checks the address is still the
   * endpoint's, takes its identity again. Answers whether the endpoint is to be re-applied.
   */
  private async adopt(endpoint: Endpoint): Promise<boolean> {
    const { health, ipam, log, policy } = this.deps;
    const subject = subjectOf(endpoint);
    if (endpoint.state === "disconnecting") {
      await this.remove(endpoint).then(
        () => log.info(`${subject}: finished its interrupted deletion`),
        (error) => health.set(subject, `cannot finish its deletion: ${errorMessage(error)}`),
      );
      return false;
    }
    try {
      // The address must still be this attachment's: the IPAM file is written before the endpoint's.
      ipam.claim(endpoint.addressing.ipv4, ownerOf(endpoint));
    } catch (error) {
      log.warn(`${subject}: dropped: its address cannot be restored: ${errorMessage(error)}`);
      await this.discard(endpoint);
      return false;
    }
    if (!policy) return true;
    try {
      const previous = endpoint.identity;
      endpoint.identity = await policy.acquireIdentity(endpoint.id, endpoint.labels);
      if (previous !== undefined && previous !== endpoint.identity) log.warn(`${subject}: identity ${previous} became ${endpoint.identity}`);
      return true;
    } catch (error) {
      endpoint.state = "not-ready";
      this.withoutIdentity.add(endpoint.id);
      health.set(subject, `no identity for its labels: ${errorMessage(error)}`);
      log.warn(`${subject}: no identity for its labels: ${errorMessage(error)}`);
      return false;
    }
  }

  /**
   * Restored endpoints that got no identity (their kernel state still works with the old one):
   * the identity, the policy and the datapath again, e.g. once the kvstore is reachable.
   */
  retryIdentities(): Promise<void> {
    return this.serial.run(async () => {
      const { health, log, policy } = this.deps;
      for (const id of [...this.withoutIdentity]) {
        const endpoint = this.endpoints.get(id);
        if (!endpoint || !policy || endpoint.state !== "not-ready") {
          this.withoutIdentity.delete(id);
          continue;
        }
        try {
          endpoint.identity = await policy.acquireIdentity(endpoint.id, endpoint.labels);
        } catch (error) {
          log.warn(`${subjectOf(endpoint)}: still no identity for its labels: ${errorMessage(error)}`);
          continue;
        }
        this.withoutIdentity.delete(id);
        health.clear(subjectOf(endpoint));
        await this.restoreOne(endpoint);
      }
    });
  }

  /** Restore, second step: its policy, then the datapath. */
  private async restoreOne(endpoint: Endpoint): Promise<void> {
    const { health, log, policy } = this.deps;
    const subject = subjectOf(endpoint);
    endpoint.state = "regenerating";
    try {
      const options = policy ? enforcementOf(await policy.regenerateEndpoint(policyEndpoint(endpoint))) : {};
      await this.deps.datapath.applyEndpoint(copy(endpoint), options);
      endpoint.state = endpoint.policy?.error ? "not-ready" : "ready";
      this.deps.store.save(endpoint);
    } catch (error) {
      if (error instanceof EndpointGoneError) {
        log.info(`${subject}: dropped: ${error.message}`);
        await this.remove(endpoint).catch((removal) => health.set(subject, `its pod is gone but it cannot be removed: ${errorMessage(removal)}`));
        return;
      }
      endpoint.state = "not-ready";
      health.set(subject, `the datapath could not re-apply it: ${errorMessage(error)}`);
      log.warn(`${subject}: the datapath could not re-apply it: ${errorMessage(error)}`);
    }
  }

  /** The id a PUT asks for, undefined to let the agent choose; checks the path against the body. */
  private requestedId(reference: EndpointReference, request: EndpointChangeRequest): number | undefined {
    if (reference.kind === "id") return reference.id === 0 ? undefined : reference.id;
    if (reference.kind !== "cni-attachment-id") {
      throw new AgentError("invalid", `cannot create endpoint ${formatEndpointReference(reference)}: use a numeric ID or cni-attachment-id:<container id>:<ifname>`);
    }
    if (reference.containerId !== request["container-id"] || reference.ifname !== request["container-interface-name"]) {
      throw new AgentError(
        "invalid",
        `${formatEndpointReference(reference)} does not match the body's container-id ${JSON.stringify(request["container-id"])} and container-interface-name ${JSON.stringify(request["container-interface-name"])}`,
      );
    }
    return undefined;
  }

  /** A pod must not claim another pod's address: it must be allocated to this attachment. */
  private checkAddressOwner(address: string, owner: string): void {
    const holder = this.deps.ipam.ownerOf(address);
    if (holder === owner) return;
    const why = holder === undefined ? "is not allocated" : `is allocated to ${JSON.stringify(holder)}`;
    throw new AgentError("invalid", `addressing.ipv4: ${address} ${why}, not to this attachment ${JSON.stringify(owner)} (allocate it with POST /v1/ipam?owner=${owner})`);
  }

  private async rollBackCreation(endpoint: Endpoint): Promise<void> {
    await this.deps.datapath
      .removeEndpoint(copy(endpoint))
      .catch((error) => this.deps.log.warn(`${subjectOf(endpoint)}: rolling back, the datapath could not remove it: ${errorMessage(error)}`));
    await this.forgetPolicy(endpoint).catch((error) => this.deps.log.warn(`${subjectOf(endpoint)}: rolling back its identity and policy: ${errorMessage(error)}`));
    this.forget(endpoint);
  }

  /** Its address out of the ipcache, its identities released (the datapath removed its policy entries). */
  private async forgetPolicy(endpoint: Endpoint): Promise<void> {
    const { policy } = this.deps;
    if (!policy) return;
    await policy.removeEndpoint(endpoint.id, endpoint.addressing.ipv4);
    await policy.releaseIdentities(endpoint.id);
  }

  /** Removes an endpoint for good; it stays "disconnecting" (persisted) until every step is done. */
  private async remove(endpoint: Endpoint): Promise<string[]> {
    endpoint.state = "disconnecting";
    this.deps.store.save(endpoint);
    try {
      await this.deps.datapath.removeEndpoint(copy(endpoint));
      await this.forgetPolicy(endpoint);
    } catch (error) {
      throw new AgentError("datapath", `${subjectOf(endpoint)}: the datapath could not remove it: ${errorMessage(error)}`, { cause: error });
    }
    const address = this.deps.ipam.releaseOwner(ownerOf(endpoint));
    this.forget(endpoint);
    this.deps.log.info(`${subjectOf(endpoint)} deleted`, { endpointID: endpoint.id });
    return address === undefined ? [] : [address];
  }

  /** Drops an endpoint whose address is someone else's: its datapath state and file, not the address. */
  private async discard(endpoint: Endpoint): Promise<void> {
    await this.deps.datapath.removeEndpoint(copy(endpoint)).catch(() => undefined);
    // Its address is someone else's: its ipcache entry is theirs too.
    this.forget(endpoint);
  }

  private forget(endpoint: Endpoint): void {
    this.deps.store.remove(endpoint.id);
    const known = this.endpoints.delete(endpoint.id);
    this.ids.release(endpoint.id);
    this.deps.health.clear(subjectOf(endpoint));
    this.deps.health.clear(`${subjectOf(endpoint)} policy`);
    if (known) this.changed(endpoint, true);
  }

  private changed(endpoint: Endpoint, removed: boolean): void {
    for (const listener of this.changeListeners) {
      try {
        listener(copy(endpoint), removed);
      } catch (error) {
        this.deps.log.warn(`an endpoint change listener failed: ${errorMessage(error)}`);
      }
    }
  }

  private find(reference: EndpointReference): Endpoint | undefined {
    if (reference.kind === "id") return this.endpoints.get(reference.id);
    for (const endpoint of this.endpoints.values()) if (matches(endpoint, reference)) return endpoint;
    return undefined;
  }
}

function matches(endpoint: Endpoint, reference: Exclude<EndpointReference, { kind: "id" }>): boolean {
  switch (reference.kind) {
    case "container-id":
      return endpoint["container-id"] === reference.containerId;
    case "cni-attachment-id":
      return endpoint["container-id"] === reference.containerId && endpoint["container-interface-name"] === reference.ifname;
    case "pod-name":
      return endpoint["k8s-namespace"] === reference.namespace && endpoint["k8s-pod-name"] === reference.pod;
    case "ipv4":
      return endpoint.addressing.ipv4 === reference.address;
  }
}

function policyEndpoint(endpoint: Endpoint) {
  return { id: endpoint.id, ipv4: endpoint.addressing.ipv4, labels: endpoint.labels, identity: endpoint.identity ?? 0 };
}

/** Apply with the enforcement just written, so the endpoint's entry says what its policy says. */
function enforcementOf(outcome: PolicyOutcome): ApplyOptions {
  return { policyEnforcement: { ingress: outcome.status["ingress-enforced"], egress: outcome.status["egress-enforced"] } };
}

function ownerOf(endpoint: Endpoint): string {
  return attachmentOwner(endpoint["container-id"], endpoint["container-interface-name"]);
}

function subjectOf(endpoint: Endpoint): string {
  return `endpoint ${endpoint.id}`;
}

/** Callers (the API, the datapath) get copies: the manager's records change only through it. */
function copy(endpoint: Endpoint): Endpoint {
  return structuredClone(endpoint);
}
