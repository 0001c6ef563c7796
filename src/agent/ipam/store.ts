/**
 * The IPAM's state: <state-dir>/ipam/ipv4.json, a snapshot (the pod CIDR it was written for and
 * every pod allocation), and ipv4.journal beside it, one line per change since the snapshot. A
 * change is on disk before its address is handed out.
 *
 * Why a journal: a change appends one line (~10 µs), where rewriting the snapshot costs ~0.7 ms
 * on ext4, which flushes a file renamed over another one (auto_da_alloc), on every CNI ADD and
 * DEL. The snapshot is rewritten when the agent starts and every COMPACT_AFTER changes.
 *
 * Crash safety (kill -9; neither file is fsynced, see AtomicWriteOptions.durable): a change is
 * acknowledged only once its whole line, newline included, is written, so a line the crash cut
 * short (the journal's unterminated tail) was never acknowledged and is ignored. Replaying sets
 * each address's owner as its last line says, so replaying lines the snapshot already holds (a
 * crash between writing the snapshot and removing the journal) changes nothing.
 */
import { openSync, closeSync, readFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { isIpv4 } from "../../net/ipv4.ts";
import { removeFile, removeTemporaryFiles, writeFileAtomic } from "../state/atomic-file.ts";
import type { PoolSnapshot } from "./pool.ts";

/** 2: the snapshot has a journal; an agent that knows only 1 would ignore it, so it refuses 2. */
const FORMAT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
/** Journal lines after which a change rewrites the snapshot instead. */
const COMPACT_AFTER = 1024;

export interface IpamState extends PoolSnapshot {
  /** The pod CIDR the allocations were made from. */
  range: string;
}

/** One change as the journal records it: the address's owner now (null: free) and the round robin's next address. */
export interface IpamChange {
  address: string;
  owner: string | null;
  next: string;
}

export class IpamStore {
  readonly path: string;
  readonly journalPath: string;
  /** Lines appended since the snapshot was written. */
  private journalLines = 0;
  /**
   * An append failed, perhaps half-way: the next change rewrites the snapshot and removes the
   * journal rather than append after a fragment.
   */
  private journalTainted = false;

  constructor(stateDir: string) {
    this.path = join(stateDir, "ipam", "ipv4.json");
    this.journalPath = join(stateDir, "ipam", "ipv4.journal");
  }

  /** The persisted state, or undefined on first start. Throws on files that cannot be trusted. */
  load(): IpamState | undefined {
    removeTemporaryFiles(dirname(this.path));
    const state = this.readSnapshot();
    const changes = this.readJournal();
    if (!state) {
      if (changes.length > 0) throw this.problem(this.journalPath, `${changes.length} changes without the snapshot ${this.path} they follow`);
      return undefined;
    }
    for (const change of changes) {
      if (change.owner === null) delete state.allocations[change.address];
      else state.allocations[change.address] = change.owner;
      state.next = change.next;
    }
    return state;
  }

  /** Writes the whole state as the snapshot and starts an empty journal. */
  compact(state: IpamState): void {
    // Atomic, not durable: see AtomicWriteOptions.durable (the pods holding these addresses die with the machine).
    writeFileAtomic(this.path, `${JSON.stringify({ version: FORMAT_VERSION, ...state }, null, 2)}\n`, { durable: false });
    removeFile(this.journalPath, { durable: false });
    this.journalLines = 0;
    this.journalTainted = false;
  }

  /** Persists one change; `state` is the whole state after it, for when the snapshot is due instead. */
  record(change: IpamChange, state: () => IpamState): void {
    if (this.journalTainted || this.journalLines >= COMPACT_AFTER) {
      this.compact(state());
      return;
    }
    const line = Buffer.from(`${JSON.stringify(change)}\n`);
    try {
      const fd = openSync(this.journalPath, "a", 0o600);
      try {
        let written = 0;
        while (written < line.length) written += writeSync(fd, line, written);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      this.journalTainted = true;
      throw error;
    }
    this.journalLines++;
  }

  private readSnapshot(): IpamState | undefined {
    const text = readIfPresent(this.path);
    if (text === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw this.problem(this.path, `not JSON: ${(error as Error).message}`);
    }
    if (!isState(parsed)) throw this.problem(this.path, `not an IPAM state of format version ${READABLE_VERSIONS.join(" or ")}`);
    return { range: parsed.range, next: parsed.next, allocations: { ...parsed.allocations } };
  }

  private readJournal(): IpamChange[] {
    const text = readIfPresent(this.journalPath);
    if (text === undefined) return [];
    const lines = text.split("\n");
    // The last element is "" after a complete line, else a line a crash cut short: never acknowledged.
    lines.pop();
    return lines.map((line, index) => {
      let change: unknown;
      try {
        change = JSON.parse(line);
      } catch {
        change = undefined;
      }
      if (!isChange(change)) throw this.problem(this.journalPath, `line ${index + 1} is not an IPAM change: ${JSON.stringify(line.slice(0, 200))}`);
      return change;
    });
  }

  private problem(path: string, what: string): Error {
    return new Error(`IPAM state file ${path} is unusable (${what}); it records which pod addresses are in use, so the agent will not start without it`);
  }
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function isState(value: unknown): value is IpamState & { version: number } {
  if (!value || typeof value !== "object") return false;
  const state = value as Record<string, unknown>;
  if (!READABLE_VERSIONS.includes(state.version as number) || typeof state.range !== "string" || typeof state.next !== "string") return false;
  const allocations = state.allocations;
  if (!allocations || typeof allocations !== "object" || Array.isArray(allocations)) return false;
  return Object.values(allocations).every((owner) => typeof owner === "string");
}

function isChange(value: unknown): value is IpamChange {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  const change = value as Record<string, unknown>;
  return (
    typeof change.address === "string" &&
    isIpv4(change.address) &&
    (change.owner === null || typeof change.owner === "string") &&
    typeof change.next === "string" &&
    isIpv4(change.next)
  );
}
