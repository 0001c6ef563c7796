/**
 * The IPAM's state file, <state-dir>/ipam/ipv4.json: the pod CIDR it was written for and every
 * pod allocation. Written atomically before an address is handed out.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { removeTemporaryFiles, writeFileAtomic } from "../state/atomic-file.ts";
import type { PoolSnapshot } from "./pool.ts";

const FORMAT_VERSION = 1;

export interface IpamState extends PoolSnapshot {
  /** The pod CIDR the allocations were made from. */
  range: string;
}

export class IpamStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, "ipam", "ipv4.json");
  }

  /** The persisted state, or undefined on first start. Throws on a file that cannot be trusted. */
  load(): IpamState | undefined {
    removeTemporaryFiles(dirname(this.path));
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const problem = (what: string) =>
      new Error(`IPAM state file ${this.path} is unusable (${what}); it records which pod addresses are in use, so the agent will not start without it`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw problem(`not JSON: ${(error as Error).message}`);
    }
    if (!isState(parsed)) throw problem(`not an IPAM state of format version ${FORMAT_VERSION}`);
    return { range: parsed.range, next: parsed.next, allocations: parsed.allocations };
  }

  save(state: IpamState): void {
    // Atomic, not durable: see AtomicWriteOptions.durable (the pods holding these addresses die with the machine).
    writeFileAtomic(this.path, `${JSON.stringify({ version: FORMAT_VERSION, ...state }, null, 2)}\n`, { durable: false });
  }
}

function isState(value: unknown): value is IpamState & { version: number } {
  if (!value || typeof value !== "object") return false;
  const state = value as Record<string, unknown>;
  if (state.version !== FORMAT_VERSION || typeof state.range !== "string" || typeof state.next !== "string") return false;
  const allocations = state.allocations;
  if (!allocations || typeof allocations !== "object" || Array.isArray(allocations)) return false;
  return Object.values(allocations).every((owner) => typeof owner === "string");
}
