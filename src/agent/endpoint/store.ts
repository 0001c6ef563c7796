/**
 * Endpoints persisted one file each, <state-dir>/endpoints/<id>.json, written atomically, so a
 * restarted agent re-adopts them (and finishes what a crash interrupted).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { endpointSchema, parseWith } from "../api/schemas.ts";
import type { Endpoint } from "../api/types.ts";
import { removeFile, removeTemporaryFiles, writeFileAtomic } from "../state/atomic-file.ts";

const FORMAT_VERSION = 1;
const FILE_NAME = /^(\d+)\.json$/;

export interface LoadedEndpoints {
  endpoints: Endpoint[];
  /** Files that could not be read back, with why; left in place for a human to look at. */
  unreadable: { path: string; problem: string }[];
}

export class EndpointStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "endpoints");
  }

  load(): LoadedEndpoints {
    removeTemporaryFiles(this.dir);
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { endpoints: [], unreadable: [] };
      throw error;
    }
    const endpoints: Endpoint[] = [];
    const unreadable: LoadedEndpoints["unreadable"] = [];
    for (const name of names) {
      const match = FILE_NAME.exec(name);
      if (!match) continue;
      const path = join(this.dir, name);
      try {
        const record = JSON.parse(readFileSync(path, "utf8")) as { version?: unknown; endpoint?: unknown };
        if (record.version !== FORMAT_VERSION) throw new Error(`format version ${String(record.version)}, expected ${FORMAT_VERSION}`);
        const endpoint = parseWith(endpointSchema, record.endpoint, "endpoint record");
        if (String(endpoint.id) !== match[1]) throw new Error(`it holds endpoint ${endpoint.id}`);
        endpoints.push(endpoint);
      } catch (error) {
        unreadable.push({ path, problem: (error as Error).message });
      }
    }
    endpoints.sort((a, b) => a.id - b.id);
    return { endpoints, unreadable };
  }

  save(endpoint: Endpoint): void {
    // Atomic, not durable: see AtomicWriteOptions.durable (the endpoint's pod dies with the machine).
    writeFileAtomic(this.pathOf(endpoint.id), `${JSON.stringify({ version: FORMAT_VERSION, endpoint }, null, 2)}\n`, { durable: false });
  }

  remove(id: number): void {
    // Not durable either, for the same reason as save.
    removeFile(this.pathOf(id), { durable: false });
  }

  private pathOf(id: number): string {
    return join(this.dir, `${id}.json`);
  }
}
