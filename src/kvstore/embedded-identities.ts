/**
 * The embedded (single node) identity backend: label set -> number, persisted in one file of the
 * agent's state dir (<state-dir>/identities.json, written atomically before a new or freed
 * number is answered), so a restarted agent gives its endpoints the numbers the kernel maps still
 * carry.
 *
 * References are not persisted: they belong to the running agent's users. Numbers read back from
 * the file are held without references until the agent has re-adopted its endpoints, which take
 * them again with the same labels; `collectUnreferenced` then frees the rest (identities of pods
 * that went away while the agent was down).
 *
 * Numbers are allocated from 256 up (MIN_ALLOCATED_IDENTITY) and, as the memory backend, a freed
 * number is not reused until the range wraps around.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { nextFreeIdentity, type IdentityBackend } from "../identity/backend.ts";
import { MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY } from "../identity/identity.ts";
import { LabelSet } from "../identity/labels.ts";
import { removeTemporaryFiles, writeFileAtomic } from "../agent/state/atomic-file.ts";

const FORMAT_VERSION = 1;
export const IDENTITIES_FILE = "identities.json";

interface Entry {
  labels: LabelSet;
  references: number;
}

interface PersistedIdentities {
  version: number;
  /** The next number to try. */
  next: number;
  /** Number -> labels ("source:key=value"). */
  identities: Record<string, string[]>;
}

export class IdentityStateError extends Error {
  constructor(path: string, problem: string) {
    super(`cannot read the identities in ${path}: ${problem} (the numbers in the kernel's maps depend on them; fix or remove the file)`);
    this.name = "IdentityStateError";
  }
}

export class EmbeddedIdentityBackend implements IdentityBackend {
  private readonly byKey = new Map<string, number>();
  private readonly byId = new Map<number, Entry>();
  private next: number;

  private constructor(
    readonly path: string,
    private readonly min: number,
    private readonly max: number,
  ) {
    this.next = min;
  }

  /** Opens (or starts) the identities of the state dir. Throws IdentityStateError on a bad file. */
  static open(stateDir: string, range: { min?: number; max?: number } = {}): EmbeddedIdentityBackend {
    const backend = new EmbeddedIdentityBackend(join(stateDir, IDENTITIES_FILE), range.min ?? MIN_ALLOCATED_IDENTITY, range.max ?? MAX_ALLOCATED_IDENTITY);
    backend.load(stateDir);
    return backend;
  }

  async allocate(labels: LabelSet): Promise<number> {
    const existing = this.byKey.get(labels.key);
    if (existing !== undefined) {
      this.byId.get(existing)!.references++;
      return existing;
    }
    const id = this.freeNumber();
    this.byKey.set(labels.key, id);
    this.byId.set(id, { labels, references: 1 });
    try {
      this.persist();
    } catch (error) {
      this.byKey.delete(labels.key);
      this.byId.delete(id);
      throw error;
    }
    return id;
  }

  async release(id: number): Promise<void> {
    const entry = this.byId.get(id);
    if (!entry) return;
    if (--entry.references > 0) return;
    this.free([id]);
  }

  async lookup(id: number): Promise<LabelSet | undefined> {
    return this.byId.get(id)?.labels;
  }

  /** Frees every number nobody references (those read back and not taken again). Answers them. */
  collectUnreferenced(): number[] {
    const unused = [...this.byId].filter(([, entry]) => entry.references <= 0).map(([id]) => id);
    if (unused.length > 0) this.free(unused);
    return unused.sort((a, b) => a - b);
  }

  /** Every allocated number with its labels and references, by number. */
  list(): { id: number; labels: LabelSet; references: number }[] {
    return [...this.byId].map(([id, e]) => ({ id, labels: e.labels, references: e.references })).sort((a, b) => a.id - b.id);
  }

  private free(ids: number[]): void {
    const removed = ids.map((id) => [id, this.byId.get(id)!] as const);
    for (const [id, entry] of removed) {
      this.byId.delete(id);
      this.byKey.delete(entry.labels.key);
    }
    try {
      this.persist();
    } catch (error) {
      // Still allocated on disk: keep them allocated here too (a later release retries).
      for (const [id, entry] of removed) {
        this.byId.set(id, { labels: entry.labels, references: 0 });
        this.byKey.set(entry.labels.key, id);
      }
      throw error;
    }
  }

  private freeNumber(): number {
    const { id, next } = nextFreeIdentity((candidate) => this.byId.has(candidate), this.min, this.max, this.next);
    this.next = next;
    return id;
  }

  private persist(): void {
    const identities: Record<string, string[]> = {};
    for (const [id, entry] of [...this.byId].sort(([a], [b]) => a - b)) identities[String(id)] = entry.labels.toStrings();
    const state: PersistedIdentities = { version: FORMAT_VERSION, next: this.next, identities };
    writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`);
  }

  private load(stateDir: string): void {
    removeTemporaryFiles(stateDir);
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new IdentityStateError(this.path, (error as Error).message);
    }
    let state: PersistedIdentities;
    try {
      state = JSON.parse(text) as PersistedIdentities;
    } catch (error) {
      throw new IdentityStateError(this.path, `not JSON: ${(error as Error).message}`);
    }
    if (state?.version !== FORMAT_VERSION) throw new IdentityStateError(this.path, `format version ${String(state?.version)}, expected ${FORMAT_VERSION}`);
    if (!Number.isInteger(state.next) || state.next < this.min || state.next > this.max) {
      throw new IdentityStateError(this.path, `next ${String(state.next)} is not in ${this.min}-${this.max}`);
    }
    if (state.identities === null || typeof state.identities !== "object" || Array.isArray(state.identities)) {
      throw new IdentityStateError(this.path, "identities must be an object of number -> labels");
    }
    for (const [text, labels] of Object.entries(state.identities)) {
      const id = Number(text);
      if (!/^\d+$/.test(text) || id < this.min || id > this.max) throw new IdentityStateError(this.path, `identity ${JSON.stringify(text)} is not in ${this.min}-${this.max}`);
      if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) throw new IdentityStateError(this.path, `identity ${id}: labels must be a list of strings`);
      let set: LabelSet;
      try {
        set = LabelSet.parse(labels);
      } catch (error) {
        throw new IdentityStateError(this.path, `identity ${id}: ${(error as Error).message}`);
      }
      if (set.size === 0) throw new IdentityStateError(this.path, `identity ${id} has no labels`);
      if (this.byKey.has(set.key)) throw new IdentityStateError(this.path, `identities ${this.byKey.get(set.key)} and ${id} have the same labels`);
      this.byKey.set(set.key, id);
      this.byId.set(id, { labels: set, references: 0 });
    }
    this.next = state.next;
  }
}
